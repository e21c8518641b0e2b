use super::*;
use crate::engine::model::DomainState;
use crate::engine::testutil::{domain, snapshot, SEC};

#[test]
fn cpu_percent_of_one_pcpu_from_deltas() {
    let mut monitor = Monitor::new(1.0);
    let first = monitor.observe(&snapshot(0, vec![domain(1, "vm1", 0)]));
    assert!(!first[0].has_cpu_sample);
    assert_eq!(first[0].cpu_pct, 0.0);
    // 0.25 s of CPU in 1 s: 25% of one pCPU.
    let second = monitor.observe(&snapshot(SEC, vec![domain(1, "vm1", SEC / 4)]));
    assert!(second[0].has_cpu_sample);
    assert!((second[0].cpu_pct - 25.0).abs() < 1e-9);
}

#[test]
fn smoothing_weights_the_new_sample() {
    let mut monitor = Monitor::new(0.5);
    monitor.observe(&snapshot(0, vec![domain(1, "vm1", 0)]));
    let u = monitor.observe(&snapshot(SEC, vec![domain(1, "vm1", SEC)]));
    assert!(
        (u[0].cpu_pct - 100.0).abs() < 1e-9,
        "first delta is taken as is"
    );
    let u = monitor.observe(&snapshot(2 * SEC, vec![domain(1, "vm1", SEC)]));
    assert!(
        (u[0].cpu_pct - 50.0).abs() < 1e-9,
        "half of 0 and half of 100"
    );
    assert_eq!(u[0].cpu_pct_raw, 0.0);
}

#[test]
fn cpu_clamped_to_online_vcpus() {
    let mut monitor = Monitor::new(1.0);
    let mut two = domain(1, "vm1", 0);
    two.info.vcpus_online = 2;
    monitor.observe(&snapshot(0, vec![two.clone()]));
    two.info.cpu_time_ns = 5 * SEC;
    let u = monitor.observe(&snapshot(SEC, vec![two]));
    assert_eq!(u[0].cpu_pct, 200.0);
}

#[test]
fn sorted_by_domid_with_dom0_and_dead_domains_dropped() {
    let mut monitor = Monitor::new(1.0);
    let mut dying = domain(3, "vm3", 0);
    dying.info.state = DomainState::Dying;
    let u = monitor.observe(&snapshot(
        0,
        vec![domain(2, "vm2", 0), dying, domain(0, "Domain-0", 0)],
    ));
    let ids: Vec<DomId> = u.iter().map(|u| u.domid).collect();
    assert_eq!(ids, vec![0, 2]);
}

#[test]
fn vanished_domain_is_forgotten() {
    let mut monitor = Monitor::new(1.0);
    monitor.observe(&snapshot(0, vec![domain(1, "vm1", 0)]));
    monitor.observe(&snapshot(SEC, vec![]));
    let u = monitor.observe(&snapshot(2 * SEC, vec![domain(1, "vm1", SEC)]));
    assert!(!u[0].has_cpu_sample, "history was dropped when it vanished");
}

#[test]
fn reused_domid_resets_history() {
    let mut monitor = Monitor::new(0.5);
    monitor.observe(&snapshot(0, vec![domain(1, "vm1", 0)]));
    monitor.observe(&snapshot(SEC, vec![domain(1, "vm1", SEC)]));
    // Another domain took domid 1: new uuid, CPU time counted from zero.
    let mut newcomer = domain(1, "other", SEC / 10);
    newcomer.info.uuid = [9; 16];
    let u = monitor.observe(&snapshot(2 * SEC, vec![newcomer.clone()]));
    assert!(!u[0].has_cpu_sample);
    newcomer.info.cpu_time_ns += SEC / 10;
    let u = monitor.observe(&snapshot(3 * SEC, vec![newcomer]));
    assert!(
        (u[0].cpu_pct - 10.0).abs() < 1e-9,
        "no smoothing with the old domain's 100%"
    );
}

#[test]
fn cpu_time_going_backwards_resets_history() {
    let mut monitor = Monitor::new(1.0);
    monitor.observe(&snapshot(0, vec![domain(1, "vm1", 5 * SEC)]));
    let u = monitor.observe(&snapshot(SEC, vec![domain(1, "vm1", SEC)]));
    assert!(!u[0].has_cpu_sample);
    assert_eq!(u[0].cpu_pct, 0.0);
}

