//! Baseline control laws, for comparison with rex's in `rex simulate`
//! (never a daemon's law): static allocation, SRX-style thresholds, and a
//! proportional share. They keep the same bounds as rex (guarantee,
//! ceiling, pool, slush) so that only the law differs.

use super::cpu::{bounds_within_pool, share, total};
use super::{ControlLaw, Slot};
use crate::engine::model::{KiB, Reason};
use crate::engine::sla::HostPolicy;

/// The starting allocation, kept: nothing is ever changed.
#[derive(Debug)]
pub(super) struct Static;

impl ControlLaw for Static {
    fn cpu(&self, _: &HostPolicy, _: u64, _: &mut [Slot], _: u64) -> bool {
        true
    }

    fn memory(&self, _: &HostPolicy, _: KiB, _: &mut [Slot], _: u64) {}
}

/// SRX-style: a domain using at least `saturation` of its cap gets
/// `max_step_cap` more from the free pool (first come, first served); one
/// using at most `idle` of it gives `max_step_cap` back, down to its
/// guarantee. Memory likewise by the guest's free memory. SLAs and
/// priorities play no part.
#[derive(Debug)]
pub(super) struct Threshold;

impl ControlLaw for Threshold {
    fn cpu(&self, policy: &HostPolicy, pool: u64, slots: &mut [Slot], _: u64) -> bool {
        if !bounds_within_pool(slots, pool) {
            return false;
        }
        let step = policy.max_step_cap.max(1);
        // Shrinks first, so their CPU is free for the grows of this tick.
        for slot in slots.iter_mut().filter(|s| ready(s)) {
            let usage_pct = usage_of_cap(slot);
            let guaranteed = slot.policy.guaranteed_cap();
            if usage_pct <= policy.idle_pct && slot.cap.to > guaranteed {
                let to = slot.cap.to.saturating_sub(step).max(guaranteed);
                slot.cap.set(to, Reason::Idle { usage_pct });
            }
        }
        let mut free = pool.saturating_sub(total(slots));
        for slot in slots.iter_mut().filter(|s| ready(s)) {
            let usage_pct = usage_of_cap(slot);
            let room = slot.policy.cap_ceiling().saturating_sub(slot.cap.to);
            if usage_pct >= policy.saturation_pct && room > 0 && free > 0 {
                // ≤ step, a u32.
                let given = u64::from(step.min(room)).min(free) as u32;
                free -= u64::from(given);
                let to = slot.cap.to + given;
                slot.cap.set(to, Reason::Saturated { usage_pct });
            }
        }
        true
    }

    fn memory(&self, policy: &HostPolicy, free_mem_kb: KiB, slots: &mut [Slot], _: u64) {
        let mut budget = free_mem_kb.saturating_sub(policy.slush_kb);
        let step = policy.max_step_mem_kb.max(1);
        for slot in slots.iter_mut() {
            let report = &slot.usage.report;
            let (Some(free), Some(total)) = (report.mem_free_kb, report.mem_total_kb) else {
                continue;
            };
            let free_pct = free as f64 / total.max(1) as f64 * 100.0;
            let current = slot.usage.mem_target_kb;
            let guaranteed = slot.policy.guaranteed_mem_kb();
            let ceiling = slot.policy.mem_ceiling_kb();
            if free_pct < policy.mem_pressure_free_pct && current < ceiling {
                let to = current.saturating_add(step.min(budget)).min(ceiling);
                if to > current {
                    budget -= to - current;
                    slot.mem.set(to, Reason::MemoryPressure { free_pct });
                }
            } else if free_pct > 50.0 && current > guaranteed {
                let used = total - free;
                let to = current.saturating_sub(step).max(guaranteed).max(used);
                if to < current {
                    slot.mem.set(
                        to,
                        Reason::SpareMemory {
                            free_pct: Some(free_pct),
                        },
                    );
                }
            }
        }
    }
}

