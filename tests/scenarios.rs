//! Whole-loop tests: rex driving the simulated host through scenarios.

use rex::config::scenario::{Event, EventKind, Scenario};
use rex::simulate::{run, Law, RunResult, TimelinePoint};

const DOMAINS: &str = r#"[ "name=web,sla_ms=900,cap=20,cap_min=10,cap_max=70,mem_min=64M,mem_max=128M,memory=64M",
            "name=idle,cap=10,cap_min=10,cap_max=70,mem_min=48M,mem_max=128M,memory=48M" ]"#;
const VMS: &str = r#"[ "name=web,cap=20,memory=64M,maxmem=128M,clients=3,think_ms=1000,demand_ms=9.5,working_set=40M",
        "name=idle,cap=20,memory=64M,maxmem=128M,clients=1,think_ms=1000,demand_ms=9.5,working_set=40M" ]"#;

/// One pCPU, two VMs with 20% caps, a simple policy; `extra` adds events
/// or policy keys.
fn scenario(extra: &str) -> Scenario {
    scenario_of(DOMAINS, VMS, extra)
}

/// The same host with other `domains` and `vms` lists (a key is set once).
fn scenario_of(domains: &str, vms: &str, extra: &str) -> Scenario {
    let text = format!(
        r#"
name = "t"
seed = 7
guest_pcpus = 1
host_memory = "1024M"
dom0_memory = "768M"
duration = 60
measure_from = 0
repetitions = 1
interval = 1000
slush = "16M"
domains = {domains}
vms = {vms}
{extra}
"#
    );
    Scenario::parse("t.cfg", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn series<'a>(run: &'a RunResult, vm: &str) -> Vec<&'a TimelinePoint> {
    run.timeline.iter().filter(|p| p.vm == vm).collect()
}

fn cap_at(run: &RunResult, vm: &str, t_s: f64) -> u32 {
    series(run, vm)
        .into_iter()
        .rev()
        .find(|p| p.t_s <= t_s)
        .unwrap_or_else(|| panic!("no point for {vm} at {t_s}"))
        .cap
}

fn max_cap(run: &RunResult, vm: &str) -> u32 {
    series(run, vm).iter().map(|p| p.cap).max().unwrap()
}

#[test]
fn load_step_is_served_from_the_pool_and_idle_domains_are_left_alone() {
    // No headroom, so that the step starts from web's level.
    let s = scenario(
        r#"headroom = 0
events = [ "at=5,vm=web,clients=60", "at=35,vm=web,clients=1" ]"#,
    );
    let rex = run(&s, Law::Rex, None).unwrap();
    assert_eq!(cap_at(&rex, "web", 4.0), 20);
    assert!(
        cap_at(&rex, "web", 30.0) >= 50,
        "web was not given idle CPU: {:?}",
        series(&rex, "web")
    );
    // The free pool covered web, so the idle domain was never touched:
    // CPU is reclaimed only on demand (its latency depends on its cap).
    assert!(
        series(&rex, "idle").iter().all(|p| p.cap == 20),
        "{:?}",
        series(&rex, "idle")
    );
    // Σ caps never exceeds the pool (one pCPU).
    for t in 1..=60 {
        let total = cap_at(&rex, "web", t as f64) + cap_at(&rex, "idle", t as f64);
        assert!(total <= 100, "caps sum to {total} at {t}s");
    }
    let stat = run(&s, Law::Static, None).unwrap();
    assert_eq!(max_cap(&stat, "web"), 20, "static allocation changed a cap");
    let web_rex = &rex.vms.iter().find(|v| v.name == "web").unwrap();
    let web_static = &stat.vms.iter().find(|v| v.name == "web").unwrap();
    assert!(web_rex.run_means_ms[0] < web_static.run_means_ms[0]);
    assert!(web_rex.reallocations > 0);
    assert_eq!(web_static.reallocations, 0);
}

