//! A whole tick (observe through the `Host` trait, decide, apply) on the
//! simulated host at 10 to 10,000 domains, with the host's calls counted:
//! what rex asks of a host per tick when nothing changes, and when 1% of
//! the guests change their load every tick. Prints, side by side, the
//! calls per tick by kind, the hypercalls and xenstore requests the libxl
//! calls they are on the libxl backend (`src/host/libxl.rs`) make (the
//! `cost` table below, from Xen 4.17's libxl and libxc), and the CPU time
//! of a tick.
//!
//! The simulator's own work (advancing its model between ticks) is not
//! timed. Guest reports are counted as calls here; the xenstore requests
//! they cost on a real host are `cargo bench --bench keys`'s figures.
//!
//! `cargo bench --bench tick`

use std::hint::black_box;
use std::time::{Duration, Instant};

use rex::engine::{
    DomId, DomainInfo, DomainPolicy, Engine, GuestReport, HostInfo, HostPolicy, KiB, Level,
    PolicyConfig, SchedParams, Scheduler,
};
use rex::host::driver::Driver;
use rex::host::sim::{SimConfig, SimHost, SimVm};
use rex::host::{Host, HostError};

const MIB: KiB = 1024;
const SEC: u64 = 1_000_000_000;

/// What each `Host` call of the libxl backend costs on Xen 4.17 (credit or
/// credit2, a PV domU, the success path): hypercalls (privcmd ioctls) and
/// the xenstore requests libxl itself makes, read from libxl and libxc at
/// RELEASE-4.17.7 (tools/libs/light, tools/libs/ctrl). The guests' keys
/// rex reads itself are not here: `benches/keys.rs` counts those (none a
/// domain when nothing changed, with watches).
mod cost {
    /// `list_domains`: libxl_list_domain fetches 1,024 domains a
    /// getdomaininfolist sysctl until one returns none, and asks FLASK for
    /// each domain's security label (one xsm_op each, made even without
    /// FLASK). The names and memory keys come from rex's caches.
    pub fn list_hypercalls(domains: u64) -> u64 {
        domains.div_ceil(1024) + 1 + domains
    }
    /// `host_info`: libxl_get_physinfo (physinfo sysctl and two sharing
    /// memory_ops), libxl_get_free_memory (the same three again),
    /// libxl_cpupool_info (one cpupool sysctl, and the pool's name from
    /// xenstore).
    pub const HOST_INFO: (u64, u64) = (7, 1);
    /// `sched_params`: libxl_domain_sched_params_get finds the domain's
    /// scheduler (getdomaininfolist, cpupool sysctl, the pool's name from
    /// xenstore), then one scheduler_op domctl.
    pub const SCHED_GET: (u64, u64) = (3, 1);
    /// `set_cap`/`set_weight`: libxl_domain_sched_params_set with the
    /// scheduler the tick's read found (left unknown, libxl would find it
    /// again: 2 more and the pool's name), then getdomaininfolist, its own
    /// get of the other field and the set.
    pub const SCHED_SET: (u64, u64) = (3, 0);
    /// `set_memory_target` (enforce): libxl_set_memory_target locks the
    /// domain's userdata and reads its configuration (domain info three
    /// times, two FLASK labels), sets the maximum (max_mem domctl) and
    /// reads the domain once more (and its label); in xenstore, a
    /// transaction reading target, static-max and videoram and writing
    /// the target and the /vm copy.
    pub const MEM_SET: (u64, u64) = (8, 8);
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Calls {
    list: u64,
    listed: u64,
    host_info: u64,
    sched_get: u64,
    sched_set: u64,
    mem_set: u64,
    guest_report: u64,
}

impl Calls {
    /// Hypercalls and libxl's own xenstore requests, by [`cost`].
    fn cost(&self) -> (u64, u64) {
        let by = |(h, x): (u64, u64), n: u64| (h * n, x * n);
        let parts = [
            (cost::list_hypercalls(self.listed) * self.list, 0),
            by(cost::HOST_INFO, self.host_info),
            by(cost::SCHED_GET, self.sched_get),
            by(cost::SCHED_SET, self.sched_set),
            by(cost::MEM_SET, self.mem_set),
        ];
        parts
            .iter()
            .fold((0, 0), |(h, x), &(dh, dx)| (h + dh, x + dx))
    }

