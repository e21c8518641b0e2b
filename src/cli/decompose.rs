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

use rex::config::parse_size_kb;
use rex::engine::decompose::{decompose, BenchRun, DomainDecomposition};
use rex::engine::limits::CAP_LIMIT;
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
    let mut runs = parse_runs(&args.runs, &text)?;
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

/// Where each required column is.
struct Columns {
    cap: usize,
    memory: usize,
    clients: usize,
    response_ms: usize,
    domain: Option<usize>,
    count: usize,
}

/// Parses the CSV; an error names `file:line`, the column and the value.
fn parse_runs(path: &Path, text: &str) -> Result<Vec<BenchRun>, String> {
    let file = path.display();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_start_matches('\u{feff}').trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    let (header_line, header) = lines
        .next()
        .ok_or_else(|| format!("{file}: empty: a header line is required"))?;
    let columns = parse_header(header).map_err(|e| format!("{file}:{header_line}: {e}"))?;
    let mut runs = Vec::new();
    for (number, line) in lines {
        let at = |column: &str, message: String| {
            format!("{file}:{number}: column `{column}': {message}")
        };
        let fields: Vec<&str> = line.split(',').map(unquote).collect();
        if fields.len() != columns.count {
            return Err(format!(
                "{file}:{number}: {} fields, but the header has {}",
                fields.len(),
                columns.count
            ));
        }
        let cap = fields[columns.cap];
        let cap_pct = cap
            .trim_end_matches('%')
            .parse::<u32>()
            .ok()
            .filter(|c| (1..=CAP_LIMIT).contains(c))
            .ok_or_else(|| {
                at(
                    "cap",
                    format!("`{cap}' is not a whole percent in 1..={CAP_LIMIT}"),
                )
            })?;
        let memory = fields[columns.memory];
        let mem_kb = parse_size_kb(memory).filter(|&kb| kb > 0).ok_or_else(|| {
            at(
                "memory",
                format!("`{memory}' is not a memory size (MiB, or with a K/M/G suffix)"),
            )
        })?;
        let clients = fields[columns.clients];
        let load = clients
            .parse::<u32>()
            .map_err(|_| at("clients", format!("`{clients}' is not a whole number")))?;
        let response = fields[columns.response_ms];
        let response_ms = response
            .parse::<f64>()
            .ok()
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .ok_or_else(|| {
                at(
                    "response_ms",
                    format!("`{response}' is not a number of ms ≥ 0"),
                )
            })?;
        let domain = match columns.domain.map(|i| fields[i]) {
            Some(name) => {
                check_domain_name(name).map_err(|e| at("domain", e))?;
                Some(name.to_string())
            }
            None => None,
        };
        runs.push(BenchRun {
            domain,
            load,
            cap_pct,
            mem_kb,
            response_ms,
        });
    }
    if runs.is_empty() {
        return Err(format!("{file}: no runs after the header"));
    }
    Ok(runs)
}

fn parse_header(header: &str) -> Result<Columns, String> {
    let names: Vec<String> = header
        .split(',')
        .map(|n| unquote(n).to_ascii_lowercase())
        .collect();
    let find = |wanted: &[&str]| -> Result<Option<usize>, String> {
        let mut found = names
            .iter()
            .enumerate()
            .filter(|(_, n)| wanted.contains(&n.as_str()));
        let first = found.next().map(|(i, _)| i);
        if found.next().is_some() {
            return Err(format!("header: column `{}' appears twice", wanted[0]));
        }
        Ok(first)
    };
    let required = |wanted: &[&str]| -> Result<usize, String> {
        find(wanted)?.ok_or_else(|| {
            format!(
                "header: no `{}' column (need cap, memory, clients, response_ms; found {})",
                wanted[0],
                names.join(", ")
            )
        })
    };
    Ok(Columns {
        cap: required(&["cap"])?,
        memory: required(&["memory"])?,
        clients: required(&["clients", "load"])?,
        response_ms: required(&["response_ms"])?,
        domain: find(&["domain"])?,
        count: names.len(),
    })
}

fn unquote(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(field)
        .trim()
}

/// A name that can go into a `domain=...` spec as it is.
fn check_domain_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty domain name".to_string());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| matches!(c, ',' | '=' | '"' | '\'') || c.is_whitespace())
    {
        return Err(format!("domain name `{name}' contains `{bad}'"));
    }
    Ok(())
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

    #[test]
    fn columns_in_any_order_with_extras_ignored() {
        let text = "run,response_ms,clients,memory,cap\n1,880,40,64M,20\n";
        let runs = parse_runs(Path::new("r.csv"), text).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            (runs[0].cap_pct, runs[0].mem_kb, runs[0].load),
            (20, 65_536, 40)
        );
        assert_eq!(runs[0].response_ms, 880.0);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let text = "cap,memory,clients,response_ms\n20,64M,40,880\n\n20,64X,40,880\n";
        let err = parse_runs(Path::new("r.csv"), text).unwrap_err();
        assert!(err.starts_with("r.csv:4: column `memory'"), "{err}");
        let err = parse_runs(Path::new("r.csv"), "cap,memory,clients\n").unwrap_err();
        assert!(
            err.contains("r.csv:1") && err.contains("response_ms"),
            "{err}"
        );
    }
}
