//! Who wants CPU this tick and how badly (claims, in classes), and who can
//! give some back and down to what (donors, in tiers).

use super::order::{sort_by_packed_key, total_order_key};
use super::trend::Direction;
use super::Slot;
use crate::engine::model::Reason;
use crate::engine::sla::HostPolicy;

/// Demand classes, in the order they are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    /// An SLA domain whose guest reports a response above its SLA.
    Missing,
    /// An SLA domain within its SLA but above the aim two ticks in a row,
    /// using its CPU.
    Near,
    /// A saturated SLA domain within its aim but close to it (above the
    /// line below which it would give CPU back): a rising load should not
    /// wait for a miss, so it takes from the pool before best-effort
    /// domains do — but only from the pool and the headroom idle domains
    /// hold.
    Approaching,
    /// A saturated domain with no SLA figure to go by (no SLA, or a guest
    /// that reports no response time).
    Saturated,
    /// A saturated SLA domain well within its aim: enough, not more — it
    /// grows only from what is left in the pool (and the headroom idle
    /// domains hold of it).
    Comfortable,
    /// Any other SLA domain: what is left of the pool after every other
    /// class is held by SLA domains as headroom against a load step.
    Headroom,
}

// The claims' sort key holds a class in 3 bits.
const _: () = assert!((Class::Headroom as u8) < 8);

/// One domain's demand this tick.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    pub slot: usize,
    pub class: Class,
    pub priority: u32,
    /// Cap points asked for: at least the deadband, at most the step and
    /// the room below the ceiling.
    pub want: u32,
    /// Of `want`, what a missing domain may take from other domains: in
    /// proportion to its error (the pool costs nobody, so it may give more).
    pub preempt: u32,
    /// Raised at the last tick, or the response fell by a tenth or more
    /// since then: the last raise is still working, so only best-effort
    /// domains give this tick, and the others at most a quarter step.
    pub settling: bool,
    /// Missing for more than two intervals in a row.
    pub persistent: bool,
    response_ms: f64,
    sla_ms: f64,
    aim_ms: f64,
    usage_pct: f64,
}

impl Claim {
    pub fn reason(&self, from: Vec<String>) -> Reason {
        match self.class {
            Class::Missing => Reason::SlaMissed {
                response_ms: self.response_ms,
                sla_ms: self.sla_ms,
                from,
            },
            Class::Near => Reason::NearSla {
                response_ms: self.response_ms,
                aim_ms: self.aim_ms,
                from,
            },
            Class::Approaching | Class::Saturated | Class::Comfortable => Reason::Saturated {
                usage_pct: self.usage_pct,
            },
            Class::Headroom => Reason::Headroom,
        }
    }
}

/// A domain that may give CPU to a domain missing its SLA, with the cap it
/// keeps in each tier (`None`: not a donor in that tier).
#[derive(Debug, Clone)]
pub(super) struct Donor {
    pub slot: usize,
    pub priority: u32,
    pub best_effort: bool,
    pub idle: bool,
    floors: [Option<u32>; Donor::TIERS],
}

impl Donor {
    pub const TIERS: usize = 4;
    /// Idle SLA domains holding headroom: what they hold of the pool.
    pub const HEADROOM: usize = 0;
    /// Idle domains, and SLA domains well inside their SLA (at most half
    /// the aim), above what they use or need and their guarantee.
    pub const SPARE: usize = 1;
    /// Busy domains without an SLA, down to their guarantee (idle ones give
    /// in the spare tier first, and all of it after a persistent miss).
    pub const BEST_EFFORT: usize = 2;
    /// SLA domains of lower priority than the taker, at or below their aim.
    pub const LOWER_PRIORITY: usize = 3;

    /// Cap points this donor can give in `tier` when its cap is now `to`.
    pub fn room(&self, tier: usize, to: u32) -> u32 {
        self.floors[tier].map_or(0, |floor| to.saturating_sub(floor))
    }

    /// Whether this donor gives to `claim` in `tier`: lower-priority SLA
    /// domains only to higher priorities, and only best-effort domains to a
    /// domain whose last raise is still working.
    pub fn gives_in(&self, tier: usize, claim: &Claim) -> bool {
        if claim.class == Class::Comfortable {
            // What idle domains hold as headroom is the pool's.
            return tier == Self::HEADROOM;
        }
        if matches!(claim.class, Class::Near | Class::Approaching) && tier == Self::BEST_EFFORT {
            // SLA domains are served before best-effort ones: one near its
            // SLA, or saturated close to its aim, need not wait for a miss to
            // take from them.
            return true;
        }
        if claim.class == Class::Approaching {
            return tier == Self::HEADROOM;
        }
        if claim.class != Class::Missing {
            // Reclaim on demand: headroom, and what an idle best-effort
            // domain does not use, go to a domain that wants them; nothing
            // else moves.
            return tier == Self::HEADROOM
                || (tier == Self::SPARE && self.idle && self.best_effort);
        }
        match tier {
            Self::HEADROOM => true,
            Self::BEST_EFFORT => true,
            Self::LOWER_PRIORITY => !claim.settling && self.priority < claim.priority,
            _ => !claim.settling,
        }
    }

