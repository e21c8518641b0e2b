//! Behaviour of the simulated host as rex sees it through [`Host`].

use super::*;
use crate::engine::{GuestReport, Scheduler};
use crate::host::Host;

const SECOND: u64 = 1_000_000_000;

fn vm(name: &str, clients: u32, cap: u32) -> SimVm {
    SimVm {
        clients,
        cap,
        ..SimVm::new(name)
    }
}

fn host(seed: u64, guest_pcpus: u32, vms: Vec<SimVm>) -> SimHost {
    SimHost::new(SimConfig {
        seed,
        guest_pcpus,
        host_mem_kb: 1 << 20,
        dom0_mem_kb: 512 << 10,
        step_ms: SimConfig::DEFAULT_STEP_MS,
        vms,
    })
    .expect("valid config")
}

/// Mean response (ms) of `name` after a warm-up, and its CPU use in percent
/// of one pCPU over the same span.
fn steady_state(sim: &mut SimHost, name: &str, warmup_s: u64, measure_s: u64) -> (f64, f64) {
    sim.advance(warmup_s * SECOND);
    sim.take_samples();
    let cpu_before = sim.domain(name).unwrap().cpu_time_ns;
    sim.advance(measure_s * SECOND);
    let cpu_after = sim.domain(name).unwrap().cpu_time_ns;
    let samples: Vec<f64> = sim
        .take_samples()
        .into_iter()
        .filter(|s| s.vm == name)
        .map(|s| s.response_ms)
        .collect();
    assert!(!samples.is_empty(), "{name} completed no request");
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let cpu_pct = (cpu_after - cpu_before) as f64 / (measure_s * SECOND) as f64 * 100.0;
    (mean, cpu_pct)
}

fn calibration(clients: u32, cap: u32) -> (f64, f64) {
    let mut sim = host(1, 1, vec![vm("web", clients, cap)]);
    steady_state(&mut sim, "web", 60, 300)
}

#[test]
fn forty_clients_at_cap_20_respond_near_the_papers_0_9_s() {
    let (mean_ms, cpu_pct) = calibration(40, 20);
    assert!((600.0..1300.0).contains(&mean_ms), "mean {mean_ms} ms");
    assert!(cpu_pct <= 20.0 + 1e-6, "cpu {cpu_pct}%");
    assert!(
        cpu_pct > 19.0,
        "saturated VM should use its cap, used {cpu_pct}%"
    );
}

#[test]
fn eighty_clients_at_cap_20_miss_the_sla_and_cap_60_meets_it() {
    let (at_cap_20, _) = calibration(80, 20);
    let (at_cap_60, _) = calibration(80, 60);
    assert!(at_cap_20 > 1500.0, "80 clients at 20%: {at_cap_20} ms");
    assert!(at_cap_60 < 600.0, "80 clients at 60%: {at_cap_60} ms");
}

#[test]
fn three_clients_respond_in_tens_of_ms_using_a_few_percent() {
    let (mean_ms, cpu_pct) = calibration(3, 20);
    assert!((10.0..100.0).contains(&mean_ms), "mean {mean_ms} ms");
    assert!((1.0..6.0).contains(&cpu_pct), "cpu {cpu_pct}%");
}

#[test]
fn same_seed_same_samples_different_seed_different_samples() {
    let run = |seed| {
        let mut sim = host(seed, 1, vec![vm("a", 10, 20), vm("b", 40, 20)]);
        sim.advance(30 * SECOND);
        sim.take_samples()
    };
    let first = run(7);
    assert!(first.len() > 100);
    assert_eq!(first, run(7));
    assert_ne!(first, run(8));
}

#[test]
fn a_capped_vm_never_exceeds_its_cap() {
    // Plenty of idle pCPU, yet the VM stays at 30%.
    let mut sim = host(3, 2, vec![vm("busy", 200, 30)]);
    let mut last = 0;
    for _ in 0..50 {
        sim.advance(SECOND / 10);
        let now = sim.domain("busy").unwrap().cpu_time_ns;
        assert!(
            now - last <= 30_000_000 + 1,
            "used {} ns in 100 ms",
            now - last
        );
        last = now;
    }
    assert!(last > 14 * SECOND / 10, "saturated VM used only {last} ns");
}

