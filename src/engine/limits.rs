//! Xen's and rex's numeric limits, and the CPU capacity formula: one
//! owner for what policy files, scenarios, `rex decompose`, the simulator
//! and the policy's validation all check against.

use std::ops::RangeInclusive;

/// Largest cap rex accepts anywhere: 128 vCPUs' worth, in percent of one
/// pCPU (Xen's unit).
pub const CAP_LIMIT: u32 = 12_800;

/// Weights Xen's credit schedulers accept.
pub const WEIGHT_RANGE: RangeInclusive<u32> = 1..=65_535;

/// The CPU a set of pCPUs offers, in percent of one pCPU.
pub fn cpu_capacity_pct(pcpus: u32) -> u64 {
    u64::from(pcpus) * 100
}

/// The CPU the managed domains share: the guests' pCPUs less what dom0 and
/// the reserve hold and what unmanaged guests are capped at.
pub fn cpu_pool_pct(pcpus: u32, dom0_pct: u32, reserve_pct: u32, unmanaged_caps: u64) -> u64 {
    cpu_capacity_pct(pcpus)
        .saturating_sub(u64::from(dom0_pct))
        .saturating_sub(u64::from(reserve_pct))
        .saturating_sub(unmanaged_caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_what_dom0_the_reserve_and_unmanaged_guests_leave() {
        assert_eq!(cpu_pool_pct(2, 50, 10, 40), 100);
        assert_eq!(cpu_pool_pct(1, 80, 30, 0), 0, "never below nothing");
    }
}
