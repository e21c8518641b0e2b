//! CPU: scheduler caps of the managed domains within the host's pool, by
//! rex's SLA-first law (the rules are in the module doc of `policy`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::classes::{aim_ms, cap_kept, is_idle, Claim, Class, Donor};
use super::trend::Direction;
use super::Slot;
use crate::engine::model::{DomId, HostInfo, Reason};
use crate::engine::sla::HostPolicy;

/// The CPU the managed domains share, percent of one pCPU: the guests'
/// pCPUs, less dom0's share, the reserve, and the caps of capped guests rex
/// does not manage.
pub fn pool(host: &HostInfo, policy: &HostPolicy, unmanaged_caps: u64) -> u64 {
    crate::engine::limits::cpu_pool_pct(
        host.guest_pcpus,
        policy.dom0_cpu_pct,
        policy.reserve_cpu_pct,
        unmanaged_caps,
    )
}

/// Σ of the caps decided so far.
pub(super) fn total(slots: &[Slot]) -> u64 {
    slots.iter().map(|s| u64::from(s.cap.to)).sum()
}

/// Decides every slot's cap. Returns false when the guarantees alone exceed
/// the pool (each domain is then held at its guarantee).
pub fn plan(policy: &HostPolicy, pool: u64, slots: &mut [Slot], tick: u64) -> bool {
    let fits = bounds_within_pool(slots, pool);
    if fits {
        let mut free = pool.saturating_sub(total(slots));
        let (claims, donors) = super::classes::claims_and_donors(policy, slots, tick);
        serve(policy, slots, &claims, &donors, &mut free, tick);
        if !claims.iter().any(|c| c.class == Class::Missing) {
            give_back(policy, slots, tick);
        }
    }
    // One walk over the slots for both: at 10,000 domains a walk is a
    // stream of megabytes.
    for slot in slots.iter_mut() {
        record_loan(slot);
        let (current, cap) = (slot.usage.sched.cap, &slot.cap);
        slot.carried
            .cap_trend
            .follow(current, cap.to, cap.forced, tick, policy.cooldown_ticks);
    }
    fits
}

/// What was taken from a domain is lent until something raises its cap;
/// headroom is what it holds of the pool, less any cut since.
fn record_loan(slot: &mut Slot) {
    let current = slot.usage.sched.cap;
    let to = slot.cap.to;
    if to > current {
        slot.carried.lent = slot.carried.lent.saturating_sub(to - current);
        if slot.cap.reason == Some(Reason::Headroom) {
            slot.carried.headroom = slot.carried.headroom.saturating_add(to - current);
        }
    } else if to < current {
        let lost = current - to;
        if matches!(slot.cap.reason, Some(Reason::Preempted { .. })) {
            // Headroom taken back was the pool's, not a loan.
            let of_headroom = lost.min(slot.carried.headroom);
            slot.carried.lent = slot.carried.lent.saturating_add(lost - of_headroom);
        }
    }
    slot.carried.headroom = slot
        .carried
        .headroom
        .min(to.saturating_sub(slot.policy.guaranteed_cap()));
}