    /// The most it can give `claim` in any tier open to it.
    pub fn most(&self, claim: &Claim, to: u32) -> u32 {
        (0..Self::TIERS)
            .filter(|&t| self.gives_in(t, claim))
            .map(|t| self.room(t, to))
            .max()
            .unwrap_or(0)
    }
}

/// The domain's CPU use as a percentage of its cap: the larger of the
/// smoothed and the last interval's use, so a load step counts at once and
/// a domain is idle only when both say so.
pub(super) fn usage_of_cap(slot: &Slot) -> f64 {
    let cap = slot.usage.sched.cap.max(1);
    let used = slot.usage.cpu_pct.max(slot.usage.cpu_pct_raw);
    used / f64::from(cap) * 100.0
}

/// A domain gives CPU back only when its response is at most this fraction
/// of its aim: between it and the SLA nothing moves, so a steady load does
/// not take and give back in turn.
const GIVE_BACK_BELOW: f64 = 0.85;

/// Whether the domain uses at most `idle` of its cap.
pub(super) fn is_idle(policy: &HostPolicy, slot: &Slot) -> bool {
    usage_of_cap(slot) <= policy.idle_pct
}

/// The response time rex aims for, ms.
pub(super) fn aim_ms(policy: &HostPolicy, sla_ms: f64) -> f64 {
    sla_ms * policy.sla_target_pct / 100.0
}

/// The cap at which `cpu_pct` sits midway between the idle and saturation
/// thresholds: an idle domain cut no lower does not turn saturated at once.
fn cap_for_use(cpu_pct: f64, policy: &HostPolicy) -> u32 {
    let midway = ((policy.idle_pct + policy.saturation_pct) / 2.0).clamp(1.0, 100.0);
    let cap = (cpu_pct * 100.0 / midway).ceil();
    // `as` saturates; NaN becomes 0 and the guarantee takes over.
    cap as u32
}

/// The cap an SLA domain answering in `response_ms` at `cap` keeps when it
/// gives CPU back: half the way to the cap at which it would answer in the
/// aim, estimated as if response time grew as 1/√cap (a closed loop's
/// response grows less than 1/cap as its clients spend time thinking), so a
/// wrong estimate costs one step, not the SLA.
pub(super) fn cap_kept(cap: u32, response_ms: f64, aim_ms: f64) -> u32 {
    let ratio = (response_ms.max(0.0) / aim_ms).min(1.0);
    let need = (f64::from(cap) * ratio.sqrt()).ceil() as u32;
    cap - (cap - need.min(cap)) / 2
}

/// The cap at which a domain answering `response_ms` at `cap` would answer
/// in `aim_ms`, by the same 1/√cap estimate as [`cap_kept`].
fn cap_needed(cap: u32, response_ms: f64, aim_ms: f64) -> u32 {
    let need = (f64::from(cap) * (response_ms.max(0.0) / aim_ms).sqrt()).ceil();
    // `as` saturates and maps NaN to 0.
    need as u32
}

/// Cap points a domain answering `ratio` × its aim asks for: proportional to
/// the error (the cap times how far the response is above the aim), more
/// the longer the miss lasts, within [deadband, max_step].
fn step_for_error(policy: &HostPolicy, cap: u32, ratio: f64, streak: u32) -> u32 {
    let escalation = f64::from(streak.saturating_sub(1).min(3) + 1);
    let raw = f64::from(cap) * (ratio - 1.0).max(0.0) * escalation;
    let max = policy.max_step_cap.max(1);
    // `as` saturates and maps NaN to 0.
    (raw.ceil() as u32).clamp(policy.deadband_cap.max(1).min(max), max)
}

/// Every managed domain's claim, sorted in service order: class, then
/// priority (highest first), then how far off its SLA (furthest first);
/// and every domain that could give CPU, in slot order. Updates each
/// slot's run of missed ticks. (One walk over the slots for both: at
/// 10,000 domains a walk streams megabytes.)
pub(super) fn claims_and_donors(
    policy: &HostPolicy,
    slots: &mut [Slot],
    tick: u64,
) -> (Vec<Claim>, Vec<Donor>) {
    let mut claims = Vec::new();
    let mut donors = Vec::new();
    for (i, slot) in slots.iter_mut().enumerate() {
        claims.extend(claim(policy, slot, i, tick));
        donors.extend(donor(policy, slot, i));
    }
    // Claims are pushed in slot order, and the slots are in domid order:
    // ties are broken by domid.
    sort_by_packed_key(&mut claims, 3 + 32 + 64, |c| {
        claim_key(c.class, c.priority, c.response_ms / c.sla_ms)
    });
    (claims, donors)
}