#[test]
fn uncapped_vms_share_contended_cpu_by_weight() {
    let heavy = |name: &str, weight| SimVm {
        weight,
        ..vm(name, 400, 0)
    };
    let mut sim = host(5, 1, vec![heavy("light", 256), heavy("heavy", 768)]);
    sim.advance(20 * SECOND);
    let light = sim.domain("light").unwrap().cpu_time_ns as f64;
    let heavy = sim.domain("heavy").unwrap().cpu_time_ns as f64;
    assert!(
        (heavy / light - 3.0).abs() < 0.05,
        "ratio {}",
        heavy / light
    );
    assert!(
        (light + heavy) / (20 * SECOND) as f64 > 0.99,
        "one pCPU should be busy"
    );
}

#[test]
fn an_idle_vms_share_goes_to_the_busy_one() {
    let mut sim = host(5, 1, vec![vm("idle", 0, 0), vm("busy", 400, 0)]);
    sim.advance(10 * SECOND);
    assert_eq!(sim.domain("idle").unwrap().cpu_time_ns, 0);
    let busy = sim.domain("busy").unwrap().cpu_time_ns;
    assert!(busy > 99 * SECOND / 10, "busy VM got {busy} ns of 10 s");
}

#[test]
fn cpu_time_counts_only_the_cpu_given() {
    let mut sim = host(9, 1, vec![vm("web", 40, 20)]);
    sim.advance(10 * SECOND);
    let dom0 = sim.list_domains().unwrap()[0].clone();
    assert_eq!((dom0.domid, dom0.cpu_time_ns), (0, 0));
    assert!(sim.domain("web").unwrap().cpu_time_ns <= 2 * SECOND);
}

#[test]
fn balloon_moves_at_its_rate_and_not_when_stuck() {
    let mut sim = host(1, 1, vec![vm("web", 3, 20)]); // 64 MB/s balloon
    let domid = sim.domid("web").unwrap();
    sim.set_memory_target(domid, 98_304).unwrap(); // +32 MB
    sim.advance(SECOND / 4);
    assert_eq!(sim.mem("web").unwrap().current_kb, 65_536 + 16_384);
    sim.advance(SECOND);
    assert_eq!(sim.mem("web").unwrap().current_kb, 98_304);

    sim.set_balloon_stuck("web", true).unwrap();
    sim.set_memory_target(domid, 65_536).unwrap();
    sim.advance(SECOND);
    let mem = sim.mem("web").unwrap();
    assert_eq!((mem.current_kb, mem.target_kb), (98_304, 65_536));
    sim.set_balloon_stuck("web", false).unwrap();
    sim.advance(SECOND);
    assert_eq!(sim.mem("web").unwrap().current_kb, 65_536);
}

#[test]
fn host_free_memory_follows_the_balloons() {
    let mut sim = host(1, 1, vec![vm("a", 3, 20), vm("b", 3, 20)]);
    let info = sim.host_info().unwrap();
    assert_eq!(info.free_mem_kb, (1 << 20) - (512 << 10) - 2 * 65_536);
    assert_eq!(info.scheduler, Scheduler::Credit2);
    let a = sim.domid("a").unwrap();
    sim.set_memory_target(a, 32_768).unwrap();
    sim.advance(2 * SECOND);
    assert_eq!(
        sim.host_info().unwrap().free_mem_kb,
        info.free_mem_kb + 32_768
    );
}

#[test]
fn memory_below_the_working_set_slows_responses() {
    let mut roomy = host(2, 1, vec![vm("web", 20, 20)]);
    let (fast, _) = steady_state(&mut roomy, "web", 20, 120);
    let mut squeezed = host(2, 1, vec![vm("web", 20, 20)]);
    let domid = squeezed.domid("web").unwrap();
    squeezed.set_memory_target(domid, 36_864).unwrap(); // 3/4 of the working set
    let (slow, _) = steady_state(&mut squeezed, "web", 20, 120);
    assert!(
        slow > 2.0 * fast,
        "{fast} ms with enough memory, {slow} ms short"
    );
}

#[test]
fn destroyed_domains_die_then_leave_the_list() {
    let mut sim = host(1, 1, vec![vm("a", 3, 20), vm("b", 3, 20)]);
    let b = sim.domid("b").unwrap();
    sim.advance(SECOND);
    let free_before = sim.host_info().unwrap().free_mem_kb;
    sim.destroy_domain("b").unwrap();
    let listed = sim.list_domains().unwrap();
    assert_eq!(
        listed.iter().find(|d| d.domid == b).unwrap().state,
        DomainState::Dying
    );
    assert!(matches!(sim.set_cap(b, 10), Err(HostError::NoSuchDomain(d)) if d == b));
    sim.advance(SECOND / 10);
    let names: Vec<String> = sim
        .list_domains()
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["Domain-0", "a"]);
    assert_eq!(sim.host_info().unwrap().free_mem_kb, free_before + 65_536);
    assert!(matches!(
        sim.set_memory_target(b, 1024),
        Err(HostError::NoSuchDomain(_))
    ));
    assert_eq!(
        sim.destroy_domain("b"),
        Err(SimError::UnknownVm("b".into()))
    );
}