#[test]
fn steady_load_does_not_flap() {
    let s = scenario(r#"events = [ "at=1,vm=web,clients=60" ]"#);
    let rex = run(&s, Law::Rex, None).unwrap();
    let caps: Vec<u32> = series(&rex, "web").iter().map(|p| p.cap).collect();
    // Once raised, the cap of a steadily loaded domain only goes up or stays.
    let reversals = caps
        .windows(3)
        .filter(|w| (w[1] > w[0] && w[2] < w[1]) || (w[1] < w[0] && w[2] > w[1]))
        .count();
    assert_eq!(reversals, 0, "caps flapped: {caps:?}");
}

#[test]
fn domain_destroyed_and_created_mid_run() {
    let s = scenario(
        r#"
vms += [ "name=late,cap=5,memory=64M,maxmem=128M,clients=1,think_ms=1000,demand_ms=9.5,working_set=40M,start=no" ]
domains += [ "name=late,cap=15,cap_min=15,cap_max=40,mem_min=48M,mem_max=128M,memory=48M" ]
events = [ "at=5,vm=web,clients=60", "at=20,vm=idle,destroy", "at=30,vm=late,create" ]
"#,
    );
    let rex = run(&s, Law::Rex, None).unwrap();
    assert!(
        series(&rex, "idle").iter().all(|p| p.t_s <= 21.0),
        "destroyed domain still listed"
    );
    let late = series(&rex, "late");
    assert!(!late.is_empty(), "created domain never seen");
    assert!(
        late.iter().skip(1).all(|p| p.cap >= 15),
        "late domain not raised to its level: {late:?}"
    );
    for t in 31..=60 {
        let total = cap_at(&rex, "web", t as f64) + cap_at(&rex, "late", t as f64);
        assert!(total <= 100, "caps sum to {total} at {t}s");
    }
}

#[test]
fn sla_change_at_run_time_gives_a_new_level() {
    let s = scenario(
        r#"headroom = 0
events = [ "at=10,vm=web,level_cap=45" ]"#,
    );
    let rex = run(&s, Law::Rex, None).unwrap();
    assert_eq!(cap_at(&rex, "web", 9.0), 20);
    assert!(cap_at(&rex, "web", 13.0) >= 45, "{:?}", series(&rex, "web"));
}

/// What a guest writes under its three keys (None: the key is absent).
#[derive(Clone, Copy, Default)]
struct Published<'a> {
    free: Option<&'a [u8]>,
    total: Option<&'a [u8]>,
    response: Option<&'a [u8]>,
}

#[derive(Clone, Copy)]
enum Key {
    Free,
    Total,
    Response,
}

impl<'a> Published<'a> {
    fn with(mut self, key: Key, bytes: &'a [u8]) -> Self {
        match key {
            Key::Free => self.free = Some(bytes),
            Key::Total => self.total = Some(bytes),
            Key::Response => self.response = Some(bytes),
        }
        self
    }
}

/// `vm` writes `values` from the start of a 30 s run of a host where no
/// domain needs anything: web is busy (70% of its cap) but well within its
/// SLA and at its level, idle holds 16M above its level, and there is no
/// headroom to hand out, so only what a guest writes can move an
/// allocation (web's CPU or memory up, idle's memory down).
fn published_run(vm: &str, values: Published, extra: &str) -> Allocations {
    let mut s = scenario_of(
        r#"[ "name=web,sla_ms=900,cap=20,cap_min=10,cap_max=70,mem_min=64M,mem_max=128M,memory=64M",
             "name=idle,cap=10,cap_min=10,cap_max=70,mem_min=48M,mem_max=128M,memory=48M" ]"#,
        r#"[ "name=web,cap=20,memory=64M,maxmem=128M,clients=15,think_ms=1000,demand_ms=9.5,working_set=40M",
             "name=idle,cap=20,memory=64M,maxmem=128M,clients=1,think_ms=1000,demand_ms=9.5,working_set=40M" ]"#,
        &format!("headroom = 0\n{extra}"),
    );
    s.duration_ms = 30_000;
    s.events = vec![Event {
        at_ms: 0,
        vm: vm.into(),
        kind: EventKind::GuestValues {
            free: values.free.map(<[u8]>::to_vec),
            total: values.total.map(<[u8]>::to_vec),
            response: values.response.map(<[u8]>::to_vec),
        },
        location: "test".into(),
    }];
    let run = run(&s, Law::Rex, None).unwrap();
    Allocations {
        timeline: run
            .timeline
            .iter()
            .map(|p| (p.vm.clone(), p.t_s, p.cap, p.mem_mib))
            .collect(),
        changes: run
            .vms
            .iter()
            .map(|v| (v.name.clone(), v.reallocations))
            .collect(),
    }
}

