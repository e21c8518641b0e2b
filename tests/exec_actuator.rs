//! The exec actuator's command lines, against a stub `xl` that records its
//! argv: what SRX ran with `xm`, now with `xl`. No Xen needed. The expected
//! argv are written out as an administrator would type them (xl's own
//! syntax: `sched-credit -d DOM -w W -c CAP`, `sched-credit2 -d DOM -w W -c
//! CAP`, `mem-set DOM SIZE` with a `k` suffix for KiB), never built by the
//! code under test. No test changes the process's environment.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rex::engine::{DomId, DomainInfo, HostInfo, KiB, SchedParams, Scheduler};
use rex::host::exec::{resolve_xl_with, ExecHost, XlCommand};
use rex::host::{Host, HostError};

/// A directory with an `xl` script that appends its arguments (one line per
/// call, each argument ended by a unit separator, so argument boundaries
/// are kept) to `calls`, writes `stderr` to stderr and exits with
/// `exit_code`.
struct StubXl {
    dir: PathBuf,
}

impl StubXl {
    fn new(name: &str, exit_code: i32, stderr: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rex-stub-xl-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "#!/bin/sh\n{{ printf '%s\\037' \"$@\"; echo; }} >> '{}'\nprintf '%s' '{stderr}' >&2\nexit {exit_code}\n",
            dir.join("calls").display()
        );
        let xl = dir.join("xl");
        std::fs::write(&xl, script).unwrap();
        std::fs::set_permissions(&xl, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("xl")
    }

    /// The argv of each call, in order.
    fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let args = line.strip_suffix('\x1f').unwrap_or(line);
                args.split('\x1f').map(String::from).collect()
            })
            .collect()
    }
}

impl Drop for StubXl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads from fixed values; counts host_info calls.
struct FixedReads {
    scheduler: Scheduler,
    host_info_calls: u32,
    domains: Vec<DomainInfo>,
    /// Domains in a cpupool of another scheduler than the guests'.
    other_pool: Vec<(DomId, Scheduler)>,
}

impl Host for FixedReads {
    fn now_ns(&mut self) -> u64 {
        0
    }
    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, HostError> {
        Ok(self.domains.clone())
    }
    fn host_info(&mut self) -> Result<HostInfo, HostError> {
        self.host_info_calls += 1;
        Ok(HostInfo {
            guest_pcpus: 1,
            total_mem_kb: 1 << 21,
            free_mem_kb: 1 << 20,
            scheduler: self.scheduler.clone(),
        })
    }
    fn sched_params(&mut self, _domid: DomId) -> Result<SchedParams, HostError> {
        Ok(SchedParams {
            weight: 256,
            cap: 0,
        })
    }
    fn set_cap(&mut self, _: DomId, _: u32) -> Result<(), HostError> {
        unreachable!("writes go through xl")
    }
    fn set_weight(&mut self, _: DomId, _: u32) -> Result<(), HostError> {
        panic!("the exec host must not write through its reads");
    }
    fn set_memory_target(&mut self, _: DomId, _: KiB) -> Result<(), HostError> {
        panic!("the exec host must not write through its reads");
    }
    fn domain_scheduler(&mut self, domid: DomId) -> Result<Option<Scheduler>, HostError> {
        Ok(self
            .other_pool
            .iter()
            .find(|(d, _)| *d == domid)
            .map(|(_, s)| s.clone()))
    }
}

fn exec_host(scheduler: Scheduler, xl: &Path) -> ExecHost<FixedReads> {
    ExecHost::new(
        FixedReads {
            scheduler,
            host_info_calls: 0,
            domains: Vec::new(),
            other_pool: Vec::new(),
        },
        XlCommand::new(xl.to_path_buf()),
    )
}

#[test]
fn credit2_pool_gets_sched_credit2_with_one_setting_each() {
    let stub = StubXl::new("credit2", 0, "");
    let mut host = exec_host(Scheduler::Credit2, &stub.path());
    host.set_cap(3, 40).unwrap();
    host.set_weight(3, 512).unwrap();
    assert_eq!(
        stub.calls(),
        [
            ["sched-credit2", "-d", "3", "-c", "40"],
            ["sched-credit2", "-d", "3", "-w", "512"]
        ]
    );
}

#[test]
fn credit_pool_gets_sched_credit_and_the_scheduler_is_read_once() {
    let stub = StubXl::new("credit", 0, "");
    let mut host = exec_host(Scheduler::Credit, &stub.path());
    host.set_cap(7, 0).unwrap();
    host.set_cap(7, 25).unwrap();
    assert_eq!(
        stub.calls(),
        [
            ["sched-credit", "-d", "7", "-c", "0"],
            ["sched-credit", "-d", "7", "-c", "25"],
        ]
    );
    assert_eq!(host.reads_mut().host_info_calls, 1);
}

#[test]
fn a_domain_in_another_pool_is_set_with_its_own_pools_scheduler() {
    // The lab's cpupool check: vm1 alone in a credit pool, the other
    // guests (lower domids) in credit2's Pool-0.
    let stub = StubXl::new("two-pools", 0, "");
    let mut host = exec_host(Scheduler::Credit2, &stub.path());
    host.reads_mut().other_pool = vec![(5, Scheduler::Credit)];
    host.set_cap(5, 20).unwrap();
    host.set_cap(3, 30).unwrap();
    assert_eq!(
        stub.calls(),
        [
            ["sched-credit", "-d", "5", "-c", "20"],
            ["sched-credit2", "-d", "3", "-c", "30"],
        ]
    );
}

