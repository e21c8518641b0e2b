//! Uncooperative balloons: found, left alone, retried.

use super::super::*;
use crate::engine::model::{Action, GuestReport};
use crate::engine::sla::HostPolicy;
use crate::engine::testutil::{host, memory_domain, usage};

const MIB: KiB = 1024;

/// 1 s ticks, a 5 s balloon timeout.
fn policy(names: &[&str]) -> Policy {
    let host = HostPolicy {
        slush_kb: 32 * MIB,
        balloon_timeout_ms: 5_000,
        headroom: false,
        ..HostPolicy::default()
    };
    let domains = names.iter().map(|n| memory_domain(n, None)).collect();
    Policy::new(PolicyConfig { host, domains })
}

/// A guest holding `current_kb` with target `target_kb`, using 40 MiB.
fn guest(domid: DomId, name: &str, target_kb: KiB, current_kb: KiB) -> Usage {
    let mut u = usage(domid, name, 20, 10.0);
    u.mem_target_kb = target_kb;
    u.mem_current_kb = current_kb;
    u.mem_max_kb = 512 * MIB;
    u.report = GuestReport {
        mem_free_kb: Some(current_kb.saturating_sub(40 * MIB)),
        mem_total_kb: Some(current_kb),
        response_ms: None,
        stale: false,
    };
    u.mem_used_kb = Some(40 * MIB);
    u
}

fn flags(plan: &Plan) -> Vec<(&str, bool)> {
    plan.changes
        .iter()
        .filter_map(|c| match c.action {
            Action::BalloonFlag { uncooperative } => Some((&*c.name, uncooperative)),
            _ => None,
        })
        .collect()
}

fn memory_of<'a>(plan: &'a Plan, name: &str) -> Option<(KiB, &'a Reason)> {
    plan.changes.iter().find_map(|c| match c.action {
        Action::Memory { to, .. } if &*c.name == name => Some((to, &c.reason)),
        _ => None,
    })
}

/// Runs `ticks` ticks with `current(tick)` as the guest's allocation and
/// its target at 64 MiB; returns the tick it was flagged at.
fn flagged_at(ticks: u64, current: impl Fn(u64) -> KiB) -> Option<u64> {
    let mut policy = policy(&["donor"]);
    (0..ticks).find(|&t| {
        let plan = policy.decide(
            &host(1, 512 * MIB),
            &[guest(1, "donor", 64 * MIB, current(t))],
        );
        flags(&plan) == [("donor", true)]
    })
}

#[test]
fn a_balloon_that_does_not_move_is_flagged_after_the_timeout_and_set_back() {
    let mut policy = policy(&["donor"]);
    let mut flagged = None;
    for t in 0..10 {
        let plan = policy.decide(
            &host(1, 512 * MIB),
            &[guest(1, "donor", 64 * MIB, 128 * MIB)],
        );
        if !flags(&plan).is_empty() {
            assert_eq!(flags(&plan), [("donor", true)]);
            let (to, reason) = memory_of(&plan, "donor").expect("target set back");
            assert_eq!(to, 128 * MIB, "the target is what it holds");
            assert!(matches!(reason, Reason::BalloonStuck { .. }), "{reason:?}");
            assert!(reason.to_string().contains("at 128 MiB, target 64 MiB"));
            flagged = Some(t);
            break;
        }
    }
    assert_eq!(
        flagged,
        Some(5),
        "flagged one timeout after the window opened"
    );
}

#[test]
fn releasing_a_page_now_and_then_does_not_pass_for_progress() {
    // 4 KiB a tick: the gap never halves within a window.
    let at = flagged_at(20, |t| 128 * MIB - 4 * t);
    assert_eq!(at, Some(5));
}

#[test]
fn a_slow_balloon_that_halves_its_gap_each_window_is_not_flagged() {
    // 64 MiB away, closing 8 MiB a tick: slow, but moving.
    assert_eq!(
        flagged_at(12, |t| (128 * MIB)
            .saturating_sub(8 * MIB * t)
            .max(64 * MIB)),
        None
    );
}

#[test]
fn a_grow_the_host_cannot_serve_is_not_the_guests_fault() {
    let mut policy = policy(&["web"]);
    for _ in 0..15 {
        // Wants 64 MiB more; the host has 16 MiB free.
        let plan = policy.decide(&host(1, 16 * MIB), &[guest(1, "web", 192 * MIB, 128 * MIB)]);
        assert_eq!(flags(&plan), [], "{plan:?}");
    }
}

#[test]
fn an_uncooperative_domain_is_left_alone_then_retried() {
    let mut policy = policy(&["donor", "web"]);
    let hungry = |target| {
        let mut web = guest(2, "web", target, target);
        web.report.mem_free_kb = Some(MIB);
        web.mem_used_kb = Some(target - MIB);
        web
    };
    // The host is short: rex wants the donor's spare memory.
    let mut donor_target = 64 * MIB;
    let mut events = Vec::new();
    for t in 0..40 {
        let donor = guest(1, "donor", donor_target, 128 * MIB);
        let plan = policy.decide(&host(1, 8 * MIB), &[donor, hungry(128 * MIB)]);
        for (name, on) in flags(&plan) {
            events.push((t, name.to_string(), on));
        }
        if let Some((to, _)) = memory_of(&plan, "donor") {
            if !events.is_empty() && events.last().unwrap().2 {
                // While flagged, rex asks the donor for nothing.
                assert!(events.len() == 1 || to == 128 * MIB, "tick {t}: {plan:?}");
            }
            donor_target = to;
        }
    }
    // Flagged at 5, probation of three timeouts (15 ticks), then retried;
    // asked again, stuck again, flagged after another timeout.
    let ticks: Vec<(u64, bool)> = events.iter().map(|e| (e.0, e.2)).collect();
    assert_eq!(ticks[..2], [(5, true), (20, false)], "{events:?}");
    assert!(
        ticks.get(2).is_some_and(|&(t, on)| on && t > 20),
        "{events:?}"
    );
}

#[test]
fn what_growing_balloons_have_yet_to_take_is_not_handed_out_again() {
    let mut policy = policy(&["web", "db"]);
    // web is on its way from 128 to 192 MiB; the host shows 96 MiB free,
    // 64 of which web is about to take: 32 are left, the slush.
    let web = guest(1, "web", 192 * MIB, 128 * MIB);
    let mut db = guest(2, "db", 128 * MIB, 128 * MIB);
    db.report.mem_free_kb = Some(MIB);
    db.mem_used_kb = Some(127 * MIB);
    let plan = policy.decide(&host(1, 96 * MIB), &[web, db]);
    assert_eq!(memory_of(&plan, "db"), None, "{plan:?}");
}