/// Every VM's cap and memory at every tick, and its count of changes.
#[derive(PartialEq)]
struct Allocations {
    timeline: Vec<(String, f64, u32, f64)>,
    changes: Vec<(String, usize)>,
}

impl Allocations {
    fn changes_of(&self, vm: &str) -> usize {
        self.changes.iter().find(|(name, _)| name == vm).unwrap().1
    }
}

/// `vm` writes each of `garbage` under `key`, beside `others`; `alarm` is a
/// well-formed figure a reader that trusted the garbage could take it for.
struct GarbageCase {
    vm: &'static str,
    others: Published<'static>,
    key: Key,
    alarm: &'static [u8],
    garbage: &'static [&'static [u8]],
    /// More policy keys for the case's runs.
    extra: &'static str,
}

/// Garbage in a guest-written key counts for nothing: the run is the run
/// in which the key is absent, where nothing changes. Each case also runs
/// with its alarm, to show that a figure the garbage could be read as
/// would have moved an allocation (so the case can fail).
#[test]
fn garbage_guest_values_count_for_nothing() {
    let total_64m = Published {
        total: Some(b"65536"),
        ..Published::default()
    };
    let cases = [
        // A miss while busy (the one-hour limit is believed) wins web CPU
        // from the pool.
        GarbageCase {
            vm: "web",
            others: Published::default(),
            key: Key::Response,
            alarm: b"3599999",
            garbage: &[
                b"99999999999999999999999", // 1e23 ms
                b"3600001",                 // above one hour
                b"1e999",
                b"inf",
                b"Infinity",
                b"3.6e6",
                b"+99999",
                b"99999 ms",
                b"0x99999",
            ],
            extra: "",
        },
        // Little free memory wins web memory from the host.
        GarbageCase {
            vm: "web",
            others: total_64m,
            key: Key::Free,
            alarm: b"16",
            garbage: &[b"0x10", b"16kB", b"1.6e1", b"16\x80", b"-16", b"1 6"],
            extra: "",
        },
        GarbageCase {
            vm: "web",
            others: Published {
                free: Some(b"16"),
                ..Published::default()
            },
            key: Key::Total,
            alarm: b"131072",
            garbage: &[
                b"99999999999999999999999", // beyond 64 bits
                b"0x20000",
                b"1.31072e5",
                b"128M",
            ],
            extra: "",
        },
        // All of it free has the idle domain give back what the host lacks
        // (memory is reclaimed on demand: the 128 MiB reserve leaves the
        // host's 128 MiB free 16 MiB short of slush and reserve).
        GarbageCase {
            vm: "idle",
            others: total_64m,
            key: Key::Free,
            alarm: b"65536",
            garbage: &[
                b"99999999999999999999", // beyond 64 bits
                b"0x10000",
                b"6.5536e4",
                b"64M",
                b"65536\x0065536",
            ],
            extra: "reserve_memory = \"128M\"",
        },
    ];
    let mut moved = Vec::new();
    for case in cases {
        let vm = case.vm;
        let silent = published_run(vm, case.others, case.extra);
        assert_eq!(silent.changes_of(vm), 0, "{vm} changed on its own");
        let alarmed = published_run(vm, case.others.with(case.key, case.alarm), case.extra);
        assert!(
            alarmed.changes_of(vm) > 0,
            "{vm} writing {:?} got no change: the case proves nothing",
            String::from_utf8_lossy(case.alarm)
        );
        for &bytes in case.garbage {
            let seen = published_run(vm, case.others.with(case.key, bytes), case.extra);
            if seen != silent {
                moved.push(format!(
                    "{vm} writing {:?}: changes {:?}",
                    String::from_utf8_lossy(bytes),
                    seen.changes
                ));
            }
        }
    }
    assert!(
        moved.is_empty(),
        "garbage moved allocations:\n{}",
        moved.join("\n")
    );
}

