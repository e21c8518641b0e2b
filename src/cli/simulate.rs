//! `rex simulate [SCENARIO...] [--suite] [--policy NAME | --compare]`:
//! replay scenarios on the simulated host under rex's control law and the
//! baselines (static, threshold, proportional), and print ReX's display,
//! Table 1 and the SLA metrics of every domain under every law.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use rex::config::policy::locate_misfits;
use rex::config::scenario::Scenario;
use rex::display::Display;
use rex::host::driver::DriverError;
use rex::simulate::{self, Law, RunResult, SimulateError};
use rex::stats::{summarize, Summary};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files in xl cfg syntax (default: the built-in paper-exp1)
    pub scenarios: Vec<PathBuf>,
    /// Run every scenario of the built-in suite
    #[arg(long, conflicts_with = "scenarios")]
    pub suite: bool,
    /// Run one control law only: rex, static, threshold or proportional
    #[arg(long, value_name = "NAME", value_parser = parse_law, conflicts_with = "compare")]
    pub policy: Option<Law>,
    /// Run all four laws on the same seeds, side by side (the default)
    #[arg(long)]
    pub compare: bool,
    /// Print one JSON object per scenario with the results instead of tables
    #[arg(long)]
    pub json: bool,
    /// Write a plot of caps, memory and response time over time (SVG); with
    /// several scenarios, one file each, named FILE-SCENARIO.svg
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Override the scenarios' number of repetitions (1..=10000, as in a
    /// scenario file)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repetitions: Option<u32>,
    /// Show usage every tick in the live display
    #[arg(short, long)]
    pub verbose: bool,
}

fn parse_law(name: &str) -> Result<Law, String> {
    Law::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Law::ALL.iter().map(|l| l.name()).collect();
        format!("unknown policy `{name}' (one of: {})", names.join(", "))
    })
}

