//! The CPU share each VM gets in one step: a fluid model of Xen's credit
//! schedulers.
//!
//! Over one accounting period the credit schedulers give runnable domains
//! pCPU time in proportion to their weights, never more than their cap, and
//! hand what a domain does not use to the others (work conserving). That is
//! weighted water-filling: raise every domain's share in proportion to its
//! weight until it reaches its limit (cap, vCPUs, or what it wants), and
//! share the rest among those still below theirs.

/// One domain's claim on the guest pCPUs for a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Claim {
    pub weight: u32,
    /// Most CPU the domain can take this step (ms): min of cap, vCPUs and demand.
    pub limit_ms: f64,
}

/// The most a domain may take in a step of `step_ms`, in ms of CPU.
pub(super) fn limit_ms(cap: u32, vcpus: u32, wanted_ms: f64, step_ms: f64) -> f64 {
    let by_vcpus = f64::from(vcpus) * step_ms;
    let by_cap = if cap == 0 {
        f64::INFINITY
    } else {
        f64::from(cap) / 100.0 * step_ms
    };
    wanted_ms.min(by_vcpus).min(by_cap).max(0.0)
}

/// Shares `capacity_ms` among `claims`, writing each one's grant into `out`
/// (same length). `fixed` is scratch space of the same length, passed in so
/// a step allocates nothing.
pub(super) fn water_fill(capacity_ms: f64, claims: &[Claim], out: &mut [f64], fixed: &mut [bool]) {
    debug_assert_eq!(claims.len(), out.len());
    debug_assert_eq!(claims.len(), fixed.len());
    for (i, claim) in claims.iter().enumerate() {
        out[i] = 0.0;
        // Nothing to give a domain that wants nothing.
        fixed[i] = claim.limit_ms <= 0.0 || claim.weight == 0;
    }
    let mut remaining = capacity_ms.max(0.0);
    // Each pass fixes at least one domain at its limit or ends, so at most
    // one pass per domain.
    loop {
        let weights: f64 = claims
            .iter()
            .zip(fixed.iter())
            .filter(|(_, &done)| !done)
            .map(|(c, _)| f64::from(c.weight))
            .sum();
        if weights == 0.0 || remaining <= 0.0 {
            return;
        }
        let mut any_fixed = false;
        for (i, claim) in claims.iter().enumerate() {
            if !fixed[i] && claim.limit_ms <= remaining * f64::from(claim.weight) / weights {
                out[i] = claim.limit_ms;
                fixed[i] = true;
                any_fixed = true;
            }
        }
        if !any_fixed {
            for (i, claim) in claims.iter().enumerate() {
                if !fixed[i] {
                    out[i] = remaining * f64::from(claim.weight) / weights;
                }
            }
            return;
        }
        let granted: f64 = out.iter().sum();
        remaining = capacity_ms - granted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(capacity: f64, claims: &[(u32, f64)]) -> Vec<f64> {
        let claims: Vec<Claim> = claims
            .iter()
            .map(|&(weight, limit_ms)| Claim { weight, limit_ms })
            .collect();
        let mut out = vec![0.0; claims.len()];
        let mut fixed = vec![false; claims.len()];
        water_fill(capacity, &claims, &mut out, &mut fixed);
        out
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn uncontended_domains_get_what_they_want() {
        let out = fill(10.0, &[(256, 2.0), (256, 3.0)]);
        assert!(close(&out, &[2.0, 3.0]), "{out:?}");
    }

    #[test]
    fn contended_domains_share_by_weight() {
        let out = fill(10.0, &[(256, 100.0), (768, 100.0)]);
        assert!(close(&out, &[2.5, 7.5]), "{out:?}");
    }

    #[test]
    fn what_a_limited_domain_leaves_goes_to_the_others() {
        // Equal weights would give 10/3 each; the first wants only 1.
        let out = fill(10.0, &[(256, 1.0), (256, 100.0), (256, 100.0)]);
        assert!(close(&out, &[1.0, 4.5, 4.5]), "{out:?}");
    }

    #[test]
    fn idle_domains_get_nothing() {
        let out = fill(10.0, &[(256, 0.0), (256, 100.0)]);
        assert!(close(&out, &[0.0, 10.0]), "{out:?}");
    }

    #[test]
    fn limits_combine_cap_vcpus_and_demand() {
        assert_eq!(limit_ms(20, 1, 100.0, 10.0), 2.0);
        assert_eq!(limit_ms(0, 2, 100.0, 10.0), 20.0);
        assert_eq!(limit_ms(300, 2, 100.0, 10.0), 20.0);
        assert_eq!(limit_ms(50, 1, 1.5, 10.0), 1.5);
    }
}