/// What slot `i` asks for this tick, if anything; records what its
/// response says of its cap.
fn claim(policy: &HostPolicy, slot: &mut Slot, i: usize, tick: u64) -> Option<Claim> {
    let usage_pct = usage_of_cap(slot);
    let idle = usage_pct <= policy.idle_pct;
    let saturated = usage_pct >= policy.saturation_pct;
    let response = slot.usage.report.response_ms;
    match response {
        Some(r) if !idle && slot.usage.has_cpu_sample => {
            slot.carried.spread.record(slot.usage.sched.cap, r)
        }
        _ if idle => slot.carried.spread.clear(),
        _ => {}
    }
    // Seconds at this cap may well land above the SLA although their
    // mean is within the aim: not a cap to give back from or to stay at.
    let at_risk = !idle
        && slot
            .policy
            .sla_ms
            .is_some_and(|sla| slot.carried.spread.at_risk(sla));
    let clearly_within = match (slot.policy.sla_ms, response) {
        (Some(sla), Some(r)) => r <= aim_ms(policy, sla) * GIVE_BACK_BELOW && !at_risk,
        _ => false,
    };
    // Counts this tick: a non-zero count means clearly within now.
    slot.carried.within_ticks = if clearly_within {
        slot.carried.within_ticks.saturating_add(1)
    } else {
        0
    };
    // A reported miss counts only while the domain uses its CPU: more
    // cap cannot help an idle one, and a guest that merely writes a bad
    // figure (it is untrusted) must not gain from it.
    let missing = match (slot.policy.sla_ms, response) {
        (Some(sla), Some(r)) => r > sla && !idle && slot.usage.has_cpu_sample,
        _ => false,
    };
    slot.carried.missed_ticks = if missing {
        slot.carried.missed_ticks.saturating_add(1)
    } else {
        0
    };
    let above_aim = match (slot.policy.sla_ms, response) {
        (Some(sla), Some(r)) => r > aim_ms(policy, sla) && !idle && slot.usage.has_cpu_sample,
        _ => false,
    };
    // Above the aim right after a raise, and falling, is the backlog of
    // the lower cap draining: it says that cap was not enough, not this
    // one (a miss counts against this one at once).
    let falling = matches!((slot.carried.last_response_ms, response), (Some(p), Some(r)) if r < p);
    let just_raised = slot.carried.cap_trend.raised_since(tick.saturating_sub(2)) && falling;
    if above_aim || at_risk {
        // This cap was not enough for the aim (or not for every second):
        // giving back to it would bring the same response back.
        let cap = if just_raised && !missing && !at_risk {
            slot.carried.spread.previous_cap()
        } else {
            slot.usage.sched.cap
        };
        let deadband = policy.deadband_cap.max(1);
        let margin = if missing {
            (cap / 10).max(deadband)
        } else {
            deadband
        };
        let mut floor = cap.saturating_add(margin);
        if let (true, false, Some(sla), Some(r)) =
            (missing, just_raised, slot.policy.sla_ms, response)
        {
            // A miss the backlog of a lower cap does not explain says
            // how far off this cap is.
            floor = floor.max(cap_needed(cap, r, aim_ms(policy, sla)));
        }
        slot.carried.give_back_floor = slot.carried.give_back_floor.max(floor);
    } else if idle {
        // The load fell: what it needed before says nothing now. (A
        // low response right after a raise does not say so: it is the
        // raise working.)
        slot.carried.give_back_floor = 0;
    }
    if slot.cap.forced || !slot.usage.has_cpu_sample || !slot.can_grow() {
        slot.carried.last_response_ms = response;
        return None;
    }
    let cap = slot.cap.to;
    let sla_ms = slot.policy.sla_ms.unwrap_or(f64::INFINITY);
    let aim = aim_ms(policy, sla_ms);
    let grows = slot
        .carried
        .cap_trend
        .allows(Direction::Up, tick, policy.cooldown_ticks);
    let previous = std::mem::replace(&mut slot.carried.last_response_ms, response);
    let settling = slot.carried.cap_trend.raised_since(tick.saturating_sub(1))
        || matches!((previous, response), (Some(p), Some(r)) if r <= 0.9 * p);
    let room = slot.policy.cap_ceiling() - cap;
    let (class, want, preempt) = match response {
        _ if missing => {
            let r = response.unwrap_or(sla_ms);
            let preempt = step_for_error(policy, cap, r / aim, slot.carried.missed_ticks);
            (Class::Missing, policy.max_step_cap.max(1), preempt)
        }
        // Near is the softer signal: two ticks in a row above the aim,
        // so one noisy second does not move a steady load.
        // Or seconds at this cap landing above the SLA now and then
        // while the domain uses all of it: a deadband more.
        Some(r)
            if slot.policy.sla_ms.is_some()
                && ((r > aim && previous.is_some_and(|p| p > aim) && !idle)
                    || (at_risk && saturated)) =>
        {
            let want = step_for_error(policy, cap, r / aim, 1);
            (Class::Near, want, want)
        }
        Some(_) if slot.policy.sla_ms.is_some() && saturated && grows => {
            let want = policy.max_step_cap.max(1);
            let class = if clearly_within {
                Class::Comfortable
            } else {
                Class::Approaching
            };
            (class, want, want)
        }
        // Enough, not more: an SLA domain that needs nothing now only
        // holds what nobody else wants of the pool. (One that reports
        // no response but is saturated counts as saturated, below.)
        _ if slot.policy.sla_ms.is_some() && (response.is_some() || !saturated) => {
            if !grows || !policy.headroom {
                return None;
            }
            (Class::Headroom, policy.max_step_cap.max(1), 0)
        }
        _ if saturated && grows => {
            let want = policy.max_step_cap.max(1);
            (Class::Saturated, want, want)
        }
        _ => return None,
    };
    Some(Claim {
        slot: i,
        class,
        priority: slot.policy.priority,
        want: want.min(room),
        preempt: preempt.min(room),
        settling,
        persistent: slot.carried.missed_ticks > 2,
        response_ms: response.unwrap_or(0.0),
        sla_ms,
        aim_ms: aim,
        usage_pct,
    })
}