    /// Lists, host reads, scheduler reads, guest reports, hypercalls and
    /// libxl's xenstore requests, each per tick.
    fn per_tick(self, ticks: u64) -> [f64; 6] {
        let t = ticks as f64;
        let (hypercalls, xenstore) = self.cost();
        [
            self.list as f64 / t,
            self.host_info as f64 / t,
            self.sched_get as f64 / t,
            self.guest_report as f64 / t,
            hypercalls as f64 / t,
            xenstore as f64 / t,
        ]
    }
}

/// A host whose every call is counted.
struct Counting<H> {
    inner: H,
    calls: Calls,
}

impl<H: Host> Host for Counting<H> {
    fn now_ns(&mut self) -> u64 {
        self.inner.now_ns()
    }
    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, HostError> {
        let list = self.inner.list_domains()?;
        self.calls.list += 1;
        self.calls.listed = list.len() as u64;
        Ok(list)
    }
    fn host_info(&mut self) -> Result<HostInfo, HostError> {
        self.calls.host_info += 1;
        self.inner.host_info()
    }
    fn sched_params(&mut self, domid: DomId) -> Result<SchedParams, HostError> {
        self.calls.sched_get += 1;
        self.inner.sched_params(domid)
    }
    fn set_cap(&mut self, domid: DomId, cap: u32) -> Result<(), HostError> {
        self.calls.sched_set += 1;
        self.inner.set_cap(domid, cap)
    }
    fn set_weight(&mut self, domid: DomId, weight: u32) -> Result<(), HostError> {
        self.calls.sched_set += 1;
        self.inner.set_weight(domid, weight)
    }
    fn set_memory_target(&mut self, domid: DomId, target_kb: KiB) -> Result<(), HostError> {
        self.calls.mem_set += 1;
        self.inner.set_memory_target(domid, target_kb)
    }
    // Not counted: the exec actuator's per-domain scheduler lookup (the
    // libxl backend sets through libxl, which finds it itself) and the
    // balloon flag, which the simulator does not keep.
    fn domain_scheduler(&mut self, domid: DomId) -> Result<Option<Scheduler>, HostError> {
        self.inner.domain_scheduler(domid)
    }
    fn set_uncooperative(&mut self, domid: DomId, uncooperative: bool) -> Result<(), HostError> {
        self.inner.set_uncooperative(domid, uncooperative)
    }
    fn guest_report(&mut self, domid: DomId) -> Result<GuestReport, HostError> {
        self.calls.guest_report += 1;
        self.inner.guest_report(domid)
    }
}

/// Clients of VM `i`: a mix of light and busier web loads.
fn clients(i: usize) -> u32 {
    [2, 3, 5, 8][i % 4]
}

fn host_of(domains: usize) -> (SimHost, PolicyConfig) {
    let vms: Vec<SimVm> = (1..=domains)
        .map(|i| SimVm {
            clients: clients(i),
            ..SimVm::new(format!("vm{i}"))
        })
        .collect();
    let policies = (1..=domains)
        .map(|i| DomainPolicy {
            name: format!("vm{i}"),
            sla_ms: (i % 2 == 0).then_some(900.0),
            level: Level {
                load: 0,
                cap_pct: 20,
                mem_kb: 64 * MIB,
            },
            cap_min: 10,
            cap_max: 60,
            mem_min_kb: 64 * MIB,
            mem_max_kb: 128 * MIB,
            weight: 256,
            priority: (i % 3) as u32,
        })
        .collect();
    let sim = SimHost::new(SimConfig {
        seed: 1,
        // Every level fits, with a third again of idle pool.
        guest_pcpus: (domains as u32 * 27).div_ceil(100).max(1),
        host_mem_kb: domains as u64 * 160 * MIB + 1024 * MIB,
        dom0_mem_kb: 1024 * MIB,
        // A coarse model: the simulator's own cost is not what is measured.
        step_ms: 100,
        vms,
    })
    .expect("valid simulated host");
    let config = PolicyConfig {
        host: HostPolicy::default(),
        domains: policies,
    };
    (sim, config)
}

struct Run {
    calls: [f64; 6],
    tick: Duration,
    changes: f64,
}

/// `ticks` ticks after a warm-up; with `churn`, 1% of the VMs change their
/// load before each tick.
fn run(domains: usize, ticks: u64, churn: bool) -> Run {
    let (sim, config) = host_of(domains);
    let host = Counting {
        inner: sim,
        calls: Calls::default(),
    };
    let mut driver = Driver::new(host, Engine::new(config), false).expect("policy fits");
    let mut second = 0u64;
    let mut step = |driver: &mut Driver<Counting<SimHost>>| {
        second += 1;
        driver.host_mut().inner.advance_to(second * SEC);
    };
    // Warm-up: levels set, loads settled, caps moved to where they stay.
    for _ in 0..20 {
        step(&mut driver);
        driver.tick().expect("tick");
    }
    driver.host_mut().calls = Calls::default();
    let mut spent = Duration::ZERO;
    let mut changes = 0usize;
    let changing = (domains / 100).max(1);
    for t in 0..ticks {
        step(&mut driver);
        if churn {
            for k in 0..changing {
                let i = (t as usize * changing + k) % domains + 1;
                let load = if t % 2 == 0 { 40 } else { clients(i) };
                driver
                    .host_mut()
                    .inner
                    .set_clients(&format!("vm{i}"), load)
                    .expect("vm exists");
            }
        }
        let started = Instant::now();
        let report = driver.tick().expect("tick");
        spent += started.elapsed();
        changes += report.applied.len();
        black_box(report);
    }
    Run {
        calls: driver.host().calls.per_tick(ticks),
        tick: spent / ticks as u32,
        changes: changes as f64 / ticks as f64,
    }
}

fn main() {
    // `cargo bench` passes --bench; a filter, if given, is ignored.
    println!(
        "| domains | load | lists | host_info | sched reads | guest reports | changes | \
         hypercalls | a domain | libxl's xenstore requests | a domain | tick ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (domains, ticks) in [(10usize, 200u64), (100, 100), (1_000, 30), (10_000, 8)] {
        for churn in [false, true] {
            let r = run(domains, ticks, churn);
            let c = r.calls;
            println!(
                "| {domains} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.2} | {:.0} | {:.2} | {:.3} |",
                if churn { "1% change" } else { "steady" },
                c[0],
                c[1],
                c[2],
                c[3],
                r.changes,
                c[4],
                c[4] / domains as f64,
                c[5],
                c[5] / domains as f64,
                r.tick.as_secs_f64() * 1e3,
            );
        }
    }
}