pub fn main(args: Args) -> ExitCode {
    // A plot that cannot be written is found out before the run, not after.
    if let Some(dir) = args.svg.as_deref().and_then(Path::parent) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if !dir.is_dir() {
            rex::eprintln_safe!("rex simulate: --svg: {}: no such directory", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let mut scenarios = Vec::new();
    if args.suite {
        scenarios = Scenario::suite();
    } else if args.scenarios.is_empty() {
        scenarios.push(Scenario::builtin());
    }
    for path in &args.scenarios {
        match Scenario::load(path) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                rex::eprintln_safe!("rex simulate: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // The built-in ones come first and have no file.
    let files = scenarios.len() - args.scenarios.len();
    for (i, scenario) in scenarios.iter_mut().enumerate() {
        if let Some(n) = args.repetitions {
            scenario.repetitions = n;
        }
        match simulate::preflight(scenario) {
            Ok(()) => {}
            Err(SimulateError::Start(DriverError::Policy(e))) if i >= files => {
                let path = &args.scenarios[i - files];
                let e = locate_misfits(path, &scenario.policy, &e);
                rex::eprintln_safe!("rex simulate: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                rex::eprintln_safe!("rex simulate: {}", rex::error_chain(&e));
                return ExitCode::FAILURE;
            }
        }
    }
    let laws: Vec<Law> = match args.policy {
        Some(law) => vec![law],
        None => Law::ALL.to_vec(),
    };
    let several = scenarios.len() > 1;
    let mut summary = Vec::new();
    for scenario in &scenarios {
        let runs = match run_laws(scenario, &laws, &args, !several) {
            Ok(runs) => runs,
            Err(e) => {
                rex::eprintln_safe!("rex simulate: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(path) = &args.svg {
            let path = if several {
                svg_path_for(path, &scenario.name)
            } else {
                path.clone()
            };
            let sla = scenario
                .policy
                .domains
                .iter()
                .filter_map(|d| d.sla_ms)
                .reduce(f64::min);
            if let Err(e) = crate::plot::write_svg(&path, &runs, sla) {
                rex::eprintln_safe!("rex simulate: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        let out = if args.json {
            print_json(&scenario.name, &runs)
        } else {
            print_tables(scenario, &runs)
        };
        if let Err(e) = out {
            rex::eprintln_safe!("rex simulate: stdout: {e}");
            return ExitCode::FAILURE;
        }
        summary.push((scenario.name.clone(), runs));
    }
    if several && !args.json {
        if let Err(e) = print_suite_summary(&summary) {
            rex::eprintln_safe!("rex simulate: stdout: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn run_laws(
    scenario: &Scenario,
    laws: &[Law],
    args: &Args,
    live: bool,
) -> Result<Vec<RunResult>, String> {
    let mut runs = Vec::new();
    for &law in laws {
        let mut display = None;
        if live && !args.json && law == laws[0] {
            writeln!(
                std::io::stdout(),
                "== {}: {}, repetition 1 of {} ==",
                scenario.name,
                law.name(),
                scenario.repetitions
            )
            .map_err(|e| format!("stdout: {e}"))?;
            display = Some(Display::new(
                Box::new(std::io::stdout()),
                false,
                args.verbose,
            ));
        }
        let run =
            simulate::run(scenario, law, display.as_mut()).map_err(|e| rex::error_chain(&e))?;
        runs.push(run);
    }
    Ok(runs)
}

/// `out.svg` → `out-NAME.svg`.
fn svg_path_for(path: &Path, name: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or("rex".into(), |s| s.to_string_lossy());
    path.with_file_name(format!("{stem}-{name}.svg"))
}

/// The change of a VM's mean response under `run` against static, percent
/// (collateral damage, for VMs without an SLA).
fn collateral_pct(runs: &[RunResult], run: &RunResult, vm: &str) -> Option<f64> {
    let reference = runs.iter().find(|r| r.law == Law::Static)?;
    let base = summarize(&reference.vm(vm)?.run_means_ms)?.mean;
    let this = summarize(&run.vm(vm)?.run_means_ms)?.mean;
    (base > 0.0).then(|| (this / base - 1.0) * 100.0)
}

fn print_json(name: &str, runs: &[RunResult]) -> std::io::Result<()> {
    let runs_json: Vec<_> = runs
        .iter()
        .map(|run| {
            let per_run = |total: f64| total / f64::from(run.repetitions.max(1));
            let vms: Vec<_> = run
                .vms
                .iter()
                .map(|vm| {
                    let s = summarize(&vm.run_means_ms);
                    let collateral = vm
                        .sla_ms
                        .is_none()
                        .then(|| collateral_pct(runs, run, &vm.name))
                        .flatten();
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
                        "p95_ms": vm.p95_ms(),
                        "violation_s": vm.sla_ms.map(|_| vm.mean_violation_s()),
                        "recovery_s": vm.mean_recovery_s(),
                        "reversals_per_min": per_run(vm.reversals as f64) / (run.measured_s / 60.0).max(1e-9),
                        "cpu_above_guarantee_pct_s": per_run(vm.cpu_above_guarantee_pct_s),
                        "mem_above_guarantee_mib_s": per_run(vm.mem_above_guarantee_mib_s),
                        "collateral_pct": collateral,
                        "oom_kills": vm.oom_kills,
                        "uncooperative": vm.uncooperative,
                    })
                })
                .collect();
            json!({"mode": run.law.name(), "violation_s": run.violation_s(), "vms": vms})
        })
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", json!({"scenario": name, "runs": runs_json}))
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
    let many = runs.first().map_or(0, |r| r.vms.len()) > 24;
    if many {
        writeln!(
            out,
            "({} VMs: per-VM rows left out, totals below)",
            runs[0].vms.len()
        )?;
    } else {
        print_table1(&mut out, runs)?;
        print_metrics(&mut out, runs)?;
    }
    for vm in runs.first().map_or(&[][..], |r| &r.vms[..]) {
        let Some(sla) = vm.sla_ms else { continue };
        if many {
            break;
        }
        let verdicts: Vec<String> = runs
            .iter()
            .filter_map(|run| {
                let s = summarize(&run.vm(&vm.name)?.run_means_ms)?;
                let verdict = if s.mean <= sla { "met" } else { "MISSED" };
                Some(format!(
                    "{verdict} with {} (mean {:.0} ms)",
                    run.law.name(),
                    s.mean
                ))
            })
            .collect();
        writeln!(out, "{}: SLA {sla:.0} ms {}", vm.name, verdicts.join(", "))?;
    }
    let totals: Vec<String> = runs
        .iter()
        .map(|r| format!("{} {:.1}", r.law.name(), r.violation_s()))
        .collect();
    writeln!(
        out,
        "SLA-violation seconds per run, all SLA domains: {}",
        totals.join(", ")
    )?;
    // A guest that ran out of memory is a failure whatever its latency.
    for run in runs {
        for vm in run.vms.iter().filter(|vm| vm.oom_kills > 0) {
            writeln!(
                out,
                "{}: {} ran out of memory (OOM killer) {} time(s) over {} run(s)",
                run.law.name(),
                vm.name,
                vm.oom_kills,
                run.repetitions
            )?;
        }
        for vm in run.vms.iter().filter(|vm| vm.uncooperative > 0) {
            writeln!(
                out,
                "{}: {}'s balloon found uncooperative {} time(s) over {} run(s)",
                run.law.name(),
                vm.name,
                vm.uncooperative,
                run.repetitions
            )?;
        }
    }
    Ok(())
}

fn print_table1(out: &mut impl Write, runs: &[RunResult]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<13} {:<10} {:>9} {:>9} {:>8} {:>21} {:>4} {:>9} {:>8} {:>7}",
        "policy", "vm", "mean ms", "median", "sd", "95% CI", "n", "requests", "reallocs", "SLA ms"
    )?;
    for run in runs {
        for vm in &run.vms {
            let sla = vm.sla_ms.map_or("-".into(), |s| format!("{s:.0}"));
            match summarize(&vm.run_means_ms) {
                Some(s) => writeln!(
                    out,
                    "{:<13} {:<10} {:>9.2} {:>9.2} {:>8.2} {:>21} {:>4} {:>9} {:>8} {:>7}",
                    run.law.name(),
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
                    "{:<13} {:<10} {:>9} (no requests completed)",
                    run.law.name(),
                    vm.name,
                    "-"
                )?,
            }
        }
    }
    Ok(())
}

fn print_metrics(out: &mut impl Write, runs: &[RunResult]) -> std::io::Result<()> {
    writeln!(out, "\nper run (means over repetitions):")?;
    writeln!(
        out,
        "{:<13} {:<10} {:>8} {:>9} {:>9} {:>8} {:>11} {:>10}",
        "policy", "vm", "p95 ms", "SLA-viol", "recovery", "rev/min", "cpu>g %·s", "collateral"
    )?;
    for run in runs {
        let reps = f64::from(run.repetitions.max(1));
        for vm in &run.vms {
            let p95 = vm.p95_ms().map_or("-".into(), |p| format!("{p:.0}"));
            let viol = vm
                .sla_ms
                .map_or("-".into(), |_| format!("{:.1} s", vm.mean_violation_s()));
            let recovery = vm
                .mean_recovery_s()
                .map_or("-".into(), |r| format!("{r:.1} s"));
            let reversals = vm.reversals as f64 / reps / (run.measured_s / 60.0).max(1e-9);
            let collateral = match vm.sla_ms {
                Some(_) => "-".into(),
                None => {
                    collateral_pct(runs, run, &vm.name).map_or("-".into(), |c| format!("{c:+.1}%"))
                }
            };
            writeln!(
                out,
                "{:<13} {:<10} {:>8} {:>9} {:>9} {:>8.2} {:>11.0} {:>10}",
                run.law.name(),
                vm.name,
                p95,
                viol,
                recovery,
                reversals,
                vm.cpu_above_guarantee_pct_s / reps,
                collateral
            )?;
        }
    }
    Ok(())
}

/// One line per scenario: SLA-violation seconds under each law, and
/// whether any SLA domain did worse under rex than under static.
fn print_suite_summary(summary: &[(String, Vec<RunResult>)]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let laws: Vec<Law> = summary
        .first()
        .map_or(Vec::new(), |(_, runs)| runs.iter().map(|r| r.law).collect());
    write!(
        out,
        "\n== suite: SLA-violation seconds per run ==\n{:<16}",
        "scenario"
    )?;
    for law in &laws {
        write!(out, " {:>12}", law.name())?;
    }
    writeln!(out, "  SLA domains worse under rex than static")?;
    for (name, runs) in summary {
        write!(out, "{name:<16}")?;
        for run in runs {
            write!(out, " {:>12.1}", run.violation_s())?;
        }
        let worse = worse_than_static(runs);
        let worse = if worse.is_empty() {
            "none".to_string()
        } else {
            worse.join(", ")
        };
        writeln!(out, "  {worse}")?;
    }
    Ok(())
}

/// SLA domains with more violation seconds under rex than under static.
fn worse_than_static(runs: &[RunResult]) -> Vec<String> {
    let (Some(rex), Some(stat)) = (
        runs.iter().find(|r| r.law == Law::Rex),
        runs.iter().find(|r| r.law == Law::Static),
    ) else {
        return Vec::new();
    };
    rex.vms
        .iter()
        .filter(|vm| vm.sla_ms.is_some())
        .filter(|vm| {
            stat.vm(&vm.name)
                .is_some_and(|s| vm.mean_violation_s() > s.mean_violation_s())
        })
        .map(|vm| vm.name.clone())
        .collect()
}

fn ci_text(s: &Summary) -> String {
    if s.ci95.0.is_finite() && s.ci95.1.is_finite() {
        format!("{:.2}–{:.2}", s.ci95.0, s.ci95.1)
    } else {
        "-".into()
    }
}