#[test]
fn stuck_balloon_does_not_break_the_loop_or_the_ceiling() {
    let s = scenario_of(
        DOMAINS,
        r#"[ "name=web,cap=20,memory=64M,maxmem=128M,clients=3,think_ms=1000,demand_ms=9.5,working_set=120M",
             "name=idle,cap=20,memory=64M,maxmem=128M,clients=1,think_ms=1000,demand_ms=9.5,working_set=40M" ]"#,
        r#"events = [ "at=0,vm=web,balloon=stuck" ]"#,
    );
    let rex = run(&s, Law::Rex, None).unwrap();
    let web = series(&rex, "web");
    assert!(
        web.iter().all(|p| (p.mem_mib - 64.0).abs() < 0.01),
        "a stuck balloon moved: {web:?}"
    );
    assert_eq!(rex.timeline.last().unwrap().t_s, 60.0);
}

#[test]
fn same_seed_same_results() {
    let s = scenario(r#"events = [ "at=5,vm=web,clients=60" ]"#);
    let a = run(&s, Law::Rex, None).unwrap();
    let b = run(&s, Law::Rex, None).unwrap();
    assert_eq!(a.vms[0].run_means_ms, b.vms[0].run_means_ms);
}

#[test]
fn donors_are_shrunk_only_to_what_their_kernel_and_use_need() {
    // Real PV guests see ~48 MiB less than their balloon target. A donor
    // using 24 MiB at a 128 MiB target shows MemTotal 80 MiB: sized from its
    // use alone, a shrink to its 48 MiB level would leave its kernel nothing
    // (an OOM kill on real Xen, where a shrink sized this way crashed two
    // donors). The hog, short of memory, is grown from what was given back
    // (the host has nothing free: 1024 MiB, dom0 768 MiB).
    let s = scenario_of(
        r#"[ "name=hog,cap=20,cap_min=10,cap_max=70,mem_min=128M,mem_max=256M,memory=128M",
             "name=idle,cap=10,cap_min=10,cap_max=70,mem_min=48M,mem_max=256M,memory=48M" ]"#,
        r#"[ "name=hog,cap=20,memory=128M,maxmem=256M,clients=3,think_ms=1000,demand_ms=9.5,working_set=120M,kernel_offset=48M",
             "name=idle,cap=20,memory=128M,maxmem=256M,clients=1,think_ms=1000,demand_ms=9.5,working_set=24M,kernel_offset=48M" ]"#,
        "",
    );
    let rex = run(&s, Law::Rex, None).unwrap();
    for vm in ["hog", "idle"] {
        assert_eq!(rex.vm(vm).unwrap().oom_kills, 0, "{vm} ran out of memory");
    }
    let idle = series(&rex, "idle");
    let lowest = idle.iter().map(|p| p.mem_mib).fold(f64::INFINITY, f64::min);
    assert!(lowest < 128.0, "the idle donor gave nothing back");
    assert!(lowest >= 48.0 + 24.0, "idle shrunk to {lowest} MiB");
    let hog_max = series(&rex, "hog")
        .iter()
        .map(|p| p.mem_mib)
        .fold(0.0, f64::max);
    assert!(hog_max > 128.0, "the hog was never grown");
}

