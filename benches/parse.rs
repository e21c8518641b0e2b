//! Time to parse a policy against its number of domains: libxlutil's parse
//! plus rex's scan for locations and its checks. Linear in the input (the
//! location lookups once rescanned the text for every list item).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rex::config::policy::parse_policy_text;

/// A policy with `n` domains, one list item a line, as an administrator
/// (or a script) writes it.
fn policy(n: usize) -> String {
    let mut text = String::from("interval = 1000\nslush = \"64M\"\ndomains = [\n");
    for i in 0..n {
        text.push_str(&format!(
            "  \"name=vm{i},sla_ms=900,cap_min=10,cap_max=80,mem_min=64M,mem_max=1G,priority={}\",\n",
            i % 3
        ));
    }
    text.push_str("]\n");
    text
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_policy");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for n in [1_000usize, 10_000, 100_000] {
        let text = policy(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                let p = parse_policy_text("bench.cfg", text).expect("valid policy");
                assert_eq!(p.domains.len(), n);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