/// The order claims are served in: by class, higher priority first, then
/// farther above the SLA first.
fn claim_key(class: Class, priority: u32, response_per_sla: f64) -> u128 {
    let ratio = total_order_key(response_per_sla);
    (class as u128) << 96 | u128::from(u32::MAX - priority) << 64 | u128::from(!ratio)
}

/// Slot `i` as a domain that could give CPU to a domain missing its SLA,
/// if it can.
fn donor(policy: &HostPolicy, slot: &Slot, i: usize) -> Option<Donor> {
    let guaranteed = slot.policy.guaranteed_cap();
    let cap = slot.cap.to;
    if slot.cap.forced || !slot.usage.has_cpu_sample || cap <= guaranteed {
        return None;
    }
    let idle = is_idle(policy, slot);
    let mut floors = [None; Donor::TIERS];
    if idle && slot.policy.sla_ms.is_some() {
        // What an idle SLA domain holds above its guarantee is headroom.
        floors[Donor::HEADROOM] = Some(guaranteed);
    }
    if idle {
        floors[Donor::SPARE] = Some(cap_for_use(slot.usage.cpu_pct, policy).max(guaranteed));
    }
    match (slot.policy.sla_ms, slot.usage.report.response_ms) {
        // An idle one gives in the spare tier, keeping what it uses.
        (None, _) if !idle => floors[Donor::BEST_EFFORT] = Some(guaranteed),
        (None, _) => {}
        (Some(sla), Some(r)) if r <= aim_ms(policy, sla) && !slot.carried.spread.at_risk(sla) => {
            let kept = cap_kept(cap, r, aim_ms(policy, sla)).max(guaranteed);
            if r <= aim_ms(policy, sla) / 2.0 && !idle {
                floors[Donor::SPARE] = Some(kept);
            }
            floors[Donor::LOWER_PRIORITY] = Some(kept);
        }
        _ => {}
    }
    floors.iter().any(Option::is_some).then(|| Donor {
        slot: i,
        priority: slot.policy.priority,
        best_effort: slot.policy.sla_ms.is_none(),
        idle,
        floors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;

    fn class() -> impl Strategy<Value = Class> {
        prop_oneof![
            Just(Class::Missing),
            Just(Class::Near),
            Just(Class::Approaching),
            Just(Class::Saturated),
            Just(Class::Comfortable),
            Just(Class::Headroom),
        ]
    }

    proptest! {
        #[test]
        fn the_claim_key_orders_as_class_priority_and_error_do(
            a in (class(), 0u32..4, any::<f64>()),
            b in (class(), prop_oneof![0u32..4, Just(u32::MAX)], -2.0f64..2.0),
        ) {
            let tuple = |(c, p, r): (Class, u32, f64)| (c, Reverse(p), Reverse(total_order_key(r)));
            prop_assert_eq!(
                claim_key(a.0, a.1, a.2).cmp(&claim_key(b.0, b.1, b.2)),
                tuple(a).cmp(&tuple(b))
            );
        }
    }
}
