//! `rex simulate [SCENARIO] [--json] [--svg FILE]`: replay a scenario on the
//! simulated host with rex and with static allocation, like the paper's
//! Experiment 1, and print ReX's display and Table 1.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use crate::config::scenario::Scenario;
use crate::display::Display;
use crate::simulate::{self, Mode, RunResult};
use crate::stats::{summarize, Summary};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file in xl cfg syntax (default: the built-in paper-exp1)
    pub scenario: Option<PathBuf>,
    /// Print one JSON object with the results instead of the display
    #[arg(long)]
    pub json: bool,
    /// Write a plot of caps, memory and response time over time (SVG)
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Override the scenario's number of repetitions
    #[arg(long, value_name = "N")]
    pub repetitions: Option<u32>,
    /// Show usage every tick in the live display
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn main(args: Args) -> ExitCode {
    let mut scenario = match &args.scenario {
        Some(path) => match Scenario::load(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("rex simulate: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Scenario::builtin(),
    };
    if let Some(n) = args.repetitions {
        scenario.repetitions = n.max(1);
    }

    if let Err(e) = simulate::preflight(&scenario) {
        eprintln!("rex simulate: {}", crate::host::driver::error_chain(&e));
        return ExitCode::FAILURE;
    }
    let mut runs = Vec::new();
    for mode in [Mode::Rex, Mode::Static] {
        let mut display = (!args.json && mode == Mode::Rex).then(|| {
            println!(
                "== {}: rex, repetition 1 of {} ==",
                scenario.name, scenario.repetitions
            );
            Display::new(Box::new(std::io::stdout()), false, args.verbose)
        });
        match simulate::run(&scenario, mode, display.as_mut()) {
            Ok(run) => runs.push(run),
            Err(e) => {
                eprintln!("rex simulate: {}", crate::host::driver::error_chain(&e));
                return ExitCode::FAILURE;
            }
        }
    }

    if let Some(path) = &args.svg {
        let sla = scenario
            .policy
            .domains
            .iter()
            .filter_map(|d| d.sla_ms)
            .reduce(f64::min);
        if let Err(e) = crate::plot::write_svg(path, &runs, sla) {
            eprintln!("rex simulate: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let out = if args.json {
        print_json(&scenario.name, &runs)
    } else {
        print_tables(&scenario, &runs)
    };
    if let Err(e) = out {
        eprintln!("rex simulate: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_json(name: &str, runs: &[RunResult]) -> std::io::Result<()> {
    let runs: Vec<_> = runs
        .iter()
        .map(|run| {
            let vms: Vec<_> = run
                .vms
                .iter()
                .map(|vm| {
                    let s = summarize(&vm.run_means_ms);
                    json!({
                        "name": vm.name,
                        "mean_ms": s.map(|s| s.mean),
                        "median_ms": s.map(|s| s.median),
                        "sd_ms": s.map(|s| s.sd),
                        "ci95_ms": s.map(|s| [s.ci95.0, s.ci95.1]),
                        "n": s.map_or(0, |s| s.n),
                        "requests": vm.requests,
                        "reallocations": vm.reallocations,
                        "sla_ms": vm.sla_ms,
                    })
                })
                .collect();
            json!({"mode": run.mode.name(), "vms": vms})
        })
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", json!({"scenario": name, "runs": runs}))
}

fn print_tables(scenario: &Scenario, runs: &[RunResult]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\n== {}: response time per VM over {} repetition(s), measured from {} s ==",
        scenario.name,
        scenario.repetitions,
        scenario.measure_from_ms / 1000
    )?;
    writeln!(
        out,
        "{:<7} {:<10} {:>9} {:>9} {:>8} {:>21} {:>4} {:>9} {:>7} {:>8}",
        "mode", "vm", "mean ms", "median", "sd", "95% CI", "n", "requests", "reallocs", "SLA ms"
    )?;
    for run in runs {
        for vm in &run.vms {
            let sla = vm.sla_ms.map_or("-".into(), |s| format!("{s:.0}"));
            match summarize(&vm.run_means_ms) {
                Some(s) => writeln!(
                    out,
                    "{:<7} {:<10} {:>9.2} {:>9.2} {:>8.2} {:>21} {:>4} {:>9} {:>7} {:>8}",
                    run.mode.name(),
                    vm.name,
                    s.mean,
                    s.median,
                    s.sd,
                    ci_text(&s),
                    s.n,
                    vm.requests,
                    vm.reallocations,
                    sla
                )?,
                None => writeln!(
                    out,
                    "{:<7} {:<10} {:>9} (no requests completed)",
                    run.mode.name(),
                    vm.name,
                    "-"
                )?,
            }
        }
    }
    for vm in runs.first().map_or(&[][..], |r| &r.vms[..]) {
        let Some(sla) = vm.sla_ms else { continue };
        let verdicts: Vec<String> = runs
            .iter()
            .filter_map(|run| {
                let v = run.vms.iter().find(|v| v.name == vm.name)?;
                let s = summarize(&v.run_means_ms)?;
                let verdict = if s.mean <= sla { "met" } else { "MISSED" };
                Some(format!(
                    "{verdict} with {} (mean {:.0} ms)",
                    run.mode.name(),
                    s.mean
                ))
            })
            .collect();
        writeln!(out, "{}: SLA {sla:.0} ms {}", vm.name, verdicts.join(", "))?;
    }
    Ok(())
}

fn ci_text(s: &Summary) -> String {
    if s.ci95.0.is_finite() && s.ci95.1.is_finite() {
        format!("{:.2}–{:.2}", s.ci95.0, s.ci95.1)
    } else {
        "-".into()
    }
}
