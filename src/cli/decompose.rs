//! `rex decompose`: benchmark runs (CSV) → decomposition rows for a policy file.
//!
//! ```text
//! cap,memory,clients,response_ms,domain
//! 20,64M,40,880,vm2
//! ```
//! Columns may come in any order; `domain` is optional and others are
//! ignored. Memory is in MiB, or with a K/M/G/T suffix.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use rex::config::bench_csv::{check_domain_name, parse_runs};
use rex::engine::decompose::{decompose, DomainDecomposition};
use rex::engine::KiB;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// CSV of benchmark runs; header with cap, memory, clients, response_ms and optionally domain
    pub runs: PathBuf,
    /// Response-time target the levels must meet, ms
    #[arg(long = "sla-ms", value_name = "MS")]
    pub sla_ms: f64,
    /// The domain the runs are of, when the CSV has no `domain` column
    /// (with one, only that domain's runs are used)
    #[arg(long, value_name = "NAME")]
    pub domain: Option<String>,
    /// Print a JSON object instead of policy-file syntax
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: Args) -> ExitCode {
    match run(&args) {
        Ok(output) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(output.as_bytes()).and_then(|_| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    rex::eprintln_safe!("rex decompose: stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(message) => {
            rex::eprintln_safe!("rex decompose: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads, decomposes and formats; warnings go to stderr as they are found.
fn run(args: &Args) -> Result<String, String> {
    if !(args.sla_ms.is_finite() && args.sla_ms > 0.0) {
        return Err(format!(
            "--sla-ms: the SLA target must be a positive number of ms, not {}",
            args.sla_ms
        ));
    }
    let text = rex::input::read_text_file(&args.runs)?;
    let mut runs = parse_runs(&args.runs.display().to_string(), &text)?;
    if let Some(name) = &args.domain {
        check_domain_name(name).map_err(|e| format!("--domain: {e}"))?;
        if runs.iter().any(|r| r.domain.is_some()) {
            runs.retain(|r| r.domain.as_deref() == Some(name));
            if runs.is_empty() {
                return Err(format!(
                    "{}: no runs of domain `{name}'",
                    args.runs.display()
                ));
            }
        } else {
            runs.iter_mut().for_each(|r| r.domain = Some(name.clone()));
        }
    }
    let decomposition =
        decompose(&runs, args.sla_ms).map_err(|e| format!("{}: {e}", args.runs.display()))?;
    for d in &decomposition {
        let who = d
            .domain
            .as_deref()
            .map_or(String::new(), |n| format!("domain `{n}', "));
        for unmet in &d.unmet {
            let f = &unmet.fastest;
            rex::eprintln_safe!(
                "rex decompose: warning: {who}load {}: no run met {} ms (fastest {} ms with \
                 cap={},memory={}); no row written, the policy uses the highest load that met it",
                unmet.load,
                args.sla_ms,
                f.response_ms,
                f.cap_pct,
                size(f.mem_kb)
            );
        }
        if d.table.rows.is_empty() {
            return Err(format!(
                "{}: {who}no run met the SLA of {} ms at any load",
                args.runs.display(),
                args.sla_ms
            ));
        }
    }
    if decomposition.iter().any(|d| d.domain.is_none()) {
        rex::eprintln_safe!(
            "rex decompose: warning: no `domain' column and no --domain: add domain=NAME to each \
             row before pasting"
        );
    }
    Ok(if args.json {
        to_json(&decomposition, args.sla_ms)
    } else {
        to_policy(&decomposition, &args.runs, args.sla_ms)
    })
}

/// The `decomposition = [ ... ]` setting of a policy file.
fn to_policy(decomposition: &[DomainDecomposition], path: &Path, sla_ms: f64) -> String {
    let rows: Vec<String> = decomposition
        .iter()
        .flat_map(|d| {
            let prefix = d
                .domain
                .as_deref()
                .map_or(String::new(), |n| format!("domain={n},"));
            d.table.rows.iter().map(move |row| {
                format!(
                    "\"{prefix}load={},cap={},memory={}\"",
                    row.load,
                    row.cap_pct,
                    size(row.mem_kb)
                )
            })
        })
        .collect();
    let mut out = format!(
        "# SLA decomposition of {} for {sla_ms} ms: per load, the least cap, then the least \
         memory, that met it\n",
        path.display()
    );
    let _ = writeln!(
        out,
        "decomposition = [ {} ]",
        rows.join(",\n                  ")
    );
    out
}

fn to_json(decomposition: &[DomainDecomposition], sla_ms: f64) -> String {
    let domains: Vec<serde_json::Value> = decomposition
        .iter()
        .map(|d| {
            let levels: Vec<serde_json::Value> = d
                .chosen
                .iter()
                .map(|run| {
                    json!({ "load": run.load, "cap": run.cap_pct, "memory_kb": run.mem_kb,
                            "memory": size(run.mem_kb), "response_ms": run.response_ms })
                })
                .collect();
            let unmet: Vec<serde_json::Value> = d
                .unmet
                .iter()
                .map(|u| {
                    json!({ "load": u.load, "fastest_response_ms": u.fastest.response_ms,
                            "cap": u.fastest.cap_pct, "memory_kb": u.fastest.mem_kb })
                })
                .collect();
            json!({ "domain": d.domain, "levels": levels, "unmet": unmet })
        })
        .collect();
    let doc = json!({ "sla_ms": sla_ms, "domains": domains });
    format!("{doc:#}\n")
}

/// Memory as policy files write it: the largest whole unit.
fn size(kb: KiB) -> String {
    const MIB: KiB = 1024;
    const GIB: KiB = 1024 * 1024;
    if kb != 0 && kb.is_multiple_of(GIB) {
        format!("{}G", kb / GIB)
    } else if kb.is_multiple_of(MIB) {
        format!("{}M", kb / MIB)
    } else {
        format!("{kb}K")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_largest_whole_unit() {
        assert_eq!(size(64 * 1024), "64M");
        assert_eq!(size(2 * 1024 * 1024), "2G");
        assert_eq!(size(1536), "1536K");
    }
}