/// The pool above the guarantees shared in proportion to weight × demand
/// (CPU use, or the whole cap for a saturated domain), each domain within
/// its ceiling; memory squeezed-style: every domain at the same fraction of
/// the way from its guarantee to its ceiling that the host's free memory
/// above the slush allows.
#[derive(Debug)]
pub(super) struct Proportional;

impl ControlLaw for Proportional {
    fn cpu(&self, policy: &HostPolicy, pool: u64, slots: &mut [Slot], _: u64) -> bool {
        if !bounds_within_pool(slots, pool) {
            return false;
        }
        let held: u64 = slots
            .iter()
            .map(|s| {
                if ready(s) {
                    u64::from(s.policy.guaranteed_cap())
                } else {
                    u64::from(s.cap.to)
                }
            })
            .sum();
        let spare = pool.saturating_sub(held);
        let movable: Vec<usize> = (0..slots.len()).filter(|&i| ready(&slots[i])).collect();
        let claims: Vec<(u64, u64)> = movable
            .iter()
            .map(|&i| {
                let slot = &slots[i];
                let g = slot.policy.guaranteed_cap();
                let demand = if usage_of_cap(slot) >= policy.saturation_pct {
                    f64::from(slot.cap.to)
                } else {
                    slot.usage.cpu_pct
                };
                let weight = u64::from(slot.policy.weight.max(1));
                let demand = (demand * 10.0).clamp(1.0, 1e9) as u64;
                (u64::from(slot.policy.cap_ceiling() - g), weight * demand)
            })
            .collect();
        let deadband = policy.deadband_cap.max(1);
        for (&i, extra) in movable.iter().zip(share(spare, &claims)) {
            let slot = &mut slots[i];
            // extra ≤ ceiling − guarantee, a u32.
            let to = slot.policy.guaranteed_cap() + extra as u32;
            if to.abs_diff(slot.cap.to) >= deadband {
                let usage_pct = usage_of_cap(slot);
                let reason = if to > slot.cap.to {
                    Reason::Saturated { usage_pct }
                } else {
                    Reason::Idle { usage_pct }
                };
                slot.cap.set(to, reason);
            }
        }
        true
    }

    fn memory(&self, policy: &HostPolicy, free_mem_kb: KiB, slots: &mut [Slot], _: u64) {
        let held: KiB = slots.iter().map(|s| s.usage.mem_target_kb).sum();
        let budget = (held + free_mem_kb).saturating_sub(policy.slush_kb);
        let floor: KiB = slots.iter().map(|s| s.policy.guaranteed_mem_kb()).sum();
        let span: KiB = slots
            .iter()
            .map(|s| s.policy.mem_ceiling_kb() - s.policy.guaranteed_mem_kb())
            .sum();
        if span == 0 {
            return;
        }
        let fraction = (budget.saturating_sub(floor) as f64 / span as f64).min(1.0);
        for slot in slots.iter_mut() {
            let g = slot.policy.guaranteed_mem_kb();
            let span = slot.policy.mem_ceiling_kb() - g;
            let to = g + (span as f64 * fraction) as KiB;
            let current = slot.usage.mem_target_kb;
            if to.abs_diff(current) >= policy.deadband_mem_kb.max(1) {
                let free_pct = slot
                    .usage
                    .report
                    .mem_free_kb
                    .zip(slot.usage.report.mem_total_kb);
                let free_pct = free_pct.map(|(f, t)| f as f64 / t.max(1) as f64 * 100.0);
                let reason = if to > current {
                    Reason::MemoryPressure {
                        free_pct: free_pct.unwrap_or(0.0),
                    }
                } else {
                    Reason::SpareMemory { free_pct }
                };
                slot.mem.set(to, reason);
            }
        }
    }
}

/// The domain's smoothed CPU use as a percentage of its cap, as SRX
/// measured it.
fn usage_of_cap(slot: &Slot) -> f64 {
    slot.usage.cpu_pct / f64::from(slot.usage.sched.cap.max(1)) * 100.0
}

/// A slot a load-driven rule may move: not set by a bound this tick, and
/// with a CPU sample to go by.
fn ready(slot: &Slot) -> bool {
    !slot.cap.forced && slot.usage.has_cpu_sample
}
