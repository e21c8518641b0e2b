//! CPU: scheduler caps of the managed domains within the host's pool.

use std::cmp::{Ordering, Reverse};

use super::trend::Direction;
use super::Slot;
use crate::engine::model::{HostInfo, Reason};
use crate::engine::sla::HostPolicy;

/// The CPU the managed domains share, percent of one pCPU: the guests'
/// pCPUs, less dom0's share, the reserve, and the caps of capped guests rex
/// does not manage.
pub fn pool(host: &HostInfo, policy: &HostPolicy, unmanaged_caps: u64) -> u64 {
    (u64::from(host.guest_pcpus) * 100)
        .saturating_sub(u64::from(policy.dom0_cpu_pct))
        .saturating_sub(u64::from(policy.reserve_cpu_pct))
        .saturating_sub(unmanaged_caps)
}

/// Decides every slot's cap. Returns false when the guarantees alone exceed
/// the pool (each domain is then held at its guarantee).
pub fn plan(policy: &HostPolicy, pool: u64, slots: &mut [Slot], tick: u64) -> bool {
    let wanting = bounds_and_idle(policy, slots, tick);
    let total: u64 = slots.iter().map(|s| u64::from(s.cap.to)).sum();
    let (fits, total) = if total > pool {
        fit_to_pool(slots, total - pool)
    } else {
        (true, total)
    };
    grant(policy, slots, wanting, pool.saturating_sub(total));
    for slot in slots.iter_mut() {
        let current = slot.usage.sched.cap;
        if slot.cap.forced || slot.cap.to == current {
            continue;
        }
        let direction = if slot.cap.to > current {
            Direction::Up
        } else {
            Direction::Down
        };
        slot.cap_trend
            .record(direction, tick, policy.cooldown_ticks);
    }
    fits
}

/// The domain's CPU use as a percentage of its cap.
fn usage_of_cap(slot: &Slot) -> f64 {
    let cap = slot.usage.sched.cap.max(1);
    slot.usage.cpu_pct / f64::from(cap) * 100.0
}

/// The cap at which `cpu_pct` sits midway between the idle and saturation
/// thresholds: shrinking an idle domain no lower keeps it from turning
/// saturated at once, which would make a steady load flap.
fn cap_for_use(cpu_pct: f64, policy: &HostPolicy) -> u32 {
    let midway = ((policy.idle_pct + policy.saturation_pct) / 2.0).clamp(1.0, 100.0);
    let cap = (cpu_pct * 100.0 / midway).ceil();
    // `as` saturates; NaN becomes 0 and the guarantee takes over.
    cap as u32
}

/// Restores the bounds (forced), shrinks idle domains, and returns the
/// domains that want more CPU, each with its reason.
fn bounds_and_idle(policy: &HostPolicy, slots: &mut [Slot], tick: u64) -> Vec<(usize, Reason)> {
    let mut wanting = Vec::new();
    let deadband = policy.deadband_cap.max(1);
    for (i, slot) in slots.iter_mut().enumerate() {
        let ceiling = slot.policy.cap_ceiling();
        let guaranteed = slot.policy.guaranteed_cap();
        let current = slot.usage.sched.cap;
        if current == 0 {
            // Uncapped: the domain starts at its level, as in the paper.
            slot.cap.force(guaranteed, Reason::Guarantee);
            continue;
        }
        if slot.sla_changed && current != guaranteed {
            slot.cap.force(guaranteed, Reason::SlaChanged);
            continue;
        }
        if current < guaranteed {
            slot.cap.force(guaranteed, Reason::Guarantee);
            continue;
        }
        if current > ceiling {
            slot.cap.force(ceiling, Reason::Ceiling);
            continue;
        }
        if !slot.usage.has_cpu_sample {
            continue;
        }
        let usage_pct = usage_of_cap(slot);
        // A reported SLA miss asks for CPU only from a domain that uses its
        // CPU: more cap cannot help an idle one, and a guest that merely
        // writes a bad figure (it is untrusted) must not gain from it.
        let want = match (slot.policy.sla_ms, slot.usage.report.response_ms) {
            (Some(sla_ms), Some(response_ms))
                if response_ms > sla_ms && usage_pct > policy.idle_pct =>
            {
                Some(Reason::SlaMissed {
                    response_ms,
                    sla_ms,
                })
            }
            _ if usage_pct >= policy.saturation_pct => Some(Reason::Saturated { usage_pct }),
            _ => None,
        };
        if let Some(reason) = want {
            if current < ceiling
                && slot
                    .cap_trend
                    .allows(Direction::Up, tick, policy.cooldown_ticks)
            {
                wanting.push((i, reason));
            }
            continue;
        }
        if usage_pct > policy.idle_pct
            || !slot
                .cap_trend
                .allows(Direction::Down, tick, policy.cooldown_ticks)
        {
            continue;
        }
        let keep = cap_for_use(slot.usage.cpu_pct, policy).max(guaranteed);
        let to = keep.max(current.saturating_sub(policy.max_step_cap));
        if to < current && current - to >= deadband {
            slot.cap.set(to, Reason::Idle { usage_pct });
        }
    }
    wanting
}