#[test]
fn domids_are_not_reused_unless_asked() {
    let mut sim = host(1, 1, vec![vm("a", 3, 20), vm("b", 3, 20)]);
    sim.destroy_domain("b").unwrap();
    sim.advance(SECOND);
    assert_eq!(sim.create_domain(vm("c", 3, 20)), Ok(3));
    assert_eq!(
        sim.create_domain_with_domid(vm("d", 3, 20), 1),
        Err(SimError::DomIdInUse(1))
    );
    assert_eq!(sim.create_domain_with_domid(vm("b2", 3, 20), 2), Ok(2));
    let uuid_old_b = derive_uuid("b", 2);
    assert_ne!(sim.domain("b2").unwrap().uuid, uuid_old_b);
    assert_eq!(sim.create_domain(vm("e", 3, 20)), Ok(4));
    assert_eq!(
        sim.create_domain(vm("a", 3, 20)),
        Err(SimError::DuplicateName("a".into()))
    );
}

#[test]
fn uuids_are_stable_and_distinct() {
    let mut one = host(1, 1, vec![vm("a", 3, 20), vm("b", 3, 20)]);
    let mut two = host(99, 1, vec![vm("a", 3, 20), vm("b", 3, 20)]);
    let uuids = |h: &mut SimHost| -> Vec<[u8; 16]> {
        h.list_domains()
            .unwrap()
            .into_iter()
            .map(|d| d.uuid)
            .collect()
    };
    let first = uuids(&mut one);
    assert_eq!(first, uuids(&mut two));
    assert_ne!(first[1], first[2]);
}

#[test]
fn set_sched_rejects_bad_values_and_keeps_the_old_ones() {
    let mut sim = host(1, 1, vec![vm("a", 3, 20)]);
    let a = sim.domid("a").unwrap();
    for bad in [
        sim.set_weight(a, 0),
        sim.set_weight(a, 65_536),
        sim.set_cap(a, 101),
    ] {
        let err = bad.unwrap_err();
        assert!(
            matches!(err, HostError::SetSched { domid, .. } if domid == a),
            "{err}"
        );
    }
    assert_eq!(
        sim.sched("a"),
        Some(SchedParams {
            weight: 256,
            cap: 20
        })
    );
    sim.set_weight(a, 512).unwrap();
    assert_eq!(
        sim.sched("a").map(|s| s.cap),
        Some(20),
        "a weight leaves the cap alone"
    );
    sim.set_cap(a, 100).unwrap();
    assert_eq!(
        sim.sched_params(a).unwrap(),
        SchedParams {
            weight: 512,
            cap: 100
        }
    );
    assert!(matches!(
        sim.sched_params(42),
        Err(HostError::NoSuchDomain(42))
    ));
    let counters = sim.counters();
    assert_eq!((counters.set_sched, counters.rejected), (5, 3));
}

#[test]
fn set_memory_rejects_targets_above_the_maximum() {
    let mut sim = host(1, 1, vec![vm("a", 3, 20)]);
    let a = sim.domid("a").unwrap();
    let err = sim.set_memory_target(a, 131_073).unwrap_err();
    assert!(matches!(err, HostError::SetMemory { .. }), "{err}");
    assert_eq!(sim.mem("a").unwrap().target_kb, 65_536);
    assert!(matches!(
        sim.set_memory_target(77, 1),
        Err(HostError::NoSuchDomain(77))
    ));
    assert_eq!(sim.counters().set_memory, 2);
}

