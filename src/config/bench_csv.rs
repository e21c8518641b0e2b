//! The CSV of benchmark runs that `rex decompose` reads:
//!
//! ```text
//! cap,memory,clients,response_ms,domain
//! 20,64M,40,880,vm2
//! ```
//! Columns may come in any order; `domain` is optional and others are
//! ignored. Memory is in MiB, or with a K/M/G/T suffix.

use super::parse_size_kb;
use crate::engine::decompose::BenchRun;
use crate::engine::limits::CAP_LIMIT;

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
pub fn parse_runs(file: &str, text: &str) -> Result<Vec<BenchRun>, String> {
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
pub fn check_domain_name(name: &str) -> Result<(), String> {
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
    fn columns_in_any_order_with_extras_ignored() {
        let text = "run,response_ms,clients,memory,cap\n1,880,40,64M,20\n";
        let runs = parse_runs("r.csv", text).unwrap();
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
        let err = parse_runs("r.csv", text).unwrap_err();
        assert!(err.starts_with("r.csv:4: column `memory'"), "{err}");
        let err = parse_runs("r.csv", "cap,memory,clients\n").unwrap_err();
        assert!(
            err.contains("r.csv:1") && err.contains("response_ms"),
            "{err}"
        );
    }
}
