//! Memory: balloon targets. Grows are bounded by the host's free memory
//! above the slush and served in the CPU side's class order (guarantees,
//! SLA domains missing their SLA, other SLA domains, best-effort domains).
//! Memory is reclaimed on demand, as CPU is: a guest's spare memory stays
//! where it is until a grow goes unserved or the host's own free memory
//! falls below the slush and reserve; then the most spare guests give what
//! is wanted. What a domain missing its SLA still lacks is taken from
//! best-effort domains above their guarantee, never below what they use.

use std::cmp::Reverse;

use super::order::sort_by_packed_key;
use super::trend::Direction;
use super::Slot;
use crate::engine::model::{GuestReport, KiB, Reason};
use crate::engine::sla::HostPolicy;

/// Free memory, percent of the guest's total, when it reports both.
fn free_pct(report: &GuestReport) -> Option<f64> {
    match (report.mem_free_kb, report.mem_total_kb) {
        (Some(free), Some(total)) if total > 0 => Some(free as f64 / total as f64 * 100.0),
        _ => None,
    }
}

/// Whether a guest with `free_kb` of `total_kb` available is under
/// pressure: below the percentage or below the absolute floor.
pub(super) fn under_pressure(policy: &HostPolicy, free_kb: KiB, total_kb: KiB) -> bool {
    (free_kb as f64) < total_kb as f64 * policy.mem_pressure_free_pct / 100.0
        || free_kb < policy.mem_pressure_free_kb
}

/// The MemTotal that leaves a guest using `used_kb` with twice the pressure
/// threshold free (twice the percentage, at most 90%, and twice the
/// absolute floor): shrinking a donor no lower keeps it from coming under
/// pressure at once, and growing a guest to it ends its pressure.
fn total_for_use(used_kb: KiB, policy: &HostPolicy) -> KiB {
    let headroom = (policy.mem_pressure_free_pct * 2.0).clamp(0.0, 90.0);
    let relative = used_kb as f64 * 100.0 / (100.0 - headroom);
    // `as` saturates; the result is only ever a lower bound.
    (relative.ceil() as KiB).max(used_kb.saturating_add(policy.mem_pressure_free_kb * 2))
}

/// The most of a balloon target a guest's kernel is believed to keep out of
/// MemTotal: a Debian PV guest keeps about 50 MiB. A guest reporting a
/// tiny total gains at most this much shelter from shrinks.
const MAX_KERNEL_OFFSET_KB: KiB = 128 * 1024;

/// What the guest's kernel keeps out of what it reports as its total: its
/// current allocation less its MemTotal (0 without a report). Balloon
/// targets are in allocation, what the guest uses is in MemTotal terms.
fn kernel_offset_kb(usage: &crate::engine::Usage) -> KiB {
    usage.report.mem_total_kb.map_or(0, |total| {
        usage
            .mem_current_kb
            .saturating_sub(total)
            .min(MAX_KERNEL_OFFSET_KB)
    })
}

/// The balloon target that gives a guest using `used_kb` the MemTotal of
/// [`total_for_use`], on top of what its kernel keeps.
fn target_for_use(used_kb: KiB, usage: &crate::engine::Usage, policy: &HostPolicy) -> KiB {
    total_for_use(used_kb, policy).saturating_add(kernel_offset_kb(usage))
}

/// Ticks after its use last rose during which a guest is not shrunk: a
/// guest still allocating would be given back what it is about to need.
const RISING_TICKS: u64 = 5;

/// How a guest's use has moved, remembered between ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UseTrend {
    last_used_kb: Option<KiB>,
    rose_at: Option<u64>,
}

impl UseTrend {
    /// Records this tick's use (a rise of at least `deadband` counts).
    fn record(&mut self, used_kb: Option<KiB>, deadband: KiB, tick: u64) {
        if let (Some(before), Some(now)) = (self.last_used_kb, used_kb) {
            if now >= before.saturating_add(deadband) {
                self.rose_at = Some(tick);
            }
        }
        // An unreported tick keeps the last figure to compare with.
        if used_kb.is_some() {
            self.last_used_kb = used_kb;
        }
    }

    /// Whether the use rose within the last few ticks (or two cooldowns).
    fn rising(&self, policy: &HostPolicy, tick: u64) -> bool {
        let window = RISING_TICKS.max(2 * u64::from(policy.cooldown_ticks));
        self.rose_at
            .is_some_and(|at| tick.saturating_sub(at) < window)
    }
}

/// Memory a guest does not use and could give, down to `to`.
struct Spare {
    slot: usize,
    to: KiB,
    free_pct: Option<f64>,
}

/// A growth asked for by one domain.
struct Grow {
    slot: usize,
    to: KiB,
    reason: Reason,
    forced: bool,
}