#[test]
fn xens_maximum_follows_the_target_and_the_ceiling_is_static_max() {
    // As on real Xen: libxl sets Xen's per-domain maximum to target + 1 MiB
    // at creation and at every target change; maxmem lives only in
    // xenstore's memory/static-max, which is what rex's ceiling is.
    let mut sim = host(1, 1, vec![vm("a", 3, 20)]);
    let a = sim.domid("a").unwrap();
    let mem = sim.mem("a").unwrap();
    assert_eq!((mem.target_kb, mem.xen_max_kb), (65_536, 65_536 + 1024));
    assert_eq!(sim.domain("a").unwrap().mem_max_kb, 131_072);
    sim.set_memory_target(a, 98_304).unwrap();
    assert_eq!(sim.mem("a").unwrap().xen_max_kb, 98_304 + 1024);
    let listed = sim.list_domains().unwrap();
    assert_eq!(
        listed.iter().find(|d| d.domid == a).unwrap().mem_max_kb,
        131_072
    );

    // Without a readable static-max (removed, garbage, more than the host)
    // the ceiling is Xen's maximum, as the libxl backend makes it.
    for value in [None, Some(&b"lots"[..]), Some(&b"99999999999"[..])] {
        sim.set_static_max("a", value).unwrap();
        assert_eq!(
            sim.domain("a").unwrap().mem_max_kb,
            98_304 + 1024,
            "{value:?}"
        );
    }
    sim.set_static_max("a", Some(b"131072")).unwrap();
    assert_eq!(sim.domain("a").unwrap().mem_max_kb, 131_072);
}

#[test]
fn guests_publish_their_memory_and_recent_response() {
    let mut sim = host(1, 1, vec![vm("a", 10, 20)]);
    let a = sim.domid("a").unwrap();
    let before = sim.guest_report(a).unwrap();
    assert_eq!(before.mem_total_kb, Some(65_536));
    assert_eq!(before.mem_free_kb, Some(65_536 - 49_152));
    assert_eq!(before.response_ms, None);
    sim.advance(10 * SECOND);
    let response = sim
        .guest_report(a)
        .unwrap()
        .response_ms
        .expect("requests completed");
    let recent: Vec<f64> = sim
        .take_samples()
        .into_iter()
        .filter(|s| s.at_ns >= 9 * SECOND)
        .map(|s| s.response_ms)
        .collect();
    let expected = recent.iter().sum::<f64>() / recent.len() as f64;
    assert!(
        (response - expected).abs() < 0.001,
        "{response} vs {expected}"
    );
    sim.set_clients("a", 0).unwrap();
    sim.advance(5 * SECOND);
    assert_eq!(sim.guest_report(a).unwrap().response_ms, None);
    assert_eq!(sim.load("a"), Some((0, 0)));
}

#[test]
fn garbage_from_the_guest_goes_through_the_strict_parser() {
    let mut sim = host(1, 1, vec![vm("a", 3, 20)]);
    let a = sim.domid("a").unwrap();
    sim.set_guest_values(
        "a",
        Some(b"-5".to_vec()),
        Some(b"99999999999".to_vec()),
        Some(b"NaN".to_vec()),
    )
    .unwrap();
    let report = sim.guest_report(a).unwrap();
    assert_eq!(report.mem_free_kb, None);
    assert_eq!(report.mem_total_kb, Some(131_072)); // clamped to mem_max
    assert_eq!(report.response_ms, None);
    sim.set_guest_values("a", None, None, Some(vec![0xff, 0x00, 0x31]))
        .unwrap();
    assert_eq!(sim.guest_report(a).unwrap(), GuestReport::default());
    sim.clear_guest_values("a").unwrap();
    assert_eq!(sim.guest_report(a).unwrap().mem_total_kb, Some(65_536));
}

#[test]
fn raising_clients_raises_load_and_lowering_drains_it() {
    let mut sim = host(4, 1, vec![vm("web", 3, 20)]);
    sim.advance(5 * SECOND);
    let (_, calm) = steady_state(&mut sim, "web", 0, 20);
    sim.set_clients("web", 80).unwrap();
    let (_, busy) = steady_state(&mut sim, "web", 5, 20);
    assert!(busy > 5.0 * calm, "cpu {calm}% → {busy}%");
    sim.set_clients("web", 3).unwrap();
    sim.advance(30 * SECOND);
    assert_eq!(sim.load("web").unwrap().0, 3);
}

#[test]
fn clock_moves_forward_only() {
    let mut sim = host(1, 1, vec![vm("a", 3, 20)]);
    sim.advance(1_500_000);
    assert_eq!(sim.now_ns(), 1_500_000);
    sim.advance_to(1_000_000);
    assert_eq!(sim.now_ns(), 1_500_000);
    sim.advance_to(3 * SECOND);
    assert_eq!(sim.now_ns(), 3 * SECOND);
}