#[test]
fn memory_targets_are_absolute_kib() {
    let stub = StubXl::new("mem", 0, "");
    let mut host = exec_host(Scheduler::Credit2, &stub.path());
    host.set_memory_target(4, 131_072).unwrap();
    assert_eq!(stub.calls(), [["mem-set", "4", "131072k"]]);
}

#[test]
fn a_failing_xl_is_an_error_carrying_its_stderr() {
    let stub = StubXl::new("fail", 1, "libxl: error: domain 9 does not exist");
    let mut host = exec_host(Scheduler::Credit2, &stub.path());
    let err = host.set_memory_target(9, 65_536).unwrap_err();
    assert!(
        matches!(err, HostError::SetMemory { domid: 9, .. }),
        "{err:?}"
    );
    let chain = rex::error_chain(&err);
    assert!(chain.contains("mem-set 9 65536k"), "{chain}");
    assert!(chain.contains("domain 9 does not exist"), "{chain}");
    assert!(chain.contains("exit status: 1"), "{chain}");
}

#[test]
fn a_missing_xl_is_an_error_naming_the_path() {
    let missing = std::env::temp_dir().join("rex-no-such-dir/xl");
    let mut host = exec_host(Scheduler::Credit2, &missing);
    let err = host.set_cap(2, 30).unwrap_err();
    assert!(
        matches!(err, HostError::SetSched { domid: 2, .. }),
        "{err:?}"
    );
    let chain = rex::error_chain(&err);
    assert!(chain.contains(&missing.display().to_string()), "{chain}");
}

#[test]
fn schedulers_without_an_xl_command_are_refused_without_running_anything() {
    let stub = StubXl::new("rtds", 0, "");
    let mut host = exec_host(Scheduler::Other("rtds".into()), &stub.path());
    let err = host.set_cap(2, 30).unwrap_err();
    assert!(rex::error_chain(&err).contains("rtds"));
    assert!(stub.calls().is_empty());
}

#[test]
fn xl_is_found_by_flag_then_environment_then_path() {
    let env = |v: &str| Some(OsString::from(v));
    assert_eq!(resolve_xl_with(None, None), PathBuf::from("xl"));
    assert_eq!(resolve_xl_with(None, env("")), PathBuf::from("xl"));
    assert_eq!(
        resolve_xl_with(None, env("/opt/xen/bin/xl")),
        PathBuf::from("/opt/xen/bin/xl")
    );
    assert_eq!(
        resolve_xl_with(Some(PathBuf::from("/usr/sbin/xl")), env("/opt/xen/bin/xl")),
        PathBuf::from("/usr/sbin/xl")
    );
}

fn domain(domid: DomId, name: &str, mem_kb: KiB) -> DomainInfo {
    DomainInfo {
        domid,
        name: name.into(),
        uuid: [0; 16],
        vcpus_online: 1,
        cpu_time_ns: 0,
        mem_current_kb: mem_kb,
        mem_target_kb: mem_kb,
        mem_max_kb: 512 * 1024,
        state: rex::engine::DomainState::Running,
    }
}

#[test]
fn a_driver_tick_runs_one_xl_command_per_applied_change_in_plan_order() {
    let stub = StubXl::new("driver", 0, "");
    let mut host = exec_host(Scheduler::Credit2, &stub.path());
    // Both guests start uncapped at 128 MiB; the policy bounds them, so the
    // first tick has changes to make.
    host.reads_mut().domains = vec![
        domain(0, "Domain-0", 512 * 1024),
        domain(5, "vm1", 128 * 1024),
        domain(6, "vm2", 128 * 1024),
    ];
    let policy = rex::config::policy::parse_policy_text(
        "p.cfg",
        "domains = [ \"name=vm1,cap_min=10,cap_max=40,mem_min=64M,mem_max=96M\",\n\
         \"name=vm2,cap_min=10,cap_max=40,mem_min=160M,mem_max=256M\" ]\n",
    )
    .unwrap();
    let mut driver =
        rex::host::driver::Driver::new(host, rex::engine::Engine::new(policy), false).unwrap();
    let report = driver.tick().unwrap();
    assert!(
        !report.applied.is_empty(),
        "the policy should force changes"
    );
    for applied in &report.applied {
        assert_eq!(applied.error, None);
    }
    // Caps first: uncapped is above cap_max, so both are set to their
    // guarantee (cap_min, as no level is given), the weight left alone. Then memory, shrinks
    // before grows: vm1 down to its mem_max (96 MiB), vm2 up to its
    // mem_min (160 MiB).
    let expected = vec![
        vec!["sched-credit2", "-d", "5", "-c", "10"],
        vec!["sched-credit2", "-d", "6", "-c", "10"],
        vec!["mem-set", "5", "98304k"],
        vec!["mem-set", "6", "163840k"],
    ];
    assert_eq!(stub.calls(), expected);
    assert_eq!(driver.timings().len(), expected.len());
}

#[test]
fn xl_on_path_is_used_when_neither_flag_nor_environment_names_one() {
    let stub = StubXl::new("path", 0, "");
    let elsewhere = std::env::temp_dir().join("rex-no-such-dir");
    let path = std::env::join_paths([elsewhere, stub.dir.clone()]).unwrap();
    let xl = XlCommand::new(resolve_xl_with(None, None)).with_search_path(path);
    xl.set_memory(3, 65_536).unwrap();
    assert_eq!(stub.calls(), [["mem-set", "3", "65536k"]]);
}