/// Decides every slot's memory target. Growth in one tick never exceeds
/// `free_mem_kb − slush_kb`; shrinks do not count, as they have not happened.
pub fn plan(policy: &HostPolicy, free_mem_kb: KiB, slots: &mut [Slot], tick: u64) {
    let deadband = policy.deadband_mem_kb.max(1);
    let mut grows = Vec::new();
    let mut spares = Vec::new();
    // What growing balloons have yet to take is not free: handing it out
    // again would promise the same pages twice. (An uncooperative domain's
    // target was set back to what it holds.)
    let mut outstanding: KiB = 0;
    for (i, slot) in slots.iter_mut().enumerate() {
        // A domain `xl create` is still building has no balloon target yet
        // (0): libxl refuses one until it is built, so it is left alone.
        if slot.usage.mem_target_kb == 0 {
            continue;
        }
        slot.balloon_flag = super::balloon::judge(policy, slot, free_mem_kb, tick);
        slot.carried
            .use_trend
            .record(slot.usage.mem_used_kb, deadband, tick);
        if slot.carried.balloon.is_uncooperative() {
            continue;
        }
        outstanding = outstanding.saturating_add(
            slot.usage
                .mem_target_kb
                .saturating_sub(slot.usage.mem_current_kb),
        );
        let ceiling = slot.policy.mem_ceiling_kb();
        let guaranteed = slot.policy.guaranteed_mem_kb();
        let current = slot.usage.mem_target_kb;
        let free = free_pct(&slot.usage.report);
        // Nothing is ever asked above the domain's maxmem: Xen refuses it
        // (every tick, for a guarantee above it).
        let domain_max = match slot.usage.mem_max_kb {
            0 => KiB::MAX,
            max => max,
        };
        let mut grow = |to: KiB, reason, forced| {
            let to = to.min(domain_max);
            if to <= current {
                return;
            }
            grows.push(Grow {
                slot: i,
                to,
                reason,
                forced,
            })
        };
        if slot.sla_changed && current != guaranteed {
            if guaranteed < current {
                slot.mem.force(guaranteed, Reason::SlaChanged);
            } else {
                grow(guaranteed, Reason::SlaChanged, true);
            }
            continue;
        }
        if current > ceiling {
            slot.mem.force(ceiling, Reason::Ceiling);
            continue;
        }
        if current < guaranteed {
            grow(guaranteed, Reason::Guarantee, true);
            continue;
        }
        let pressed = match (
            slot.usage.report.mem_free_kb,
            slot.usage.report.mem_total_kb,
        ) {
            (Some(free_kb), Some(total_kb)) => under_pressure(policy, free_kb, total_kb),
            _ => false,
        };
        if let Some(free_pct) = free.filter(|_| pressed) {
            let limit = ceiling.min(domain_max);
            let allowed = slot
                .carried
                .mem_trend
                .allows(Direction::Up, tick, policy.cooldown_ticks);
            if current < limit && allowed {
                // Enough to end the pressure, not more: what it uses with
                // the headroom, plus what its kernel keeps; within a step.
                let needed = slot
                    .usage
                    .mem_used_kb
                    .map_or(policy.max_step_mem_kb, |used| {
                        target_for_use(used, slot.usage, policy).saturating_sub(current)
                    });
                let grow_by = needed.clamp(deadband, policy.max_step_mem_kb.max(deadband));
                let to = current.saturating_add(grow_by).min(limit);
                grow(to, Reason::MemoryPressure { free_pct }, false);
            }
            continue;
        }
        // Only a guest that says what it uses gives memory back: without a
        // report, memory above the level may well be in use.
        let Some(used_kb) = slot.usage.mem_used_kb else {
            continue;
        };
        if current > guaranteed
            && !slot.carried.use_trend.rising(policy, tick)
            && slot
                .carried
                .mem_trend
                .allows(Direction::Down, tick, policy.cooldown_ticks)
        {
            let keep = target_for_use(used_kb, slot.usage, policy).max(guaranteed);
            let to = keep.max(current.saturating_sub(policy.max_step_mem_kb));
            if to < current && current - to >= deadband {
                spares.push(Spare {
                    slot: i,
                    to,
                    free_pct: free,
                });
            }
        }
    }

    // Restoring guarantees comes first, then by priority.
    // Guarantees first; then, as for CPU, domains missing their SLA, other
    // SLA domains, and domains without an SLA; by priority within each.
    // Grows are pushed in slot order, which is domid order: ties go by domid.
    sort_by_packed_key(&mut grows, 1 + 2 + 32, |g| {
        let slot = &slots[g.slot];
        let class = match (slot.policy.sla_ms, slot.carried.missed_ticks) {
            (Some(_), missed) if missed > 0 => 0,
            (Some(_), _) => 1,
            (None, _) => 2,
        };
        u128::from(!g.forced) << 34 | class << 32 | u128::from(u32::MAX - slot.policy.priority)
    });
    // The reserve is never handed out either: in effect, more slush.
    let kept_free = policy.slush_kb.saturating_add(policy.reserve_mem_kb);
    let mut budget = free_mem_kb
        .saturating_sub(outstanding)
        .saturating_sub(kept_free);
    // What the grows wanted and did not get: all of it, and the part of
    // domains missing their SLA (with who asked first).
    let mut unmet: KiB = 0;
    let mut unmet_missing: KiB = 0;
    let mut first_missing = None;
    for g in grows {
        let slot = &mut slots[g.slot];
        let current = slot.usage.mem_target_kb;
        let wanted = g.to - current;
        let mut amount = wanted.min(budget);
        if !g.forced && amount < deadband {
            amount = 0;
        }
        let short = wanted - amount;
        slot.unmet_mem_kb = short;
        unmet = unmet.saturating_add(short);
        if short > 0 && slot.policy.sla_ms.is_some() && slot.carried.missed_ticks > 0 {
            unmet_missing = unmet_missing.saturating_add(short);
            first_missing.get_or_insert_with(|| slot.usage.name.clone());
        }
        if amount == 0 {
            continue;
        }
        budget -= amount;
        if g.forced {
            slot.mem.force(current + amount, g.reason);
        } else {
            slot.mem.set(current + amount, g.reason);
        }
    }

    // Reclaim on demand: the unmet grows and the host's own shortfall.
    let mut demand = unmet.saturating_add(kept_free.saturating_sub(free_mem_kb));
    if demand == 0 {
        // The usual tick: nothing to reclaim, so no order to find.
        spares.clear();
    }
    sort_by_packed_key(&mut spares, 64, |s| {
        u128::from(!(slots[s.slot].usage.mem_target_kb - s.to))
    });
    for spare in spares {
        if demand == 0 {
            break;
        }
        let slot = &mut slots[spare.slot];
        let current = slot.usage.mem_target_kb;
        // At least a deadband: smaller changes are not worth a balloon call.
        let give = (current - spare.to).min(demand.max(deadband));
        demand = demand.saturating_sub(give);
        slot.mem.set(
            current - give,
            Reason::SpareMemory {
                free_pct: spare.free_pct,
            },
        );
    }
    // Preemption: what domains missing their SLA still lack, best-effort
    // domains give from above their guarantee, never below what they use
    // (a guest forced below its use pages or kills).
    if let Some(by) = first_missing {
        preempt(policy, slots, unmet_missing.min(demand), &by, tick);
    }

    record_trends(policy, slots, tick);
}