/// SLA domains at or below their aim give CPU back to the domains it was
/// taken from (the most comfortable first, each down to the cap it is
/// estimated to keep its aim with, at most a step a tick), while nobody
/// misses an SLA. Without this, what a load step took from idle domains
/// would stay taken, and their latency with it.
fn give_back(policy: &HostPolicy, slots: &mut [Slot], tick: u64) {
    let deadband = policy.deadband_cap.max(1);
    let mut givers: Vec<(usize, f64, f64)> = (0..slots.len())
        .filter_map(|i| {
            let slot = &slots[i];
            let (sla, r) = (slot.policy.sla_ms?, slot.usage.report.response_ms?);
            let unchanged = slot.cap.reason.is_none() && slot.usage.has_cpu_sample;
            // The last change must have had a cooldown to show its effect.
            let settled =
                slot.carried
                    .cap_trend
                    .allows(Direction::Down, tick, policy.cooldown_ticks)
                    && !slot
                        .carried
                        .cap_trend
                        .changed_after(tick.saturating_sub(u64::from(policy.cooldown_ticks)));
            // Good news must last: clearly within the aim (this tick
            // included) for longer than a cooldown.
            let lasting = slot.carried.within_ticks > policy.cooldown_ticks;
            let above = slot.cap.to > slot.policy.guaranteed_cap();
            (unchanged && settled && lasting && above).then(|| (i, r, aim_ms(policy, sla)))
        })
        .collect();
    givers.sort_by(|a, b| (a.1 / a.2).total_cmp(&(b.1 / b.2)));
    if givers.is_empty() {
        return;
    }
    // What each lender is owed, once for all the givers: a busy lender
    // claims for itself, an idle one never would, and what an idle SLA
    // domain holds above its guarantee is headroom that any claim takes
    // back (it is owed nothing). A lender leaves the list once it is paid
    // (its cap then has a reason); the others' debts do not move meanwhile.
    let mut lenders: Vec<(usize, u64)> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let unchanged =
                s.cap.reason.is_none() && is_idle(policy, s) && s.policy.sla_ms.is_none();
            let room = s.policy.cap_ceiling().saturating_sub(s.cap.to);
            let owed = u64::from(s.carried.lent.min(room));
            (unchanged && owed > 0).then_some((i, owed))
        })
        .collect();
    // The largest debts first; among equal ones, from the slot `tick` (mod
    // the slots) on, so the remainder of a level drain falls on another
    // domain each tick.
    let n = slots.len();
    let first = tick as usize % n;
    lenders.sort_by_key(|&(i, owed)| (Reverse(owed), (i + n - first) % n));
    let mut owed_total: u64 = lenders.iter().map(|&(_, owed)| owed).sum();
    for (giver, response_ms, aim) in givers {
        if owed_total < u64::from(deadband) {
            return;
        }
        let slot = &slots[giver];
        let cap = slot.cap.to;
        let kept = cap_kept(cap, response_ms, aim)
            .max(slot.policy.guaranteed_cap())
            .max(slot.carried.give_back_floor);
        // Near the knee of a closed loop a few points move the response a
        // lot: within sight of the aim, give back a deadband at a time.
        let step = if response_ms > aim / 2.0 {
            deadband
        } else {
            policy.max_step_cap.max(1)
        };
        let give = u64::from((cap - kept.min(cap)).min(step)).min(owed_total);
        if give < u64::from(deadband) {
            continue;
        }
        let name = slot.usage.name.to_string();
        // The largest debts first, leaving what is still owed level.
        let owed: Vec<u64> = lenders.iter().map(|&(_, owed)| owed).collect();
        let gets = level_drain_sorted(give, &owed);
        let mut paid = Vec::new();
        for (&(i, _), &got) in lenders.iter().zip(&gets) {
            if got > 0 {
                paid.push((i, got));
            }
        }
        // Paid in slot order, as the names of those paid are listed.
        paid.sort_unstable_by_key(|&(i, _)| i);
        let mut to_names = Vec::with_capacity(paid.len());
        for &(i, got) in &paid {
            let lender = &mut slots[i];
            // got ≤ owed, a u32.
            let to = lender.cap.to + got as u32;
            lender.cap.set(to, Reason::Restored { by: name.clone() });
            to_names.push(lender.usage.name.to_string());
        }
        let mut gets = gets.into_iter();
        lenders.retain(|&(_, owed)| {
            let got = gets.next().unwrap_or(0);
            if got > 0 {
                owed_total -= owed;
            }
            got == 0
        });
        slots[giver].cap.set(
            cap - give as u32,
            Reason::Returned {
                response_ms,
                to: to_names,
            },
        );
    }
}

/// Restores every bound, then fits the caps to `pool`. False when the
/// guarantees alone exceed it (each domain is then held at its guarantee).
pub(super) fn bounds_within_pool(slots: &mut [Slot], pool: u64) -> bool {
    let sum = restore_bounds(slots);
    sum <= pool || fit_to_pool(slots, sum - pool)
}

/// Bounds first, at once, whatever the cooldown, step or deadband. Returns
/// Σ of the caps then decided.
fn restore_bounds(slots: &mut [Slot]) -> u64 {
    let mut sum = 0;
    for slot in slots.iter_mut() {
        let ceiling = slot.policy.cap_ceiling();
        let guaranteed = slot.policy.guaranteed_cap();
        let current = slot.usage.sched.cap;
        if current == 0 {
            // Uncapped: the domain starts at its level, as in the paper.
            slot.cap.force(guaranteed, Reason::Guarantee);
        } else if slot.sla_changed && current != guaranteed {
            slot.cap.force(guaranteed, Reason::SlaChanged);
        } else if current < guaranteed {
            slot.cap.force(guaranteed, Reason::Guarantee);
        } else if current > ceiling {
            slot.cap.force(ceiling, Reason::Ceiling);
        }
        sum += u64::from(slot.cap.to);
    }
    sum
}