/// Takes `excess` back from domains above their guarantee, least important
/// and least busy first. Returns whether it all fitted, and the new total.
fn fit_to_pool(slots: &mut [Slot], excess: u64) -> (bool, u64) {
    let mut above: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].cap.to > slots[i].policy.guaranteed_cap())
        .collect();
    above.sort_by(|&a, &b| {
        let (sa, sb) = (&slots[a], &slots[b]);
        sa.policy
            .priority
            .cmp(&sb.policy.priority)
            .then(
                usage_of_cap(sa)
                    .partial_cmp(&usage_of_cap(sb))
                    .unwrap_or(Ordering::Equal),
            )
            .then(sa.usage.domid.cmp(&sb.usage.domid))
    });
    let mut excess = excess;
    for i in above {
        if excess == 0 {
            break;
        }
        let slot = &mut slots[i];
        let room = u64::from(slot.cap.to - slot.policy.guaranteed_cap());
        let cut = room.min(excess);
        // cut ≤ room, which came from a u32.
        let to = slot.cap.to - cut as u32;
        slot.cap.force(to, Reason::OverCommitted);
        excess -= cut;
    }
    let total = slots.iter().map(|s| u64::from(s.cap.to)).sum();
    (excess == 0, total)
}

/// Hands the idle pool to the wanting domains: higher priority first, in
/// proportion to weight within one priority, at most `max_step_cap` each
/// and never above `cap_max`.
fn grant(policy: &HostPolicy, slots: &mut [Slot], wanting: Vec<(usize, Reason)>, idle: u64) {
    let deadband = u64::from(policy.deadband_cap.max(1));
    let mut wanting: Vec<(usize, Reason)> = wanting
        .into_iter()
        .filter(|(i, _)| !slots[*i].cap.forced)
        .collect();
    wanting.sort_by_key(|(i, _)| (Reverse(slots[*i].policy.priority), slots[*i].usage.domid));
    let mut idle = idle;
    let mut start = 0;
    while start < wanting.len() && idle >= deadband {
        let priority = slots[wanting[start].0].policy.priority;
        let end = start
            + wanting[start..]
                .iter()
                .take_while(|(i, _)| slots[*i].policy.priority == priority)
                .count();
        let group = &wanting[start..end];
        let claims: Vec<(u64, u64)> = group
            .iter()
            .map(|(i, _)| {
                let slot = &slots[*i];
                let room = slot.policy.cap_ceiling().saturating_sub(slot.cap.to);
                let limit = room.min(policy.max_step_cap);
                (u64::from(limit), u64::from(slot.policy.weight.max(1)))
            })
            .collect();
        let shares = share(idle, &claims);
        for ((i, reason), given) in group.iter().zip(shares) {
            if given < deadband {
                continue;
            }
            let slot = &mut slots[*i];
            // given ≤ the limit, which came from a u32.
            let to = slot.cap.to + given as u32;
            slot.cap.set(to, reason.clone());
            idle -= given;
        }
        start = end;
    }
}

/// Splits `amount` among claims of (limit, weight) in proportion to weight,
/// no claim getting more than its limit; what a capped claim cannot take is
/// shared among the others (water-filling). O(n log n).
pub(super) fn share(amount: u64, claims: &[(u64, u64)]) -> Vec<u64> {
    let mut given = vec![0u64; claims.len()];
    let total_limit: u64 = claims.iter().map(|c| c.0).sum();
    let mut left = amount.min(total_limit);
    let mut weight_left: u128 = claims.iter().map(|c| u128::from(c.1)).sum();
    // Smallest limit per unit of weight first: they are the ones capped.
    let mut order: Vec<usize> = (0..claims.len()).collect();
    order.sort_by(|&a, &b| {
        let (la, wa) = (u128::from(claims[a].0), u128::from(claims[a].1));
        let (lb, wb) = (u128::from(claims[b].0), u128::from(claims[b].1));
        (la * wb).cmp(&(lb * wa))
    });
    for &i in &order {
        let (limit, weight) = claims[i];
        if weight_left == 0 {
            break;
        }
        let fair = u128::from(left) * u128::from(weight) / weight_left;
        // fair ≤ left, a u64.
        let g = limit.min(fair as u64);
        given[i] = g;
        left -= g;
        weight_left -= u128::from(weight);
    }
    // Rounding down may leave a few points; hand them out in order.
    for &i in &order {
        if left == 0 {
            break;
        }
        let top_up = (claims[i].0 - given[i]).min(left);
        given[i] += top_up;
        left -= top_up;
    }
    given
}
