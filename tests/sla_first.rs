//! The SLA-first control law against the failures it replaced, on the
//! simulated host and on the policy alone: priority inversion under
//! over-commit, over-serving one domain at others' expense, and reclaiming
//! CPU nobody needed. Each test fails on the usage-greedy law before it.

use proptest::prelude::*;
use rex::config::scenario::Scenario;
use rex::engine::{
    DomainPolicy, GuestReport, HostInfo, HostPolicy, Level, Policy, PolicyConfig, SchedParams,
    Scheduler, Usage,
};
use rex::simulate::{run, Law, RunResult};

fn suite(name: &str) -> Scenario {
    Scenario::suite()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

/// `vm`'s cap at every point of the first run's timeline whose time (s)
/// satisfies `when`.
fn caps(run: &RunResult, vm: &str, when: impl Fn(f64) -> bool) -> Vec<u32> {
    run.timeline
        .iter()
        .filter(|p| p.vm == vm && when(p.t_s))
        .map(|p| p.cap)
        .collect()
}

fn mean_ms(run: &RunResult, vm: &str) -> f64 {
    let means = &run.vm(vm).unwrap().run_means_ms;
    means.iter().sum::<f64>() / means.len() as f64
}

#[test]
fn over_commit_both_sla_domains_meet_their_sla_and_no_worse_than_static() {
    let s = suite("overcommit");
    let rex = run(&s, Law::Rex, None).unwrap();
    let stat = run(&s, Law::Static, None).unwrap();
    for vm in ["gold", "silver"] {
        let (r, st) = (mean_ms(&rex, vm), mean_ms(&stat, vm));
        assert!(r <= 600.0, "{vm}: mean {r:.0} ms under rex, SLA 600 ms");
        assert!(r < st, "{vm}: rex {r:.0} ms, static {st:.0} ms");
        let (rv, sv) = (
            rex.vm(vm).unwrap().mean_violation_s(),
            stat.vm(vm).unwrap().mean_violation_s(),
        );
        assert!(rv <= sv, "{vm}: {rv} violation s under rex, {sv} static");
    }
    // The batch domain had the pool while they were idle, and was cut back
    // to its guarantee (10, or within a deadband of it) once they needed it.
    let batch: Vec<_> = rex.timeline.iter().filter(|p| p.vm == "batch").collect();
    assert!(
        batch.iter().any(|p| p.t_s < 30.0 && p.cap > 20),
        "batch never grew"
    );
    assert!(
        batch.iter().any(|p| p.t_s > 30.0 && p.cap <= 12),
        "batch was never preempted: {batch:?}"
    );
}

#[test]
fn paper_scenario_vm2_meets_its_sla_and_light_vms_stay_within_a_fifth_of_static() {
    let mut s = Scenario::builtin();
    s.repetitions = 6;
    let rex = run(&s, Law::Rex, None).unwrap();
    let stat = run(&s, Law::Static, None).unwrap();
    let vm2 = mean_ms(&rex, "vm2");
    assert!(vm2 <= 900.0, "vm2 mean {vm2:.0} ms");
    for vm in ["vm1", "vm3", "vm4"] {
        let (r, st) = (mean_ms(&rex, vm), mean_ms(&stat, vm));
        assert!(
            r <= st * 1.2,
            "{vm}: {r:.1} ms under rex, {st:.1} ms static"
        );
    }
    // Enough, not more: vm2 is not held far above what its SLA needs.
    let late: Vec<u32> = caps(&rex, "vm2", |t| t > 60.0);
    let mean_cap = late.iter().sum::<u32>() as f64 / late.len() as f64;
    assert!(mean_cap < 60.0, "vm2 held at {mean_cap:.0}% on average");
}

#[test]
fn paper_scenario_vm2_has_no_second_above_its_sla_in_28_runs() {
    // The paper's 28 repetitions: at the cap vm2 settles at, its seconds
    // spread 500-800 ms; one that lands above 900 ms must not be left to
    // chance (threshold and proportional, which over-serve it, have none).
    let s = Scenario::builtin();
    assert_eq!(s.repetitions, 28);
    let rex = run(&s, Law::Rex, None).unwrap();
    let vm2 = rex.vm("vm2").unwrap();
    assert_eq!(vm2.mean_violation_s(), 0.0, "{:?}", vm2.violation_s);
}

#[test]
fn a_host_with_slack_leaves_light_domains_alone() {
    // Until vm2's spike at 55 s only vm1 wants more, and the free pool
    // covers it: the light domains must not be touched.
    let s = suite("slack-2x8");
    let rex = run(&s, Law::Rex, None).unwrap();
    for vm in ["vm3", "vm4", "vm5", "vm6", "vm7", "vm8"] {
        let light = caps(&rex, vm, |t| t < 55.0);
        assert!(light.iter().all(|&c| c == 20), "{vm}: caps {light:?}");
    }
}

#[test]
fn no_sla_domain_of_the_suite_does_worse_under_rex_than_static() {
    for s in Scenario::suite() {
        let rex = run(&s, Law::Rex, None).unwrap();
        let stat = run(&s, Law::Static, None).unwrap();
        for vm in rex.vms.iter().filter(|v| v.sla_ms.is_some()) {
            let st = stat.vm(&vm.name).unwrap();
            assert!(
                vm.mean_violation_s() <= st.mean_violation_s(),
                "{}: {} has {} violation s under rex, {} static",
                s.name,
                vm.name,
                vm.mean_violation_s(),
                st.mean_violation_s()
            );
        }
    }
}

/// One domain of the property below: policy and a CPU demand.
#[derive(Debug, Clone)]
struct Dom {
    sla_ms: Option<f64>,
    guarantee: u32,
    ceiling: u32,
    cap: u32,
    demand: f64,
    responses: Vec<f64>,
    priority: u32,
}

fn dom() -> impl Strategy<Value = Dom> {
    (
        prop::option::of(100.0..2000.0f64),
        5u32..30,
        0u32..60,
        5u32..90,
        0.0..100.0f64,
        prop::collection::vec(10.0..5000.0f64, 8),
        0u32..3,
    )
        .prop_map(
            |(sla_ms, guarantee, extra, cap, demand, responses, priority)| Dom {
                sla_ms,
                guarantee,
                ceiling: guarantee + extra + 1,
                cap,
                demand,
                responses,
                priority,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A best-effort domain holds no CPU above its guarantee while an SLA
    /// domain has missed its SLA for more than two intervals and could use
    /// more; and nobody is ever below its guarantee, nor the caps above the
    /// pool (when the guarantees fit).
    #[test]
    fn best_effort_gives_way_to_a_persistent_miss(doms in prop::collection::vec(dom(), 2..6), pcpus in 1u32..3) {
        let host_policy = HostPolicy::default();
        let policies: Vec<DomainPolicy> = doms.iter().enumerate().map(|(i, d)| DomainPolicy {
            name: format!("d{i}"),
            sla_ms: d.sla_ms,
            level: Level { load: 0, cap_pct: d.guarantee, mem_kb: 65_536 },
            cap_min: 1,
            cap_max: d.ceiling,
            mem_min_kb: 65_536,
            mem_max_kb: 65_536,
            weight: 256,
            priority: d.priority,
        }).collect();
        let pool = u64::from(pcpus) * 100;
        let fits = policies.iter().map(|p| u64::from(p.guaranteed_cap())).sum::<u64>() <= pool;
        let mut policy = Policy::new(PolicyConfig { host: host_policy.clone(), domains: policies.clone() });
        let host = HostInfo { guest_pcpus: pcpus, total_mem_kb: 1 << 22, free_mem_kb: 1 << 21, scheduler: Scheduler::Credit2 };
        let mut caps: Vec<u32> = doms.iter().map(|d| d.cap).collect();
        let mut streak = vec![0u32; doms.len()];
        for tick in 0..8 {
            let rows: Vec<Usage> = doms.iter().enumerate().map(|(i, d)| {
                let cap = caps[i];
                Usage {
                    domid: i as u32 + 1,
                    name: format!("d{i}").into(),
                    cpu_pct: d.demand.min(f64::from(cap)),
                    cpu_pct_raw: d.demand.min(f64::from(cap)),
                    vcpus: 1,
                    sched: SchedParams { weight: 256, cap },
                    mem_current_kb: 65_536,
                    mem_target_kb: 65_536,
                    mem_max_kb: 65_536,
                    mem_used_kb: None,
                    report: GuestReport { response_ms: Some(d.responses[tick]), ..GuestReport::default() },
                    has_cpu_sample: true,
                    cpu_time_ns: 0,
                }
            }).collect();
            for (i, d) in doms.iter().enumerate() {
                let using = rows[i].cpu_pct / f64::from(caps[i].max(1)) * 100.0 > host_policy.idle_pct;
                let missing = d.sla_ms.is_some_and(|sla| d.responses[tick] > sla) && using;
                streak[i] = if missing { streak[i] + 1 } else { 0 };
            }
            let plan = policy.decide(&host, &rows);
            for change in &plan.changes {
                if let rex::engine::Action::Cap { to, .. } = change.action {
                    caps[change.domid as usize - 1] = to;
                }
            }
            for (i, p) in policies.iter().enumerate() {
                prop_assert!(caps[i] >= p.guaranteed_cap(), "d{i} below its guarantee: {caps:?}");
            }
            if !fits {
                continue;
            }
            prop_assert!(caps.iter().map(|&c| u64::from(c)).sum::<u64>() <= pool, "over the pool: {caps:?}");
            let starved = (0..doms.len()).any(|i| streak[i] > 2 && caps[i] < policies[i].cap_ceiling());
            if starved {
                for (i, p) in policies.iter().enumerate().filter(|(_, p)| p.sla_ms.is_none()) {
                    prop_assert!(caps[i] <= p.guaranteed_cap(),
                        "tick {tick}: best-effort d{i} at {} above its guarantee {} (caps {caps:?}, streaks {streak:?})",
                        caps[i], p.guaranteed_cap());
                }
            }
        }
    }
}

#[test]
fn a_busy_guest_claiming_an_absurd_response_time_takes_nothing_from_others() {
    // `liar` is busy (it uses its whole cap) and writes 99999999999 ms: a
    // clamped figure would read as a one-hour miss and preempt `batch`.
    let text = r#"
name = "liar"
seed = 3
guest_pcpus = 1
host_memory = "1024M"
dom0_memory = "512M"
duration = 40
measure_from = 0
repetitions = 1
headroom = 0
domains = [ "name=liar,sla_ms=900,cap=20,cap_min=20,cap_max=80,mem_min=64M,mem_max=128M,memory=64M,priority=2",
            "name=batch,cap=10,cap_min=10,cap_max=80,mem_min=64M,mem_max=128M,memory=64M" ]
vms = [ "name=liar,cap=20,memory=64M,maxmem=128M,clients=4,think_ms=0,demand_ms=50,working_set=40M",
        "name=batch,cap=60,memory=64M,maxmem=128M,clients=4,think_ms=0,demand_ms=50,working_set=40M" ]
events = [ "at=5,vm=liar,guest_response=99999999999" ]
"#;
    let s = Scenario::parse("liar.cfg", text).unwrap();
    let rex = run(&s, Law::Rex, None).unwrap();
    // Before the lie, `liar` (saturated near its aim) may take from batch;
    // after it, nothing more.
    let before = caps(&rex, "batch", |t| t <= 5.0);
    let at_lie = *before.last().unwrap();
    let after: Vec<u32> = caps(&rex, "batch", |t| t > 5.0);
    assert!(
        after.iter().all(|&c| c >= at_lie),
        "batch preempted after the lie (it had {at_lie}): {after:?}"
    );
}

#[test]
fn diurnal_ramps_are_followed_without_misses_or_flapping() {
    // Two SLA domains whose loads rise and fall half a period apart, beside
    // a best-effort domain that always has work. Rex must see a rising
    // load coming (a saturated domain close to its aim takes from the
    // best-effort one before it misses), never give back a cap that was
    // not enough, and not hand CPU around in a circle (what an idle SLA
    // domain is given back, the best-effort one takes at the next tick).
    let s = suite("diurnal");
    let rex = run(&s, Law::Rex, None).unwrap();
    let minutes = s.repetitions as f64 * rex.measured_s / 60.0;
    let mut fewest = f64::INFINITY;
    for law in [Law::Static, Law::Threshold, Law::Proportional] {
        fewest = fewest.min(run(&s, law, None).unwrap().violation_s());
    }
    assert!(
        rex.violation_s() <= fewest,
        "rex {} violation s, best baseline {fewest}",
        rex.violation_s()
    );
    for vm in ["shop", "crm"] {
        let per_min = rex.vm(vm).unwrap().reversals as f64 / minutes;
        assert!(per_min <= 2.0, "{vm}: {per_min:.1} reversals a minute");
    }
}
