//! SLA decomposition: benchmark runs → a [`DecompTable`] per domain.
//!
//! As in Chen et al. (2007), the application is benchmarked at several load
//! levels with several resource settings; for each load level the table
//! keeps the least resources whose run met the response-time target (least
//! cap first, then least memory). Those rows become the SLA levels rex
//! guarantees.

use std::collections::BTreeMap;

use super::model::KiB;
use super::sla::{DecompTable, Level};

/// One benchmark run: the resources a domain had, the load it served and the
/// response time it achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRun {
    /// The domain benchmarked, when runs of several domains are mixed.
    pub domain: Option<String>,
    /// Load level, e.g. concurrent clients.
    pub load: u32,
    /// Scheduler cap during the run, percent of one pCPU.
    pub cap_pct: u32,
    pub mem_kb: KiB,
    pub response_ms: f64,
}

/// A load level at which no run met the target.
#[derive(Debug, Clone, PartialEq)]
pub struct UnmetLoad {
    pub load: u32,
    /// The fastest run at that load (least cap, then memory, among equals).
    pub fastest: BenchRun,
}

/// The decomposition of one domain's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainDecomposition {
    pub domain: Option<String>,
    /// The loads that met the target, ascending, with the least resources.
    pub table: DecompTable,
    /// The run each row of `table` was taken from, in the same order.
    pub chosen: Vec<BenchRun>,
    /// Loads where every run missed the target, ascending.
    pub unmet: Vec<UnmetLoad>,
}

/// Runs that cannot be decomposed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecomposeError {
    #[error("the SLA target must be a positive number of ms, not {0}")]
    BadTarget(f64),
    #[error("no benchmark runs")]
    NoRuns,
    #[error("run {index}: response time {response_ms} is not a non-negative number of ms")]
    BadResponse { index: usize, response_ms: f64 },
    #[error("run {index}: a cap of 0 means uncapped in Xen, not a measured setting")]
    ZeroCap { index: usize },
}

/// Decomposes `runs` against a response-time target of `sla_ms`, one
/// [`DomainDecomposition`] per domain (sorted by name; runs without a domain
/// form one group). A load where no run met the target is listed in
/// `unmet`, not in the table: the policy then falls back to the highest load
/// that met it.
pub fn decompose(
    runs: &[BenchRun],
    sla_ms: f64,
) -> Result<Vec<DomainDecomposition>, DecomposeError> {
    if !(sla_ms.is_finite() && sla_ms > 0.0) {
        return Err(DecomposeError::BadTarget(sla_ms));
    }
    if runs.is_empty() {
        return Err(DecomposeError::NoRuns);
    }
    // Per domain, per load: the best run that met the target, and the fastest.
    type Best<'a> = (Option<&'a BenchRun>, &'a BenchRun);
    let mut groups: BTreeMap<Option<&str>, BTreeMap<u32, Best>> = BTreeMap::new();
    for (index, run) in runs.iter().enumerate() {
        if !(run.response_ms.is_finite() && run.response_ms >= 0.0) {
            return Err(DecomposeError::BadResponse {
                index,
                response_ms: run.response_ms,
            });
        }
        if run.cap_pct == 0 {
            return Err(DecomposeError::ZeroCap { index });
        }
        let loads = groups.entry(run.domain.as_deref()).or_default();
        let (met, fastest) = loads.entry(run.load).or_insert((None, run));
        if run.response_ms <= sla_ms && met.is_none_or(|m| cheaper(run, m)) {
            *met = Some(run);
        }
        if faster(run, fastest) {
            *fastest = run;
        }
    }
    Ok(groups
        .into_iter()
        .map(|(domain, loads)| {
            let mut table = DecompTable {
                sla_ms,
                rows: Vec::new(),
            };
            let mut chosen = Vec::new();
            let mut unmet = Vec::new();
            for (load, (met, fastest)) in loads {
                match met {
                    Some(run) => {
                        table.rows.push(Level {
                            load,
                            cap_pct: run.cap_pct,
                            mem_kb: run.mem_kb,
                        });
                        chosen.push(run.clone());
                    }
                    None => unmet.push(UnmetLoad {
                        load,
                        fastest: fastest.clone(),
                    }),
                }
            }
            DomainDecomposition {
                domain: domain.map(str::to_string),
                table,
                chosen,
                unmet,
            }
        })
        .collect())
}