#[test]
fn bad_configurations_are_refused_with_the_reason() {
    let base = SimConfig {
        seed: 1,
        guest_pcpus: 1,
        host_mem_kb: 1 << 20,
        dom0_mem_kb: 512 << 10,
        step_ms: 10,
        vms: vec![],
    };
    let zero_step = SimConfig {
        step_ms: 0,
        ..base.clone()
    };
    assert!(matches!(SimHost::new(zero_step), Err(SimError::BadHost(_))));
    let too_big = SimConfig {
        vms: vec![SimVm {
            mem_kb: 600 << 10,
            mem_max_kb: 600 << 10,
            ..SimVm::new("big")
        }],
        ..base.clone()
    };
    assert!(matches!(
        SimHost::new(too_big),
        Err(SimError::OutOfMemory { .. })
    ));
    let bad_cap = SimConfig {
        vms: vec![SimVm {
            cap: 150,
            ..SimVm::new("web")
        }],
        ..base.clone()
    };
    let err = SimHost::new(bad_cap).unwrap_err();
    assert!(
        err.to_string().contains("web") && err.to_string().contains("cap 150"),
        "{err}"
    );
    let twice = SimConfig {
        vms: vec![SimVm::new("web"), SimVm::new("web")],
        ..base
    };
    assert_eq!(
        SimHost::new(twice).unwrap_err(),
        SimError::DuplicateName("web".into())
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn arb_vm(i: usize) -> impl Strategy<Value = SimVm> {
        (1u32..=2, 0u32..=200, 1u32..=1024, 0u32..=60, 0.0f64..50.0).prop_map(
            move |(vcpus, cap, weight, clients, demand_ms)| SimVm {
                vcpus,
                cap: cap.min(vcpus * 100),
                weight,
                clients,
                think_ms: 200.0,
                demand_ms,
                ..SimVm::new(format!("vm{i}"))
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the mix, no VM exceeds its cap or its vCPUs, and the VMs
        /// together never exceed the guest pCPUs.
        #[test]
        fn cpu_given_respects_caps_vcpus_and_the_pool(
            pcpus in 1u32..=3,
            vms in (arb_vm(1), arb_vm(2), arb_vm(3)),
            seed in any::<u64>(),
        ) {
            let vms = vec![vms.0, vms.1, vms.2];
            let mut sim = host(seed, pcpus, vms.clone());
            let mut last: Vec<u64> = vec![0; vms.len()];
            for _ in 0..20 {
                sim.advance(SECOND / 10);
                let mut total = 0;
                for (i, vm) in vms.iter().enumerate() {
                    let now = sim.domain(&vm.name).unwrap().cpu_time_ns;
                    let used = now - last[i];
                    let mut bound = u64::from(vm.vcpus) * 100_000_000;
                    if vm.cap > 0 {
                        bound = bound.min(u64::from(vm.cap) * 1_000_000);
                    }
                    prop_assert!(used <= bound + 10, "{} used {used} ns > {bound}", vm.name);
                    total += used;
                    last[i] = now;
                }
                prop_assert!(total <= u64::from(pcpus) * 100_000_000 + 10);
            }
        }
    }
}

#[test]
fn a_guest_sees_its_target_less_the_kernel_offset_and_runs_out_below_half_its_working_set() {
    // As measured on Xen 4.17: a Debian PV guest at a 128 MiB target shows
    // MemTotal about 48 MiB lower.
    let mut guest = vm("web", 3, 20);
    guest.mem_kb = 131_072;
    guest.mem_max_kb = 262_144;
    guest.working_set_kb = 40_960;
    guest.kernel_offset_kb = 49_152;
    let mut sim = host(1, 1, vec![guest]);
    let domid = sim.domid("web").unwrap();
    sim.advance(SECOND);
    let report = sim.guest_report(domid).unwrap();
    assert_eq!(report.mem_total_kb, Some(131_072 - 49_152));
    assert_eq!(report.mem_free_kb, Some(131_072 - 49_152 - 40_960));
    assert_eq!(sim.oom_kills("web"), 0);
    // 64 MiB target: MemTotal 16 MiB, under half the 40 MiB working set.
    sim.set_memory_target(domid, 65_536).unwrap();
    sim.advance(5 * SECOND);
    assert_eq!(sim.oom_kills("web"), 1, "one kill per episode");
    sim.set_memory_target(domid, 131_072).unwrap();
    sim.advance(5 * SECOND);
    sim.set_memory_target(domid, 65_536).unwrap();
    sim.advance(5 * SECOND);
    assert_eq!(sim.oom_kills("web"), 2);
}