/// A guest short of memory whose agent dies: its last figures (pressure)
/// stay in xenstore. rex must stop acting on them once the agent's counter
/// has stood still for five periods, not grow the guest to its ceiling.
#[test]
fn a_dead_agents_frozen_figures_stop_moving_memory() {
    let run_with = |events: &str| {
        let mut s = scenario_of(
            r#"[ "name=db,cap=20,cap_min=10,cap_max=60,mem_min=64M,mem_max=512M,memory=64M" ]"#,
            r#"[ "name=db,cap=20,memory=64M,maxmem=512M,clients=3,think_ms=1000,demand_ms=9.5,working_set=200M" ]"#,
            &format!("max_step_memory = \"16M\"\ncooldown = 0\n{events}"),
        );
        s.duration_ms = 40_000;
        run(&s, Law::Rex, None).unwrap()
    };
    let mem_at = |r: &RunResult, t_s: f64| {
        series(r, "db")
            .iter()
            .rev()
            .find(|p| p.t_s <= t_s)
            .map(|p| p.mem_mib)
            .unwrap()
    };
    let alive = run_with("");
    let stopped = run_with(r#"events = [ "at=1,vm=db,agent=stop" ]"#);
    // With its agent alive, db keeps growing while it is short (up to what
    // the host has free).
    assert!(
        mem_at(&alive, 40.0) > mem_at(&alive, 5.0) + 64.0,
        "alive: no growth"
    );
    // With it dead, growth stops within a few seconds of the stop and the
    // guest is left where it was.
    let (at_15, at_40) = (mem_at(&stopped, 15.0), mem_at(&stopped, 40.0));
    assert!(
        (at_40 - at_15).abs() < 1.0,
        "memory moved on a dead agent's figures: {at_15} MiB at 15 s, {at_40} MiB at 40 s"
    );
    assert!(at_40 + 32.0 < mem_at(&alive, 40.0), "{at_40} MiB");
}

/// A donor whose balloon driver hangs: rex asks it for memory, sees it
/// not move, publishes it as uncooperative (squeezed's flag), sets its
/// target back to what it holds and takes from the other donor instead.
#[test]
fn a_hung_donor_is_found_uncooperative_and_another_gives_instead() {
    // 256 MiB for guests, 8 MiB of it free (below the slush): the hog's
    // growth must come from the donors.
    let s = scenario_of(
        r#"[ "name=hog,cap=20,cap_min=10,cap_max=70,mem_min=96M,mem_max=256M,memory=96M",
             "name=hung,cap=10,cap_min=10,cap_max=70,mem_min=32M,mem_max=256M,memory=32M",
             "name=spare,cap=10,cap_min=10,cap_max=70,mem_min=32M,mem_max=256M,memory=32M" ]"#,
        r#"[ "name=hog,cap=20,memory=96M,maxmem=256M,clients=3,think_ms=1000,demand_ms=9.5,working_set=120M",
             "name=hung,cap=20,memory=80M,maxmem=256M,clients=1,think_ms=1000,demand_ms=9.5,working_set=16M",
             "name=spare,cap=20,memory=72M,maxmem=256M,clients=1,think_ms=1000,demand_ms=9.5,working_set=16M" ]"#,
        "balloon_timeout = 5000\nevents = [ \"at=0,vm=hung,balloon=stuck\" ]",
    );
    let rex = run(&s, Law::Rex, None).unwrap();
    let hung = rex.vm("hung").unwrap();
    assert!(hung.uncooperative >= 1, "never flagged");
    let hung_mem = series(&rex, "hung");
    assert!(
        hung_mem.iter().all(|p| (p.mem_mib - 80.0).abs() < 0.01),
        "a hung balloon moved"
    );
    let spare = series(&rex, "spare");
    let lowest = spare
        .iter()
        .map(|p| p.mem_mib)
        .fold(f64::INFINITY, f64::min);
    assert!(lowest < 72.0, "the working donor gave nothing");
    let hog_max = series(&rex, "hog")
        .iter()
        .map(|p| p.mem_mib)
        .fold(0.0, f64::max);
    assert!(hog_max > 96.0, "the hog was never grown");
    assert_eq!(rex.vm("hog").unwrap().oom_kills, 0);
}

/// On real Xen a domain's own maximum is its target + 1 MiB, moved by
/// every target change; the admin's maxmem is only in xenstore's
/// memory/static-max. A ceiling taken from Xen's maximum stops every growth
/// at +1 MiB (rex on real Xen before it read static-max). The simulator
/// keeps Xen's maximum that way, so this holds only while rex's ceiling is
/// static-max.
#[test]
fn a_guest_short_of_memory_grows_past_xens_maximum_up_to_its_maxmem() {
    let mut s = scenario_of(
        r#"[ "name=db,cap=20,cap_min=10,cap_max=60,mem_min=64M,mem_max=192M,memory=64M" ]"#,
        r#"[ "name=db,cap=20,memory=64M,maxmem=192M,clients=3,think_ms=1000,demand_ms=9.5,working_set=120M" ]"#,
        "max_step_memory = \"16M\"\ncooldown = 0\n",
    );
    s.duration_ms = 40_000;
    let rex = run(&s, Law::Rex, None).unwrap();
    let most = series(&rex, "db")
        .iter()
        .map(|p| p.mem_mib)
        .fold(0.0, f64::max);
    assert!(most > 64.0 + 1.0 + 32.0, "db grew to {most} MiB only");
    assert!(most <= 192.0, "db grew past its maxmem: {most} MiB");
    assert_eq!(rex.vm("db").unwrap().oom_kills, 0);
}