/// Takes up to `need` for `by` from best-effort domains, the largest
/// holders above their floor first, each by at most a step.
fn preempt(policy: &HostPolicy, slots: &mut [Slot], mut need: KiB, by: &str, tick: u64) {
    let deadband = policy.deadband_mem_kb.max(1);
    let mut donors: Vec<(usize, KiB)> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let current = s.usage.mem_target_kb;
            let untouched =
                s.mem.to == current && !s.mem.forced && !s.carried.balloon.is_uncooperative();
            let may_shrink =
                s.carried
                    .mem_trend
                    .allows(Direction::Down, tick, policy.cooldown_ticks);
            let rising = s.carried.use_trend.rising(policy, tick);
            if s.policy.sla_ms.is_some() || !untouched || !may_shrink || rising {
                return None;
            }
            let in_use = s
                .usage
                .mem_used_kb
                .map_or(0, |used| used.saturating_add(kernel_offset_kb(s.usage)));
            let floor = s.policy.guaranteed_mem_kb().max(in_use);
            let room = current.saturating_sub(floor).min(policy.max_step_mem_kb);
            (room >= deadband).then_some((i, room))
        })
        .collect();
    donors.sort_by_key(|&(i, room)| (Reverse(room), i));
    for (i, room) in donors {
        if need < deadband {
            break;
        }
        let give = room.min(need.max(deadband));
        need = need.saturating_sub(give);
        let slot = &mut slots[i];
        let to = slot.usage.mem_target_kb - give;
        slot.mem.set(to, Reason::Preempted { by: by.to_string() });
    }
}

/// Changes made to follow load start a trend (see [`super::trend::Trend::follow`]).
fn record_trends(policy: &HostPolicy, slots: &mut [Slot], tick: u64) {
    for slot in slots.iter_mut() {
        let (current, mem) = (slot.usage.mem_target_kb, &slot.mem);
        slot.carried
            .mem_trend
            .follow(current, mem.to, mem.forced, tick, policy.cooldown_ticks);
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
