//! Prints the simulated host's calibration against the paper's figures:
//! mean response and CPU use of one VM (think 1 s, 9.5 ms of CPU per
//! request, one pCPU) for several client counts and caps.
//!
//! cargo run --release --example sim_calibration [seeds]

use rex::engine::KiB;
use rex::host::sim::{SimConfig, SimHost, SimVm};
use rex::host::Host;
use rex::stats::summarize;

const SECOND: u64 = 1_000_000_000;
const HOST_MEM_KB: KiB = 1 << 20;

fn run(seed: u64, clients: u32, cap: u32) -> (f64, f64) {
    let vm = SimVm {
        clients,
        cap,
        ..SimVm::new("web")
    };
    let mut sim = SimHost::new(SimConfig {
        seed,
        guest_pcpus: 1,
        host_mem_kb: HOST_MEM_KB,
        dom0_mem_kb: 512 << 10,
        step_ms: SimConfig::DEFAULT_STEP_MS,
        vms: vec![vm],
    })
    .expect("valid config");
    let domid = sim.domid("web").expect("web exists");
    sim.advance(60 * SECOND);
    sim.take_samples();
    let cpu_at = |sim: &mut SimHost| {
        sim.list_domains()
            .expect("sim lists")
            .into_iter()
            .find(|d| d.domid == domid)
            .map_or(0, |d| d.cpu_time_ns)
    };
    let before = cpu_at(&mut sim);
    sim.advance(300 * SECOND);
    let cpu_pct = (cpu_at(&mut sim) - before) as f64 / (300 * SECOND) as f64 * 100.0;
    let responses: Vec<f64> = sim
        .take_samples()
        .into_iter()
        .map(|s| s.response_ms)
        .collect();
    let mean = summarize(&responses).map_or(f64::NAN, |s| s.mean);
    (mean, cpu_pct)
}

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!("clients cap  mean response ms (over {seeds} seeds: mean, sd, 95% CI)  cpu %");
    for (clients, cap) in [(3, 20), (40, 20), (80, 20), (80, 40), (80, 60)] {
        let runs: Vec<(f64, f64)> = (1..=seeds).map(|seed| run(seed, clients, cap)).collect();
        let means: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let cpu = runs.iter().map(|r| r.1).sum::<f64>() / runs.len() as f64;
        if let Some(s) = summarize(&means) {
            println!(
                "{clients:7} {cap:3}  {:8.1} {:6.1} [{:.1}, {:.1}]  {cpu:5.1}",
                s.mean, s.sd, s.ci95.0, s.ci95.1
            );
        }
    }
}
