//! The poll loop on a scripted host: ticks on deadlines, SIGHUP reloads
//! (keeping the old policy when the new one is bad), SIGTERM stops, and a
//! reported domain death ticks at once. No Xen.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::waiter::tests::signal_lock;
use super::*;
use crate::engine::{DomainInfo, DomainState, GuestReport, HostInfo, KiB, SchedParams, Scheduler};
use crate::xl::os::raise;

#[derive(Default)]
pub(crate) struct Script {
    list_calls: u32,
    polls: u32,
    /// Raise this signal during the n-th list_domains call.
    raise_on_list: Vec<(u32, libc::c_int)>,
    /// These list_domains calls fail (the same error each time).
    fail_lists: Vec<u32>,
    raise_on_poll: Vec<(u32, libc::c_int)>,
    /// Report these deaths at the n-th poll.
    deaths_on_poll: Vec<(u32, DomId)>,
    /// Make libxl-style timers fire at once (timeout 0).
    zero_timeout: bool,
    watched: Vec<Vec<DomId>>,
    pending_deaths: Vec<DomId>,
    /// From the n-th poll on, vm1 (domain 3) publishes this report.
    publish_on_poll: Option<(u32, GuestReport)>,
    /// ... and writes its keys again at every poll after it.
    flood: bool,
    /// What vm1 published, and what the last tick read of it.
    pub(crate) published: GuestReport,
    pub(crate) ticked: GuestReport,
    pending_changes: Vec<DomId>,
    /// since_tick calls (reads between ticks).
    pub(crate) looks: u32,
}

pub(crate) struct ScriptedHost(pub(crate) Script);

fn domain(domid: DomId, name: &str, cpu_time_ns: u64) -> DomainInfo {
    DomainInfo {
        domid,
        name: name.into(),
        uuid: [0; 16],
        vcpus_online: 1,
        cpu_time_ns,
        mem_current_kb: 128 * 1024,
        mem_target_kb: 128 * 1024,
        mem_max_kb: 256 * 1024,
        state: DomainState::Running,
    }
}

impl Host for ScriptedHost {
    fn now_ns(&mut self) -> u64 {
        u64::from(self.0.list_calls) * 1_000_000_000
    }
    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, HostError> {
        self.0.list_calls += 1;
        let n = self.0.list_calls;
        for &(at, signo) in &self.0.raise_on_list {
            if at == n {
                raise(signo).unwrap();
            }
        }
        if self.0.fail_lists.contains(&n) {
            return Err(HostError::ListDomains("xenstored is restarting".into()));
        }
        let t = u64::from(n) * 100_000_000;
        Ok(vec![
            domain(0, "Domain-0", t),
            domain(3, "vm1", t),
            domain(4, "vm2", t),
        ])
    }
    fn host_info(&mut self) -> Result<HostInfo, HostError> {
        Ok(HostInfo {
            guest_pcpus: 2,
            total_mem_kb: 4 << 20,
            free_mem_kb: 2 << 20,
            scheduler: Scheduler::Credit2,
        })
    }
    fn sched_params(&mut self, _: DomId) -> Result<SchedParams, HostError> {
        Ok(SchedParams {
            weight: 256,
            cap: 30,
        })
    }
    fn set_cap(&mut self, _: DomId, _: u32) -> Result<(), HostError> {
        Ok(())
    }
    fn set_weight(&mut self, _: DomId, _: u32) -> Result<(), HostError> {
        Ok(())
    }
    fn set_memory_target(&mut self, _: DomId, _: KiB) -> Result<(), HostError> {
        Ok(())
    }
    fn guest_report(&mut self, domid: DomId) -> Result<GuestReport, HostError> {
        if domid != 3 {
            return Ok(GuestReport::default());
        }
        self.0.ticked = self.0.published;
        Ok(self.0.ticked)
    }
}

