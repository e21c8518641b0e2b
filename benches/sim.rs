//! Speed of the simulated host: the paper's experiment (4 VMs, one with 80
//! clients) for 600 simulated seconds at the default 10 ms step.

use criterion::{criterion_group, criterion_main, Criterion};
use rex::host::sim::{SimConfig, SimHost, SimVm};

fn paper_host() -> SimHost {
    let vms = [3, 80, 3, 3]
        .into_iter()
        .enumerate()
        .map(|(i, clients)| SimVm {
            clients,
            ..SimVm::new(format!("vm{}", i + 1))
        })
        .collect();
    SimHost::new(SimConfig {
        seed: 1,
        guest_pcpus: 1,
        host_mem_kb: 1 << 20,
        dom0_mem_kb: 704 << 10,
        step_ms: SimConfig::DEFAULT_STEP_MS,
        vms,
    })
    .expect("valid config")
}

fn six_hundred_seconds(c: &mut Criterion) {
    c.bench_function("sim 4 VMs 600 s at 10 ms", |b| {
        b.iter_batched(
            paper_host,
            |mut sim| {
                sim.advance(600_000_000_000);
                sim.take_samples().len()
            },
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = six_hundred_seconds
}
criterion_main!(benches);
