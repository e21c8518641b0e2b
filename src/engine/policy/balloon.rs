//! Balloons that do not follow their target: squeezed's "uncooperative"
//! domains.
//!
//! A guest's balloon driver moves its allocation towards the target it is
//! given; a hung driver, or a guest with nothing left to give, does not. Such
//! a domain is marked uncooperative: its target is set back to what it holds
//! (so what it never released is not counted on, and what it never took
//! cannot be taken later behind rex's back), the flag is published, and rex
//! leaves its memory alone for a probation that doubles at every relapse.
//!
//! Progress is judged in windows of `balloon_timeout`: in each, the balloon
//! must close at least half of the gap it started the window with, so a
//! guest cannot pass by releasing one page now and then. A grow the host
//! cannot serve (less free than the gap) is not the guest's fault and
//! restarts the window.

use super::Slot;
use crate::engine::model::{KiB, Reason};
use crate::engine::sla::HostPolicy;

/// The longest probation, in balloon timeouts (64 × 20 s ≈ 21 min).
const MAX_PROBATION_TIMEOUTS: u64 = 64;
/// The first probation, in balloon timeouts.
const FIRST_PROBATION_TIMEOUTS: u64 = 3;

/// What rex knows of one domain's balloon between ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BalloonWatch {
    state: State,
    /// Times it was found uncooperative: each doubles the next probation.
    relapses: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// At its target, or no target to judge yet.
    #[default]
    AtTarget,
    /// Moving towards `target_kb`: `gap_kb` away at the start of the window
    /// that began at `since_tick`.
    Moving {
        target_kb: KiB,
        since_tick: u64,
        gap_kb: KiB,
    },
    /// Left alone until `until_tick`.
    Uncooperative { until_tick: u64 },
}

/// The flag to publish this tick, if it changes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FlagChange {
    pub uncooperative: bool,
    pub reason: Reason,
}

impl BalloonWatch {
    /// Whether rex leaves this domain's memory alone now.
    pub fn is_uncooperative(&self) -> bool {
        matches!(self.state, State::Uncooperative { .. })
    }
}

/// Ticks in one balloon timeout (at least two: one tick is no time to move).
fn timeout_ticks(policy: &HostPolicy) -> u64 {
    (policy.balloon_timeout_ms / policy.interval_ms.max(1)).max(2)
}

/// A balloon within this of its target has reached it: Xen's allocation
/// and the target differ by a few pages even when the driver is done.
fn tolerance_kb(policy: &HostPolicy) -> KiB {
    policy.deadband_mem_kb.max(1024)
}

/// Judges one domain's balloon this tick. When it is found uncooperative,
/// its memory decision is forced to what it holds now; when its probation
/// ends, it is managed again. Returns the flag change to publish.
pub(super) fn judge(
    policy: &HostPolicy,
    slot: &mut Slot,
    host_free_kb: KiB,
    tick: u64,
) -> Option<FlagChange> {
    let target = slot.usage.mem_target_kb;
    let current = slot.usage.mem_current_kb;
    let watch = &mut slot.carried.balloon;
    if let State::Uncooperative { until_tick } = watch.state {
        if tick < until_tick {
            return None;
        }
        watch.state = State::AtTarget;
        return Some(FlagChange {
            uncooperative: false,
            reason: Reason::BalloonRetried,
        });
    }
    // A domain being built has no target yet (0).
    let gap = target.abs_diff(current);
    if target == 0 || gap <= tolerance_kb(policy) {
        if matches!(watch.state, State::Moving { .. }) {
            // It moved all the way: whatever it did before is forgiven.
            watch.relapses = 0;
        }
        watch.state = State::AtTarget;
        return None;
    }
    let window = timeout_ticks(policy);
    match watch.state {
        State::Moving {
            target_kb,
            since_tick,
            gap_kb,
        } if target_kb == target => {
            let host_short = target > current && host_free_kb < gap;
            if host_short || gap <= gap_kb / 2 {
                // The host's shortfall, or progress enough: a new window.
                watch.state = State::Moving {
                    target_kb,
                    since_tick: tick,
                    gap_kb: gap,
                };
                return None;
            }
            if tick.saturating_sub(since_tick) < window {
                return None;
            }
            let probation = window
                .saturating_mul(FIRST_PROBATION_TIMEOUTS << watch.relapses.min(8))
                .min(window.saturating_mul(MAX_PROBATION_TIMEOUTS));
            watch.relapses = watch.relapses.saturating_add(1);
            watch.state = State::Uncooperative {
                until_tick: tick.saturating_add(probation),
            };
            let waited_s = (tick - since_tick) as f64 * policy.interval_ms as f64 / 1000.0;
            let reason = Reason::BalloonStuck {
                current_kb: current,
                target_kb: target,
                waited_s,
            };
            slot.mem.force(current, reason.clone());
            Some(FlagChange {
                uncooperative: true,
                reason,
            })
        }
        // A new target (rex's or anyone's): a new window.
        _ => {
            watch.state = State::Moving {
                target_kb: target,
                since_tick: tick,
                gap_kb: gap,
            };
            None
        }
    }
}

#[cfg(test)]
#[path = "balloon_tests.rs"]
mod tests;
