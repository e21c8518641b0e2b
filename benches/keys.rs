//! xenstore requests per tick for the guests' keys, polled and watched, on
//! hosts of 10 to 10,000 domains: the code the libxl backend runs
//! (`rex::host::guest_keys`) against a store that counts what it is asked.
//! Each managed guest runs rex's agent (figures, then its counter); per
//! tick, either nothing changes or 1% of the guests publish new figures
//! (five writes each, five watch events). Prints requests per tick and
//! per domain, and the time of a tick's key reads in both modes side by
//! side.
//!
//! `cargo bench --bench keys`

use std::collections::HashMap;
use std::hint::black_box;
use std::io;
use std::time::Instant;

use rex::host::guest::{
    MEMINFO_FREE_KEY, MEMINFO_TOTAL_KEY, PERIOD_MS_KEY, RESPONSE_MS_KEY, SEQ_KEY, STATIC_MAX_KEY,
};
use rex::host::guest_keys::{GuestKeys, KeyMode, KeyStore, TARGET_KEY};

/// xenstore as a map; every read counted.
#[derive(Default)]
struct CountingStore {
    keys: HashMap<String, Vec<u8>>,
    reads: u64,
}

impl KeyStore for CountingStore {
    fn read(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.reads += 1;
        Ok(self.keys.get(path).cloned())
    }
}

impl CountingStore {
    fn set(&mut self, domid: u32, key: &str, value: String) -> String {
        let path = format!("/local/domain/{domid}/{key}");
        self.keys.insert(path.clone(), value.into_bytes());
        path
    }

    /// The agent's publication: figures, then its counter. The paths
    /// written, in order (each a watch event).
    fn publish(&mut self, domid: u32, seq: u64) -> Vec<String> {
        vec![
            self.set(domid, MEMINFO_TOTAL_KEY, "1000000".into()),
            self.set(domid, MEMINFO_FREE_KEY, (500_000 + seq % 1000).to_string()),
            self.set(domid, RESPONSE_MS_KEY, "120.5".into()),
            self.set(domid, PERIOD_MS_KEY, "1000".into()),
            self.set(domid, SEQ_KEY, seq.to_string()),
        ]
    }
}

struct Host {
    store: CountingStore,
    keys: GuestKeys,
    domains: u32,
    tick: u64,
}

impl Host {
    fn new(domains: u32, mode: KeyMode) -> Self {
        let mut store = CountingStore::default();
        for domid in 1..=domains {
            store.set(domid, STATIC_MAX_KEY, "2097152".into());
            store.set(domid, TARGET_KEY, "1048576".into());
            store.publish(domid, 0);
        }
        let mut host = Self {
            store,
            keys: GuestKeys::new(mode),
            domains,
            tick: 0,
        };
        // The first tick sees every domain; watches are set after it (as
        // the backend does after a list), and their first events fire.
        host.reads();
        for domid in host.keys.unwatched() {
            host.keys.set_watched(domid);
            host.keys
                .event(format!("/local/domain/{domid}/data").as_bytes());
            host.keys
                .event(format!("/local/domain/{domid}/memory").as_bytes());
        }
        host.reads();
        host
    }

    /// What one tick reads: every domain's memory keys, every guest's report.
    fn reads(&mut self) {
        for domid in 1..=self.domains {
            black_box(self.keys.memory(&mut self.store, domid, [1; 16]));
            let report = self
                .keys
                .report(&mut self.store, domid, 2 << 20, self.tick * 1_000_000_000)
                .unwrap();
            black_box(report);
        }
    }

    /// One tick, `changing` guests having published since the last.
    fn tick(&mut self, changing: u32) -> u64 {
        self.tick += 1;
        for k in 0..changing {
            let domid = 1 + (self.tick as u32 * changing + k) % self.domains;
            for path in self.store.publish(domid, self.tick) {
                self.keys.event(path.as_bytes());
            }
        }
        self.keys.take_changed();
        let before = self.store.reads;
        self.reads();
        self.store.reads - before
    }
}

/// Requests per tick (mean over `ticks`) and ns per tick.
fn measure(domains: u32, mode: KeyMode, changing: u32, ticks: u64) -> (f64, f64) {
    let mut host = Host::new(domains, mode);
    let started = Instant::now();
    let mut reads = 0;
    for _ in 0..ticks {
        reads += host.tick(changing);
    }
    let ns = started.elapsed().as_nanos() as f64 / ticks as f64;
    (reads as f64 / ticks as f64, ns)
}

/// ns per watch event taken (a guest flooding its keys costs rex this
/// per write, plus one read an interval).
fn event_cost() -> f64 {
    let mut host = Host::new(100, KeyMode::Watch);
    let path = b"/local/domain/42/data/meminfo_free";
    let n = 2_000_000u32;
    let started = Instant::now();
    for _ in 0..n {
        black_box(host.keys.event(black_box(path)));
        host.keys.take_changed();
    }
    started.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    println!("| domains | changing/tick | poll reads/tick | watch reads/tick | watch reads/domain | poll µs/tick | watch µs/tick |");
    println!("|--:|--:|--:|--:|--:|--:|--:|");
    for domains in [10u32, 100, 1_000, 10_000] {
        let ticks = (200_000 / u64::from(domains)).clamp(20, 2_000);
        for changing in [0, domains.div_ceil(100)] {
            let (poll, poll_ns) = measure(domains, KeyMode::Poll, changing, ticks);
            let (watch, watch_ns) = measure(domains, KeyMode::Watch, changing, ticks);
            println!(
                "| {domains} | {changing} | {poll:.0} | {watch:.0} | {:.3} | {:.1} | {:.1} |",
                watch / f64::from(domains),
                poll_ns / 1000.0,
                watch_ns / 1000.0
            );
        }
    }
    let ns = event_cost();
    println!();
    println!(
        "one watch event: {ns:.0} ns; a guest writing 10,000 times a second costs {:.2} ms of CPU a second",
        ns * 10_000.0 / 1e6
    );
}
