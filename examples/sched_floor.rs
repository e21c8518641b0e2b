//! The floor under one in-process cap change: the bare libxl call rex makes
//! for it (`libxl_domain_sched_params_set` with only the cap and the
//! domain's scheduler set, as read once before), timed in a loop on a real
//! Xen host. The Xen lab reports rex's own reallocation
//! time as a ratio of this.
//!
//! cargo run --release --example sched_floor -- DOMID [N]
//!
//! Toggles the domain's cap between its present value and 10 points more,
//! N times (default 200), restores it, and prints one JSON object: the
//! count and the mean, median, p95 and minimum of one call, µs; and, timed
//! alternately with it, the mean and median of the same call with the
//! scheduler left for libxl to find (`found_*`).

use std::process::ExitCode;
use std::time::Instant;

use rex::xl::types::DomainSchedParams;
use rex::xl::{Ctx, Libxl};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(domid), count) = (
        args.first().and_then(|a| a.parse::<u32>().ok()),
        args.get(1).map_or(Ok(200), |a| a.parse::<usize>()),
    ) else {
        eprintln!("usage: sched_floor DOMID [N]");
        return ExitCode::from(2);
    };
    let Ok(count @ 1..) = count else {
        eprintln!("sched_floor: N must be a positive number");
        return ExitCode::from(2);
    };
    match run(domid, count) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sched_floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn set_cap(ctx: &Ctx, domid: u32, scheduler: i32, cap: i32) -> Result<(), rex::xl::XlError> {
    let mut params = DomainSchedParams::new();
    params.set_scheduler(scheduler);
    params.set_cap(cap);
    ctx.set_domain_sched_params(domid, &params)
}

fn run(domid: u32, count: usize) -> Result<String, rex::xl::XlError> {
    let ctx = Ctx::new()?;
    let read = ctx.domain_sched_params(domid)?;
    let (original, scheduler) = (read.cap(), read.scheduler());
    // An uncapped domain (0) is toggled between 10 and 20.
    let low = original.max(10);
    // Side by side, alternating: the scheduler given (rex's call) and left
    // for libxl to find (what rex did before, and what `xl sched-*` does).
    let unknown = DomainSchedParams::new().scheduler();
    let mut given = Vec::with_capacity(count);
    let mut found = Vec::with_capacity(count);
    for i in 0..count {
        let cap = if i % 2 == 0 { low + 10 } else { low };
        let (first, second) = if i % 2 == 0 {
            (scheduler, unknown)
        } else {
            (unknown, scheduler)
        };
        for sched in [first, second] {
            let start = Instant::now();
            set_cap(&ctx, domid, sched, cap)?;
            let us = start.elapsed().as_secs_f64() * 1e6;
            if sched == scheduler {
                &mut given
            } else {
                &mut found
            }
            .push(us);
        }
    }
    set_cap(&ctx, domid, scheduler, original)?;
    let (mean, median, p95, min) = summary(&mut given);
    let (found_mean, found_median, ..) = summary(&mut found);
    Ok(format!(
        "{{\"n\":{count},\"mean_us\":{mean:.1},\"median_us\":{median:.1},\"p95_us\":{p95:.1},\"min_us\":{min:.1},\"found_mean_us\":{found_mean:.1},\"found_median_us\":{found_median:.1}}}"
    ))
}

/// Mean, median, p95 and minimum.
fn summary(micros: &mut [f64]) -> (f64, f64, f64, f64) {
    micros.sort_by(f64::total_cmp);
    let n = micros.len();
    let at = |q: f64| micros[((n - 1) as f64 * q).round() as usize];
    (
        micros.iter().sum::<f64>() / n as f64,
        at(0.5),
        at(0.95),
        micros[0],
    )
}