/// Least cap first, then least memory, then the faster run.
fn cheaper(a: &BenchRun, b: &BenchRun) -> bool {
    (a.cap_pct, a.mem_kb)
        .cmp(&(b.cap_pct, b.mem_kb))
        .then(a.response_ms.total_cmp(&b.response_ms))
        .is_lt()
}

/// The faster run; among equals, the cheaper.
fn faster(a: &BenchRun, b: &BenchRun) -> bool {
    a.response_ms
        .total_cmp(&b.response_ms)
        .then((a.cap_pct, a.mem_kb).cmp(&(b.cap_pct, b.mem_kb)))
        .is_lt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        domain: Option<&str>,
        load: u32,
        cap_pct: u32,
        mem_mb: u64,
        response_ms: f64,
    ) -> BenchRun {
        BenchRun {
            domain: domain.map(str::to_string),
            load,
            cap_pct,
            mem_kb: mem_mb * 1024,
            response_ms,
        }
    }

    #[test]
    fn least_cap_then_least_memory_that_met_the_target() {
        let runs = vec![
            run(None, 40, 30, 64, 500.0),
            run(None, 40, 20, 128, 850.0),
            run(None, 40, 20, 64, 890.0),
            run(None, 40, 10, 64, 2000.0),
            run(None, 3, 10, 64, 40.0),
            run(None, 3, 5, 64, 120.0),
        ];
        let out = decompose(&runs, 900.0).unwrap();
        assert_eq!(out.len(), 1);
        let rows = &out[0].table.rows;
        assert_eq!(
            rows,
            &vec![
                Level {
                    load: 3,
                    cap_pct: 5,
                    mem_kb: 65_536
                },
                Level {
                    load: 40,
                    cap_pct: 20,
                    mem_kb: 65_536
                },
            ]
        );
        assert_eq!(out[0].chosen[1].response_ms, 890.0);
        assert!(out[0].unmet.is_empty());
    }

    #[test]
    fn a_load_no_run_met_is_reported_with_its_fastest_run() {
        let runs = vec![
            run(Some("vm2"), 80, 40, 128, 1350.0),
            run(Some("vm2"), 80, 20, 64, 2600.0),
            run(Some("vm2"), 40, 20, 64, 880.0),
            run(Some("vm1"), 3, 5, 64, 12.0),
        ];
        let out = decompose(&runs, 900.0).unwrap();
        let names: Vec<Option<&str>> = out.iter().map(|d| d.domain.as_deref()).collect();
        assert_eq!(names, vec![Some("vm1"), Some("vm2")]);
        let vm2 = &out[1];
        assert_eq!(vm2.table.rows.len(), 1);
        assert_eq!(vm2.unmet.len(), 1);
        assert_eq!(vm2.unmet[0].load, 80);
        assert_eq!(vm2.unmet[0].fastest.cap_pct, 40);
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(decompose(&[], 900.0), Err(DecomposeError::NoRuns));
        let ok = vec![run(None, 1, 5, 64, 10.0)];
        assert!(matches!(
            decompose(&ok, 0.0),
            Err(DecomposeError::BadTarget(_))
        ));
        assert!(matches!(
            decompose(&ok, f64::NAN),
            Err(DecomposeError::BadTarget(_))
        ));
        let nan = vec![run(None, 1, 5, 64, f64::NAN)];
        assert!(matches!(
            decompose(&nan, 900.0),
            Err(DecomposeError::BadResponse { index: 0, .. })
        ));
        let uncapped = vec![run(None, 1, 0, 64, 10.0)];
        assert_eq!(
            decompose(&uncapped, 900.0),
            Err(DecomposeError::ZeroCap { index: 0 })
        );
    }
}