#[test]
fn time_not_advancing_keeps_previous_figures() {
    let mut monitor = Monitor::new(1.0);
    monitor.observe(&snapshot(0, vec![domain(1, "vm1", 0)]));
    monitor.observe(&snapshot(SEC, vec![domain(1, "vm1", SEC / 2)]));
    let u = monitor.observe(&snapshot(SEC, vec![domain(1, "vm1", SEC)]));
    assert!((u[0].cpu_pct - 50.0).abs() < 1e-9);
}

#[test]
fn mem_used_is_total_minus_free() {
    let mut monitor = Monitor::new(1.0);
    let mut guest = domain(1, "vm1", 0);
    guest.report.mem_total_kb = Some(60_000);
    guest.report.mem_free_kb = Some(10_000);
    let u = monitor.observe(&snapshot(0, vec![guest]));
    assert_eq!(u[0].mem_used_kb, Some(50_000));
}

/// The monitor takes the report as the host sanitised it; figures that do
/// not add up (free above total) still give no underflow.
#[test]
fn free_above_total_uses_nothing() {
    let mut monitor = Monitor::new(1.0);
    let mut guest = domain(1, "vm1", 0);
    guest.report.mem_total_kb = Some(10_000);
    guest.report.mem_free_kb = Some(60_000);
    let u = monitor.observe(&snapshot(0, vec![guest]));
    assert_eq!(u[0].mem_used_kb, Some(0));
}

#[test]
fn history_carries_across_listings_in_and_out_of_domid_order() {
    let mut monitor = Monitor::new(1.0);
    monitor.observe(&snapshot(0, vec![domain(1, "vm1", 0), domain(2, "vm2", 0)]));
    // Out of order, vm1 twice (the first wins): 50% and 20%.
    let u = monitor.observe(&snapshot(
        SEC,
        vec![
            domain(2, "vm2", SEC / 5),
            domain(1, "vm1", SEC / 2),
            domain(1, "vm1", SEC),
        ],
    ));
    let pct: Vec<(DomId, f64)> = u.iter().map(|u| (u.domid, u.cpu_pct)).collect();
    assert_eq!(pct, vec![(1, 50.0), (2, 20.0)]);
    // In order again: the deltas are from the second listing's figures.
    let u = monitor.observe(&snapshot(
        2 * SEC,
        vec![domain(1, "vm1", SEC), domain(2, "vm2", SEC / 5)],
    ));
    let pct: Vec<(DomId, f64)> = u.iter().map(|u| (u.domid, u.cpu_pct)).collect();
    assert_eq!(pct, vec![(1, 50.0), (2, 0.0)]);
    // And once more, built in the list kept from before.
    let u = monitor.observe(&snapshot(3 * SEC, vec![domain(2, "vm2", SEC)]));
    assert_eq!(u.len(), 1);
    assert!((u[0].cpu_pct - 80.0).abs() < 1e-9);
}

#[test]
fn a_renamed_domain_is_listed_by_its_new_name_and_keeps_its_history() {
    let mut monitor = Monitor::new(1.0);
    monitor.observe(&snapshot(0, vec![domain(1, "vm1", 0)]));
    // `xl rename vm1 web`: same domid and uuid.
    let u = monitor.observe(&snapshot(SEC, vec![domain(1, "web", SEC / 2)]));
    assert_eq!(&*u[0].name, "web");
    assert!(u[0].has_cpu_sample, "history kept across the rename");
    assert!((u[0].cpu_pct - 50.0).abs() < 1e-9);
    let u = monitor.observe(&snapshot(2 * SEC, vec![domain(1, "web", SEC)]));
    assert_eq!(&*u[0].name, "web");
}

#[test]
fn observing_into_a_spent_list_gives_what_a_fresh_one_does() {
    let ticks = |t: u64| {
        snapshot(
            t * SEC,
            vec![domain(1, "vm1", t * SEC / 4), domain(3, "vm3", 0)],
        )
    };
    let mut fresh = Monitor::new(0.5);
    let mut reusing = Monitor::new(0.5);
    // A list of another domain, with room for more than the ticks need.
    let mut spent = fresh.observe(&snapshot(0, vec![domain(7, "old", 0); 5]));
    for t in 0..3 {
        let expected = fresh.observe(&ticks(t));
        let capacity = spent.capacity();
        reusing.observe_into(&ticks(t), &mut spent);
        assert_eq!(spent, expected, "tick {t}");
        assert_eq!(spent.capacity(), capacity, "its memory is reused");
    }
}
