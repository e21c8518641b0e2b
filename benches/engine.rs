//! Cost of one engine tick (monitor + decide) against the number of domains.
//!
//! Each host has dom0, managed domains with a mix of idle, busy and
//! saturated loads (some reporting SLA misses and memory pressure), and a
//! tenth of unmanaged capped guests. The engine is warmed up with two steps
//! so every domain has a CPU delta; each measured step sees a fresh
//! snapshot one second later, and lists its usage in the memory of the
//! step before (as the daemon's driver does). Plans are not applied, so the saturated
//! domains keep asking and every tick walks the whole grant path.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use rex::engine::{
    DomainInfo, DomainObservation, DomainPolicy, DomainState, Engine, GuestReport, HostInfo,
    HostPolicy, Level, PolicyConfig, SchedParams, Scheduler, Snapshot,
};

const SEC: u64 = 1_000_000_000;
const MIB: u64 = 1024;

/// CPU demand of domain `i`, percent of one pCPU: idle, busy or saturated.
fn demand(i: usize) -> u64 {
    match i % 4 {
        0 => 3,
        1 => 12,
        2 => 40,
        _ => 95,
    }
}

fn host_of(domains: usize) -> (PolicyConfig, Snapshot) {
    let mut policies = Vec::new();
    let mut observed = vec![observation(0, "Domain-0".into(), 0, 0)];
    for i in 1..=domains {
        let managed = i % 10 != 0;
        let name = if managed {
            format!("vm{i}")
        } else {
            format!("other{i}")
        };
        let mut obs = observation(i as u32, name.clone(), 20, i);
        if managed {
            policies.push(DomainPolicy {
                name,
                sla_ms: Some(900.0),
                level: Level {
                    load: 0,
                    cap_pct: 10,
                    mem_kb: 64 * MIB,
                },
                cap_min: 5,
                cap_max: 100,
                mem_min_kb: 64 * MIB,
                mem_max_kb: 256 * MIB,
                weight: 256,
                priority: (i % 3) as u32,
            });
            if i % 7 == 0 {
                obs.report.response_ms = Some(1200.0);
            }
        }
        observed.push(obs);
    }
    let config = PolicyConfig {
        host: HostPolicy::default(),
        domains: policies,
    };
    let snapshot = Snapshot {
        at_ns: 0,
        host: HostInfo {
            // Room for every guarantee plus some idle pool.
            guest_pcpus: (domains as u32 * 30).div_ceil(100).max(1),
            total_mem_kb: domains as u64 * 512 * MIB,
            free_mem_kb: domains as u64 * 64 * MIB,
            scheduler: Scheduler::Credit,
        },
        domains: observed,
    };
    (config, snapshot)
}

fn observation(domid: u32, name: String, cap: u32, i: usize) -> DomainObservation {
    let mut uuid = [0u8; 16];
    uuid[..4].copy_from_slice(&domid.to_le_bytes());
    let under_pressure = i.is_multiple_of(5);
    DomainObservation {
        info: DomainInfo {
            domid,
            name,
            uuid,
            vcpus_online: 1,
            cpu_time_ns: 0,
            mem_current_kb: 96 * MIB,
            mem_target_kb: 96 * MIB,
            mem_max_kb: 256 * MIB,
            state: DomainState::Running,
        },
        sched: SchedParams { weight: 256, cap },
        report: GuestReport {
            mem_free_kb: Some(if under_pressure { 2 * MIB } else { 40 * MIB }),
            mem_total_kb: Some(94 * MIB),
            response_ms: None,
            stale: false,
        },
    }
}

/// The host `seconds` after the start, every domain having used
/// min(demand, cap) all along.
fn at(template: &Snapshot, seconds: u64) -> Snapshot {
    let mut snapshot = template.clone();
    snapshot.at_ns = seconds * SEC;
    for (i, d) in snapshot.domains.iter_mut().enumerate() {
        let used = demand(i).min(u64::from(d.sched.cap.max(1)));
        d.info.cpu_time_ns = seconds * SEC * used / 100;
    }
    snapshot
}

fn engine_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine step");
    group.measurement_time(Duration::from_secs(5));
    for domains in [10usize, 100, 1_000, 10_000] {
        let (config, template) = host_of(domains);
        let mut engine = Engine::new(config);
        engine
            .validate(&template.host)
            .expect("benchmark policy fits its host");
        engine.step(&at(&template, 0));
        engine.step(&at(&template, 1));
        let mut seconds = 1;
        let size = if domains >= 10_000 {
            BatchSize::LargeInput
        } else {
            BatchSize::SmallInput
        };
        // As the daemon does, each step lists usage in the last one's memory.
        let mut spent = Vec::new();
        group.bench_function(BenchmarkId::from_parameter(domains), |b| {
            b.iter_batched_ref(
                || {
                    seconds += 1;
                    at(&template, seconds)
                },
                |snapshot| {
                    let tick = engine.step_reusing(snapshot, std::mem::take(&mut spent));
                    spent = tick.usage;
                    tick.plan
                },
                size,
            )
        });
    }
    group.finish();
}

/// The monitor's part of a step alone (usage from a snapshot), at 10,000
/// domains: what is left of a step is the policy's.
fn engine_observe(c: &mut Criterion) {
    let (config, template) = host_of(10_000);
    let mut engine = Engine::new(config);
    engine.observe(&at(&template, 0));
    let mut seconds = 0;
    let mut usage = Vec::new();
    c.bench_function("engine observe/10000", |b| {
        b.iter_batched_ref(
            || {
                seconds += 1;
                at(&template, seconds)
            },
            |snapshot| engine.observe_into(snapshot, &mut usage),
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, engine_step, engine_observe);
criterion_main!(benches);
