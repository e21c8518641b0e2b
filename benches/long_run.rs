//! A daemon that runs for weeks: the loop of `rex run` (driver, status
//! board, metrics, JSON display) against the simulated host for a million
//! ticks of one second: a diurnal load on six managed domains, one of them
//! destroyed and created again (a new domid) every ten minutes, and an
//! unmanaged domain of a fresh name every five.
//!
//! Prints the process's resident memory and the log written per simulated
//! hour at 10^3 ticks, at 24 h (86 400) and at 10^6, and the ratios: the
//! daemon's memory must stay flat (within 10% from 10^3 to 10^6 ticks) and
//! its log bounded. `cargo bench --bench long_run` (add `-- --quick` for
//! 10^5 ticks).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rex::config::policy::parse_policy_text;
use rex::daemon::control::Board;
use rex::daemon::metrics::Metrics;
use rex::display::Display;
use rex::engine::Engine;
use rex::host::driver::Driver;
use rex::host::sim::{SimConfig, SimHost, SimVm};

const MANAGED: usize = 6;
const SEC_NS: u64 = 1_000_000_000;

/// Counts what the display writes, keeps nothing.
#[derive(Clone, Default)]
struct CountingSink(Arc<AtomicU64>);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn vm(name: String, clients: u32) -> SimVm {
    SimVm {
        clients,
        mem_kb: 128 << 10,
        mem_max_kb: 256 << 10,
        ..SimVm::new(name)
    }
}

/// Clients of managed domain `i` at simulated second `t`: a day-long wave.
fn diurnal_clients(i: usize, t: u64) -> u32 {
    let phase = (t as f64 / 86_400.0 + i as f64 / MANAGED as f64) * std::f64::consts::TAU;
    (6.0 + 5.0 * phase.sin()).round() as u32
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let ticks: u64 = if quick { 100_000 } else { 1_000_000 };
    let entries: Vec<String> = (0..MANAGED)
        .map(|i| {
            let sla = if i % 2 == 0 { ",sla_ms=900" } else { "" };
            format!("\"name=web{i}{sla},cap=15,cap_min=10,cap_max=60,memory=128M,mem_min=96M,mem_max=256M\"")
        })
        .collect();
    let policy = format!(
        "interval = 1000\nslush = \"16M\"\ndomains = [ {} ]\n",
        entries.join(", ")
    );
    let config = parse_policy_text("long-run.cfg", &policy).expect("the bench's policy");
    let host = SimHost::new(SimConfig {
        seed: 7,
        guest_pcpus: 2,
        host_mem_kb: 4 << 20,
        dom0_mem_kb: 512 << 10,
        step_ms: 100,
        vms: (0..MANAGED)
            .map(|i| vm(format!("web{i}"), diurnal_clients(i, 0)))
            .collect(),
    })
    .expect("the bench's host");
    let mut driver = Driver::new(host, Engine::new(config), false).expect("the policy fits");
    let mut board = Board::new(false, Path::new("long-run.cfg"));
    let mut metrics = Metrics::new(None);
    let written = CountingSink::default();
    let mut display = Display::new(Box::new(written.clone()), true, false);

    let started = Instant::now();
    let mut marks = Vec::new();
    let mut unmanaged: Option<String> = None;
    for t in 1..=ticks {
        let host = driver.host_mut();
        host.advance(SEC_NS);
        let _ = host.take_samples();
        if t % 60 == 0 {
            for i in 0..MANAGED {
                let _ = host.set_clients(&format!("web{i}"), diurnal_clients(i, t));
            }
        }
        // Destroyed at one tick (it is listed dying until the next step),
        // created again at the next.
        let churned = format!("web{}", (t / 600) as usize % MANAGED);
        if t % 600 == 0 {
            host.destroy_domain(&churned).expect("destroy");
        } else if t % 600 == 1 && t > 600 {
            host.create_domain(vm(churned, 3)).expect("create again");
        }
        if t % 300 == 0 {
            if let Some(name) = unmanaged.take() {
                host.destroy_domain(&name).expect("destroy unmanaged");
            } else {
                let name = format!("tmp{t}");
                host.create_domain(SimVm {
                    cap: 10,
                    ..vm(name.clone(), 1)
                })
                .expect("create unmanaged");
                unmanaged = Some(name);
            }
        }
        let tick_started = Instant::now();
        let report = driver.tick().expect("a simulated tick");
        board.record(&report, tick_started.elapsed());
        let config = driver.engine().config().clone();
        metrics.record(&report, &config);
        display.tick(&report, &config);
        if t == 1_000 || t == 86_400 || t == ticks {
            // The log's mean rate so far, bytes per simulated hour.
            let per_hour = written.0.load(Ordering::Relaxed) * 3600 / t;
            marks.push((t, rss_kib(), per_hour, started.elapsed()));
        }
    }
    println!("long run: {ticks} ticks of 1 s (simulated), {MANAGED} managed domains, churn every 5/10 min");
    println!(
        "{:>9} {:>10} {:>14} {:>10}",
        "ticks", "RSS KiB", "log B/hour", "wall s"
    );
    for (t, rss, hour, wall) in &marks {
        println!("{t:>9} {rss:>10} {hour:>14} {:>10.1}", wall.as_secs_f64());
    }
    let first = marks.first().expect("marks").1 as f64;
    let last = marks.last().expect("marks");
    println!(
        "RSS ratio {} / 1000 ticks: {:.3} (goal: within 1.10); log per hour: {} bytes over the first 1000 ticks, {} over all; {:.1} µs a tick; {} reallocations",
        last.0,
        last.1 as f64 / first,
        marks.first().map_or(0, |m| m.2),
        last.2,
        last.3.as_secs_f64() * 1e6 / ticks as f64,
        driver.timings().len()
    );
}