impl EventSource for ScriptedHost {
    fn before_poll(
        &mut self,
        _: &mut Vec<libc::pollfd>,
        timeout_ms: &mut i32,
    ) -> Result<(), HostError> {
        self.0.polls += 1;
        let n = self.0.polls;
        for &(at, signo) in &self.0.raise_on_poll {
            if at == n {
                raise(signo).unwrap();
            }
        }
        for &(at, domid) in &self.0.deaths_on_poll {
            if at == n {
                self.0.pending_deaths.push(domid);
            }
        }
        if let Some((at, report)) = &self.0.publish_on_poll {
            if n == *at || (self.0.flood && n > *at) {
                self.0.published = if self.0.flood && n.is_multiple_of(2) {
                    GuestReport::default()
                } else {
                    *report
                };
                self.0.pending_changes.push(3);
            }
        }
        // A change wakes the poll, as the xenstore watch fd would.
        if self.0.zero_timeout || !self.0.pending_changes.is_empty() {
            *timeout_ms = 0;
        }
        Ok(())
    }
    fn take_changed(&mut self) -> Vec<DomId> {
        std::mem::take(&mut self.0.pending_changes)
    }
    fn since_tick(
        &mut self,
        domid: DomId,
    ) -> Result<Option<(GuestReport, GuestReport)>, HostError> {
        self.0.looks += 1;
        Ok((domid == 3).then_some((self.0.ticked, self.0.published)))
    }
    fn after_poll(&mut self, _: &[libc::pollfd]) {}
    fn take_deaths(&mut self) -> Vec<DomId> {
        std::mem::take(&mut self.0.pending_deaths)
    }
    fn watch_deaths(&mut self, domids: &[DomId]) {
        self.0.watched.push(domids.to_vec());
    }
}

#[derive(Clone, Default)]
pub(crate) struct Shared(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn policy_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("rex-daemon-{}-{name}.cfg", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) const POLICY: &str =
    "interval = 20\ndomains = [ \"name=vm1,cap_min=10,cap_max=60,mem_min=64M,mem_max=256M\" ]\n";

pub(crate) fn args(policy: PathBuf, interval: Option<u64>) -> DaemonArgs {
    DaemonArgs {
        policy,
        dry_run: false,
        once: false,
        poll: false,
        json: true,
        verbose: false,
        interval,
        metrics: None,
        metrics_listen: None,
        control: None,
    }
}

/// The JSON objects written, by their "event" field.
pub(crate) fn events(out: &Shared) -> Vec<String> {
    String::from_utf8(out.0.lock().unwrap().clone())
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("event").and_then(|e| e.as_str()).map(String::from))
        .collect()
}