/// Takes `excess` back from domains above their guarantee, domains without
/// an SLA first, then least priority and least busy. Returns whether it all
/// fitted.
fn fit_to_pool(slots: &mut [Slot], excess: u64) -> bool {
    let mut above: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].cap.to > slots[i].policy.guaranteed_cap())
        .collect();
    above.sort_by(|&a, &b| {
        let (sa, sb) = (&slots[a], &slots[b]);
        sa.policy
            .sla_ms
            .is_some()
            .cmp(&sb.policy.sla_ms.is_some())
            .then(sa.policy.priority.cmp(&sb.policy.priority))
            .then(sa.usage.cpu_pct.total_cmp(&sb.usage.cpu_pct))
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
    excess == 0
}

/// Serves the claims in class order: a domain missing its SLA takes from
/// the pool, then from donors tier by tier; near-SLA domains from the pool,
/// headroom and best-effort domains; approaching ones from the pool,
/// headroom and (gradually) busy best-effort domains; saturated ones from
/// the pool, headroom and what idle best-effort domains do not use;
/// comfortable ones only from the pool and headroom. While a domain misses its SLA, only other
/// missing domains grow.
fn serve(
    policy: &HostPolicy,
    slots: &mut [Slot],
    claims: &[Claim],
    donors: &[Donor],
    free: &mut u64,
    tick: u64,
) {
    let deadband = policy.deadband_cap.max(1);
    let anyone_missing = claims.iter().any(|c| c.class == Class::Missing);
    let mut holders = HeadroomHolders::default();
    let mut start = 0;
    while start < claims.len() {
        let (class, priority) = (claims[start].class, claims[start].priority);
        let end = start
            + claims[start..]
                .iter()
                .take_while(|c| c.class == class && c.priority == priority)
                .count();
        let group = &claims[start..end];
        start = end;
        if class != Class::Missing && anyone_missing {
            continue;
        }
        // The pool first, shared by weight within one class and priority.
        let limits: Vec<(u64, u64)> = group
            .iter()
            .map(|c| {
                (
                    u64::from(c.want),
                    u64::from(slots[c.slot].policy.weight.max(1)),
                )
            })
            .collect();
        let shares = share(*free, &limits);
        for (claim, from_pool) in group.iter().zip(shares) {
            // from_pool ≤ want, a u32.
            let mut got = from_pool as u32;
            let mut from = Vec::new();
            let need = claim.preempt.min(claim.want - got);
            if class == Class::Headroom && got < claim.want {
                got += even_out_headroom(
                    policy,
                    slots,
                    &mut holders,
                    claim,
                    claim.want - got,
                    &mut from,
                );
            } else if class != Class::Headroom && need > 0 {
                let available: u32 = donors
                    .iter()
                    .filter(|d| d.slot != claim.slot)
                    .map(|d| d.most(claim, slots[d.slot].cap.to))
                    .sum();
                // Take nothing rather than less than a change is worth.
                if got + available.min(need) >= deadband {
                    let steps = (policy.max_step_cap.max(1), deadband);
                    got += preempt(steps, slots, donors, claim, need, &mut from, tick);
                }
            }
            if got < deadband {
                got = 0;
            }
            // Demand the host could not meet, not what the law held back:
            // headroom and a comfortable domain's growth are not demand,
            // and a settling domain takes less on purpose.
            if !matches!(class, Class::Headroom | Class::Comfortable) && !claim.settling {
                slots[claim.slot].unmet_cpu = claim.want - got;
            }
            if got == 0 {
                continue;
            }
            *free -= from_pool.min(u64::from(got));
            let slot = &mut slots[claim.slot];
            let to = slot.cap.to + got;
            slot.cap.set(to, claim.reason(from));
        }
    }
    evict_best_effort(slots, claims);
}

/// Takes up to `need` for `claim` from the donors, tier by tier, leveling
/// within a tier (the donor with the most room gives first, so many donors
/// give a little rather than one a lot). Returns what it took.
fn preempt(
    (max_step, deadband): (u32, u32),
    slots: &mut [Slot],
    donors: &[Donor],
    claim: &Claim,
    need: u32,
    from: &mut Vec<String>,
    tick: u64,
) -> u32 {
    let mut taken = 0;
    let by = slots[claim.slot].usage.name.to_string();
    let gradual = (max_step / 4).max(deadband);
    for tier in 0..Donor::TIERS {
        if taken == need {
            break;
        }
        let rooms: Vec<u64> = donors
            .iter()
            .map(|d| {
                if d.slot == claim.slot || !d.gives_in(tier, claim) {
                    0
                } else {
                    u64::from(d.room(tier, slots[d.slot].cap.to))
                }
            })
            .collect();
        // SLA domains of lower priority give gradually: what a miss in the
        // middle of a load step asks for overstates what the taker needs
        // once its queue has drained.
        // Likewise best-effort domains to a domain that is only approaching
        // its aim: it may not need all of a step.
        let gradual_tier = tier == Donor::LOWER_PRIORITY
            || (tier == Donor::BEST_EFFORT && claim.class == Class::Approaching);
        let limit = if gradual_tier {
            (need - taken).min(gradual)
        } else {
            need - taken
        };
        let caps: Vec<u64> = donors
            .iter()
            .map(|d| u64::from(slots[d.slot].cap.to))
            .collect();
        let takes = level_caps(u64::from(limit), &caps, &rooms, tick as usize);
        for (donor, take) in donors.iter().zip(takes) {
            if take == 0 {
                continue;
            }
            let slot = &mut slots[donor.slot];
            // take ≤ room, a u32.
            let to = slot.cap.to - take as u32;
            slot.cap.set(to, Reason::Preempted { by: by.clone() });
            taken += take as u32;
            let name = &*slots[donor.slot].usage.name;
            if !from.iter().any(|f| f == name) {
                from.push(name.to_string());
            }
        }
    }
    taken
}

/// An idle SLA domain asking for headroom while the pool is empty takes up
/// to `need` from the idle SLA domain holding the most above its guarantee,
/// at most half the difference between them: idle domains even out what
/// they hold of the pool, so one that had a load step does not keep what it
/// took once it is idle again. Best-effort domains are never asked.
fn even_out_headroom(
    policy: &HostPolicy,
    slots: &mut [Slot],
    holders: &mut HeadroomHolders,
    claim: &Claim,
    need: u32,
    from: &mut Vec<String>,
) -> u32 {
    let deadband = policy.deadband_cap.max(1);
    let mine = above_guarantee(&slots[claim.slot]);
    let Some(donor) = holders.most(policy, slots, claim.slot) else {
        return 0;
    };
    let theirs = above_guarantee(&slots[donor]);
    let take = (theirs.saturating_sub(mine) / 2).min(need);
    if take < deadband {
        return 0;
    }
    let by = slots[claim.slot].usage.name.to_string();
    let slot = &mut slots[donor];
    let to = slot.cap.to - take;
    slot.cap.set(to, Reason::Preempted { by });
    from.push(slots[donor].usage.name.to_string());
    take
}

fn above_guarantee(slot: &Slot) -> u32 {
    slot.cap.to.saturating_sub(slot.policy.guaranteed_cap())
}

/// The idle SLA domains holding headroom that [`even_out_headroom`] may
/// take from, most above its guarantee first (then the lowest domid). Made
/// once per tick, at the first claim that needs it, instead of a scan of
/// every slot for each claim: a domain drops out once anything changed its
/// cap (it then has a reason), and until then what it holds is what it held
/// when the heap was made.
#[derive(Default)]
struct HeadroomHolders {
    heap: Option<BinaryHeap<(u32, Reverse<DomId>, usize)>>,
}

impl HeadroomHolders {
    fn most(&mut self, policy: &HostPolicy, slots: &[Slot], besides: usize) -> Option<usize> {
        let heap = self.heap.get_or_insert_with(|| {
            (0..slots.len())
                .filter(|&i| {
                    let s = &slots[i];
                    s.policy.sla_ms.is_some()
                        && !s.cap.forced
                        && s.cap.reason.is_none()
                        && s.usage.has_cpu_sample
                        && is_idle(policy, s)
                })
                .map(|i| (above_guarantee(&slots[i]), Reverse(slots[i].usage.domid), i))
                .collect()
        });
        let unchanged = |i: usize| !slots[i].cap.forced && slots[i].cap.reason.is_none();
        while heap.peek().is_some_and(|&(_, _, i)| !unchanged(i)) {
            heap.pop();
        }
        let top = heap.pop()?;
        if top.2 != besides {
            heap.push(top);
            return Some(top.2);
        }
        // The claimer itself holds the most: the next one, if any.
        while heap.peek().is_some_and(|&(_, _, i)| !unchanged(i)) {
            heap.pop();
        }
        let next = heap.peek().map(|&(_, _, i)| i);
        heap.push(top);
        next
    }
}

/// A domain that has missed its SLA for more than two intervals and can
/// still grow leaves no best-effort domain above its guarantee: what they
/// give back waits in the pool for it (its own growth keeps to the step).
fn evict_best_effort(slots: &mut [Slot], claims: &[Claim]) {
    let Some(starved) = claims
        .iter()
        .find(|c| c.class == Class::Missing && c.persistent && slots[c.slot].can_grow())
    else {
        return;
    };
    let by = slots[starved.slot].usage.name.to_string();
    // No deadband here: even a point above the guarantee is too much.
    for slot in slots.iter_mut().filter(|s| s.policy.sla_ms.is_none()) {
        let guaranteed = slot.policy.guaranteed_cap();
        if slot.cap.to > guaranteed {
            let reason = Reason::Preempted { by: by.clone() };
            if slot.cap.forced {
                slot.cap.force(guaranteed, reason);
            } else {
                slot.cap.set(guaranteed, reason);
            }
        }
    }
}

/// Takes `amount` from donors whose `rooms` are sorted highest first,
/// leaving their rooms as level as possible; among equal rooms the
/// remainder falls on the earlier ones. The takes, in the same order.
/// O(n) for n donors (plus the sort the caller made).
pub(super) fn level_drain_sorted(amount: u64, rooms: &[u64]) -> Vec<u64> {
    let mut takes = vec![0u64; rooms.len()];
    let total: u64 = rooms.iter().sum();
    let mut left = amount.min(total);
    if left == 0 {
        return takes;
    }
    // Find the level L such that Σ max(0, room − L) ≥ left, lowest first.
    let mut k = 0; // donors above the level being considered
    let mut level = rooms[0];
    while left > 0 {
        while k < rooms.len() && rooms[k] >= level {
            k += 1;
        }
        let next = if k < rooms.len() { rooms[k] } else { 0 };
        let step = (level - next) * k as u64;
        if step >= left {
            // Lower the top k by left / k, the remainder one each.
            let per = left / k as u64;
            let extra = left % k as u64;
            for (n, take) in takes[..k].iter_mut().enumerate() {
                let target = level - per - u64::from((n as u64) < extra);
                *take = rooms[n] - target;
            }
            left = 0;
        } else {
            left -= step;
            level = next;
            for (take, room) in takes[..k].iter_mut().zip(rooms) {
                *take = room - level;
            }
        }
    }
    takes
}

/// Takes `amount` from donors with `caps`, at most `rooms[i]` from each,
/// highest cap first, leaving the caps as level as possible: donors alike
/// stay alike whatever their rooms (what an idle one keeps depends on its
/// use of the moment). The remainder falls in turn from index `first`, so
/// a tick-by-tick caller spreads it evenly instead of always on the same
/// domain. O(n log max cap).
pub(super) fn level_caps(amount: u64, caps: &[u64], rooms: &[u64], first: usize) -> Vec<u64> {
    let take = |cap: u64, room: u64, level: u64| room.min(cap.saturating_sub(level));
    let taken_at = |level: u64| -> u64 {
        caps.iter()
            .zip(rooms)
            .map(|(&cap, &room)| take(cap, room, level))
            .sum()
    };
    let total: u64 = rooms.iter().sum();
    if amount >= total {
        return rooms.to_vec();
    }
    // The lowest level down to which taking gives at most `amount`.
    let (mut low, mut high) = (0, caps.iter().copied().max().unwrap_or(0));
    while low < high {
        let mid = low + (high - low) / 2;
        if taken_at(mid) <= amount {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    let mut takes: Vec<u64> = caps
        .iter()
        .zip(rooms)
        .map(|(&cap, &room)| take(cap, room, low))
        .collect();
    let mut left = amount - takes.iter().sum::<u64>();
    // One more from each donor at the level that has room left: there are
    // more of them than `left`, as the level below would take too much.
    let n = caps.len();
    for k in 0..n {
        if left == 0 {
            break;
        }
        let i = (first + k) % n;
        if caps[i] - takes[i] == low && takes[i] < rooms[i] && low > 0 {
            takes[i] += 1;
            left -= 1;
        }
    }
    takes
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