#[test]
fn ticks_on_deadlines_a_bad_reload_keeps_the_policy_and_sigterm_stops() {
    let _lock = signal_lock();
    let path = policy_file("reload", POLICY);
    let args = args(path.clone(), None);
    let config = load(&args).unwrap();
    // The file goes bad before SIGHUP arrives.
    std::fs::write(&path, "interval = 20\nbogus = = 1\n").unwrap();
    let host = ScriptedHost(Script {
        raise_on_list: vec![(2, libc::SIGHUP), (3, libc::SIGTERM)],
        ..Script::default()
    });
    let out = Shared::default();
    let stopped = run(host, config.clone(), &args, Box::new(out.clone())).unwrap();
    assert_eq!(stopped, Stopped::Signal(libc::SIGTERM));
    let seen = events(&out);
    assert!(seen.iter().any(|e| e == "reload_failed"), "{seen:?}");
    assert!(!seen.iter().any(|e| e == "reload"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("timings"), "{seen:?}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_failure_that_lasts_is_reported_once_and_its_end_once() {
    let _lock = signal_lock();
    let path = policy_file("failures", POLICY);
    let args = args(path.clone(), None);
    let config = load(&args).unwrap();
    let host = ScriptedHost(Script {
        fail_lists: (2..=6).collect(),
        raise_on_list: vec![(9, libc::SIGTERM)],
        ..Script::default()
    });
    let out = Shared::default();
    run(host, config, &args, Box::new(out.clone())).unwrap();
    let seen = events(&out);
    let count = |kind: &str| seen.iter().filter(|e| *e == kind).count();
    assert_eq!(count("tick_failed"), 1, "{seen:?}");
    assert_eq!(count("tick_recovered"), 1, "{seen:?}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn failures_are_counted_and_reported_when_they_change() {
    let mut f = Failures::default();
    assert_eq!(f.ok(), None, "nothing failed");
    assert!(f.failed("a"));
    assert!(!f.failed("a"), "the same error again");
    assert!(f.failed("b"), "another error");
    assert_eq!(f.ok(), Some(3));
    assert_eq!(f.ok(), None);
    assert!(f.failed("a"), "after recovering, the old error is news");
}

#[test]
fn a_reload_from_a_fifo_or_a_file_with_nul_keeps_ticking() {
    // A FIFO without a writer used to block the reload (and the ticks, and
    // SIGTERM) forever; a NUL inside a string made libxlutil abort.
    let _lock = signal_lock();
    for (name, bad) in [("fifo", None), ("nul", Some("slush = \"32M\0x\"\n"))] {
        let path = policy_file(&format!("reload-{name}"), POLICY);
        let args = args(path.clone(), None);
        let config = load(&args).unwrap();
        std::fs::remove_file(&path).unwrap();
        match bad {
            None => assert!(std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()),
            Some(text) => std::fs::write(&path, text).unwrap(),
        }
        let host = ScriptedHost(Script {
            raise_on_list: vec![(2, libc::SIGHUP), (4, libc::SIGTERM)],
            ..Script::default()
        });
        let out = Shared::default();
        let stopped = run(host, config, &args, Box::new(out.clone())).unwrap();
        assert_eq!(stopped, Stopped::Signal(libc::SIGTERM), "{name}");
        let seen = events(&out);
        assert!(
            seen.iter().any(|e| e == "reload_failed"),
            "{name}: {seen:?}"
        );
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn a_good_reload_replaces_the_policy() {
    let _lock = signal_lock();
    let path = policy_file("reload-ok", POLICY);
    let args = args(path.clone(), None);
    let config = load(&args).unwrap();
    std::fs::write(&path, POLICY.replace("cap_max=60", "cap_max=70")).unwrap();
    let host = ScriptedHost(Script {
        raise_on_list: vec![(1, libc::SIGHUP)],
        raise_on_poll: vec![(3, libc::SIGTERM)],
        ..Script::default()
    });
    let mut display = Display::new(Box::new(Shared::default()), true, false);
    let mut driver = Driver::new(host, Engine::new(config), false).unwrap();
    let mut waiter = Waiter::new().unwrap();
    run_loop(&mut driver, &mut display, &mut waiter, &args).unwrap();
    assert_eq!(driver.engine().config().domain("vm1").unwrap().cap_max, 70);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_death_ticks_at_once_and_only_managed_domains_are_watched() {
    let _lock = signal_lock();
    let path = policy_file("death", POLICY);
    // An hour between ticks: any second tick comes from the death.
    let args = args(path.clone(), Some(3_600_000));
    let config = load(&args).unwrap();
    let host = ScriptedHost(Script {
        zero_timeout: true,
        deaths_on_poll: vec![(1, 3)],
        raise_on_poll: vec![(5, libc::SIGTERM)],
        ..Script::default()
    });
    let mut display = Display::new(Box::new(Shared::default()), true, false);
    let mut driver = Driver::new(host, Engine::new(config), false).unwrap();
    let mut waiter = Waiter::new().unwrap();
    let stopped = run_loop(&mut driver, &mut display, &mut waiter, &args).unwrap();
    assert_eq!(stopped, Stopped::Signal(libc::SIGTERM));
    let script = &driver.host_mut().0;
    assert_eq!(
        script.list_calls, 2,
        "the first tick and the one the death caused"
    );
    assert_eq!(
        script.watched.first().cloned(),
        Some(vec![3]),
        "vm1 only: not dom0, not unmanaged vm2"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn once_ticks_once_without_waiting() {
    let _lock = signal_lock();
    let path = policy_file("once", POLICY);
    let mut args = args(path.clone(), None);
    args.once = true;
    let config = load(&args).unwrap();
    let out = Shared::default();
    let host = ScriptedHost(Script::default());
    assert_eq!(
        run(host, config, &args, Box::new(out.clone())).unwrap(),
        Stopped::Once
    );
    assert_eq!(events(&out).last().map(String::as_str), Some("timings"));
    let _ = std::fs::remove_file(path);
}

/// Parses an exposition with the Prometheus project's own Python client
/// (Debian's python3-prometheus-client, from tests/install-deps); returns
/// "family type sample value" lines, or the parser's complaint.
fn parsed_by_prometheus_client(path: &std::path::Path) -> String {
    let script = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   for s in f.samples:\n\
        \x20       print(f.name, f.type, s.name, dict(sorted(s.labels.items())), s.value)\n";
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("run /usr/bin/python3 (tests/install-deps installs python3-prometheus-client)");
    assert!(
        out.status.success(),
        "the Prometheus parser refused {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_metrics_file_is_rewritten_every_tick_and_parses() {
    let _lock = signal_lock();
    let path = policy_file("metrics", POLICY);
    let metrics =
        std::env::temp_dir().join(format!("rex-daemon-{}-metrics.prom", std::process::id()));
    let mut args = args(path.clone(), None);
    args.metrics = Some(metrics.clone());
    let config = load(&args).unwrap();
    let host = ScriptedHost(Script {
        raise_on_list: vec![(4, libc::SIGTERM)],
        ..Script::default()
    });
    run(host, config, &args, Box::new(Shared::default())).unwrap();
    let samples = parsed_by_prometheus_client(&metrics);
    // vm1 is managed (its cap of 30 is within 10..60, so nothing moved);
    // vm2 and dom0 are not, and are not exported.
    assert!(
        samples.contains(
            "xen_rex_domain_cap_percent gauge xen_rex_domain_cap_percent {'domain': 'vm1'} 30.0"
        ),
        "{samples}"
    );
    assert!(
        !samples.contains("'vm2'") && !samples.contains("Domain-0"),
        "{samples}"
    );
    let ticks = samples
        .lines()
        .find_map(|l| l.strip_prefix("xen_rex_ticks counter xen_rex_ticks_total {} "))
        .unwrap_or_else(|| panic!("no ticks counter in\n{samples}"));
    assert!(ticks.parse::<f64>().unwrap() >= 3.0, "{ticks} ticks");
    for family in [
        "xen_rex_apply_duration_seconds histogram",
        "xen_rex_decision_duration_seconds histogram xen_rex_decision_duration_seconds_count",
        "xen_rex_domain_unmet_cpu_percent gauge xen_rex_domain_unmet_cpu_percent {'domain': 'vm1'} 0.0",
        "xen_rex_domain_unmet_memory_bytes gauge",
        "xen_rex_host_unmet_cpu_percent gauge",
        "xen_rex_host_unmet_memory_bytes gauge",
        "xen_rex_host_free_memory_bytes gauge",
    ] {
        assert!(samples.contains(family), "no {family} in\n{samples}");
    }
    let left: Vec<String> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            n.contains(&format!(
                "rex-daemon-{}-metrics.prom.tmp",
                std::process::id()
            ))
        })
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(metrics);
}

#[test]
fn a_metrics_file_that_cannot_be_written_is_refused_before_the_first_tick() {
    let _lock = signal_lock();
    let path = policy_file("metrics-bad", POLICY);
    let mut args = args(path.clone(), None);
    args.metrics = Some(PathBuf::from("/nonexistent/dir/rex.prom"));
    let config = load(&args).unwrap();
    let out = Shared::default();
    let err = run(
        ScriptedHost(Script::default()),
        config,
        &args,
        Box::new(out.clone()),
    )
    .unwrap_err();
    assert_eq!(err.status(), 2);
    let text = crate::error_chain(&err);
    assert!(text.contains("/nonexistent/dir/rex.prom"), "{text}");
    assert!(
        !events(&out)
            .iter()
            .any(|e| e == "start" || e == "reallocation"),
        "nothing may run before the refusal: {:?}",
        events(&out)
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn the_metrics_are_served_over_http_while_the_daemon_runs() {
    use std::io::{Read, Write};
    let _lock = signal_lock();
    let path = policy_file("metrics-listen", POLICY);
    // A free port: bound, read, released.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut args = args(path.clone(), None);
    args.metrics_listen = Some(address);
    let config = load(&args).unwrap();
    let scraper = std::thread::spawn(move || {
        for _ in 0..200 {
            if let Ok(mut stream) = std::net::TcpStream::connect(address) {
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                stream.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                return answer;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        String::new()
    });
    // 40 ticks of 20 ms: time enough for the scraper.
    let host = ScriptedHost(Script {
        raise_on_list: vec![(40, libc::SIGTERM)],
        ..Script::default()
    });
    run(host, config, &args, Box::new(Shared::default())).unwrap();
    let answer = scraper.join().unwrap();
    assert!(answer.starts_with("HTTP/1.0 200 OK"), "{answer}");
    assert!(
        answer.contains("xen_rex_domain_cap_percent{domain=\"vm1\"} 30"),
        "{answer}"
    );
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "nothing listens after the daemon stopped"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_metrics_address_in_use_is_refused_before_the_first_tick() {
    let _lock = signal_lock();
    let path = policy_file("metrics-listen-busy", POLICY);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut args = args(path.clone(), None);
    args.metrics_listen = Some(taken.local_addr().unwrap());
    let config = load(&args).unwrap();
    let out = Shared::default();
    let err = run(
        ScriptedHost(Script::default()),
        config,
        &args,
        Box::new(out.clone()),
    )
    .unwrap_err();
    assert_eq!(err.status(), 2);
    let text = crate::error_chain(&err);
    assert!(
        text.contains(&taken.local_addr().unwrap().to_string())
            && text.contains("--metrics-listen"),
        "{text}"
    );
    assert!(
        !events(&out).iter().any(|e| e == "start"),
        "nothing may run before the refusal: {:?}",
        events(&out)
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_policy_the_host_cannot_hold_is_refused_at_its_line_at_start_and_on_reload() {
    let _lock = signal_lock();
    // Floors of 150% + 150% on a host whose guests have 2 pCPUs (200%).
    let too_big = "interval = 20\ndomains = [ \"name=vm1,cap_min=150,cap_max=160\",\n\
                   \"name=vm2,cap_min=150,cap_max=160\" ]\n";
    let path = policy_file("misfit", too_big);
    let args = args(path.clone(), None);
    let config = load(&args).unwrap();
    let host = ScriptedHost(Script::default());
    let Err(DaemonError::Config(e)) = run(host, config, &args, Box::new(Shared::default())) else {
        panic!("started with floors above the pool");
    };
    assert_eq!(e.location, format!("{}:2", path.display()), "{e}");
    assert!(
        e.message.contains("cap floors (cap_min) add up to 300%"),
        "{e}"
    );

    // The same file arriving by SIGHUP: refused at the same line, the old
    // policy kept.
    std::fs::write(&path, POLICY).unwrap();
    let config = load(&args).unwrap();
    std::fs::write(&path, too_big).unwrap();
    let host = ScriptedHost(Script {
        raise_on_list: vec![(2, libc::SIGHUP), (3, libc::SIGTERM)],
        ..Script::default()
    });
    let out = Shared::default();
    run(host, config, &args, Box::new(out.clone())).unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let failed = text
        .lines()
        .find(|l| l.contains("\"reload_failed\""))
        .unwrap_or_else(|| panic!("no reload_failed: {text}"));
    assert!(
        failed.contains(&format!("{}:2: the cap floors", path.display())),
        "{failed}"
    );
    let _ = std::fs::remove_file(path);
}

/// vm1 under memory pressure, as its agent would publish it.
pub(crate) fn pressure() -> GuestReport {
    GuestReport {
        mem_free_kb: Some(1024),
        mem_total_kb: Some(100 * 1024),
        ..GuestReport::default()
    }
}

/// SIGTERM in `after` unless the test is done first (a loop that never
/// ticks again must not hang the test run).
fn deadman(after: std::time::Duration) -> std::sync::mpsc::Sender<()> {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if wait.recv_timeout(after).is_err() {
            raise(libc::SIGTERM).unwrap();
        }
    });
    done
}

#[test]
fn pressure_a_guest_publishes_is_decided_on_before_the_tick() {
    let _lock = signal_lock();
    let path = policy_file("react", POLICY);
    // An hour between ticks: a second tick can only be the early one.
    let args = args(path.clone(), Some(3_600_000));
    let config = load(&args).unwrap();
    let host = ScriptedHost(Script {
        publish_on_poll: Some((1, pressure())),
        raise_on_list: vec![(2, libc::SIGTERM)],
        ..Script::default()
    });
    let out = Shared::default();
    let mut display = Display::new(Box::new(out.clone()), true, false);
    let mut driver = Driver::new(host, Engine::new(config), false).unwrap();
    let mut waiter = Waiter::new().unwrap();
    let done = deadman(std::time::Duration::from_secs(10));
    let stopped = run_loop(&mut driver, &mut display, &mut waiter, &args).unwrap();
    let _ = done.send(());
    assert_eq!(stopped, Stopped::Signal(libc::SIGTERM));
    let script = &driver.host_mut().0;
    assert_eq!(script.list_calls, 2, "the first tick and the early one");
    assert_eq!(script.looks, 1);
    let seen = events(&out);
    assert!(seen.iter().any(|e| e == "reaction"), "{seen:?}");
    // The early tick acted on it: vm1 grown.
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"event\":\"reallocation\"") && l.contains("\"kind\":\"memory\"")),
        "{text}"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_guest_writing_in_a_loop_gets_one_look_and_one_early_tick_per_interval() {
    let _lock = signal_lock();
    let path = policy_file("flood", POLICY);
    let args = args(path.clone(), Some(3_600_000));
    let config = load(&args).unwrap();
    let host = ScriptedHost(Script {
        zero_timeout: true,
        publish_on_poll: Some((1, pressure())),
        flood: true,
        raise_on_poll: vec![(20_000, libc::SIGTERM)],
        ..Script::default()
    });
    let mut display = Display::new(Box::new(Shared::default()), true, false);
    let mut driver = Driver::new(host, Engine::new(config), false).unwrap();
    let mut waiter = Waiter::new().unwrap();
    let done = deadman(std::time::Duration::from_secs(30));
    let stopped = run_loop(&mut driver, &mut display, &mut waiter, &args).unwrap();
    let _ = done.send(());
    assert_eq!(stopped, Stopped::Signal(libc::SIGTERM));
    let script = &driver.host_mut().0;
    assert!(
        script.polls >= 20_000,
        "stopped early: {} polls",
        script.polls
    );
    assert_eq!(script.looks, 1, "20,000 writes, one read between ticks");
    assert!(script.list_calls <= 2, "{} ticks", script.list_calls);
    let _ = std::fs::remove_file(path);
}
