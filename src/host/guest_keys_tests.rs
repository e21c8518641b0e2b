use std::collections::HashMap;

use super::*;

const SEC: u64 = 1_000_000_000;
const UUID: [u8; 16] = [7; 16];

/// xenstore as a map, counting reads.
#[derive(Default)]
struct FakeStore {
    keys: HashMap<String, Vec<u8>>,
    reads: u64,
    fail: bool,
}

impl FakeStore {
    fn set(&mut self, domid: DomId, key: &str, value: &str) {
        self.keys.insert(
            format!("/local/domain/{domid}/{key}"),
            value.as_bytes().to_vec(),
        );
    }

    /// What rex's agent writes: figures, then its counter.
    fn publish(&mut self, domid: DomId, free_kb: u64, seq: u64) {
        self.set(domid, MEMINFO_TOTAL_KEY, "100000");
        self.set(domid, MEMINFO_FREE_KEY, &free_kb.to_string());
        self.set(domid, SEQ_KEY, &seq.to_string());
    }
}

impl KeyStore for FakeStore {
    fn read(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.reads += 1;
        if self.fail {
            return Err(io::Error::other("xenstored went away"));
        }
        Ok(self.keys.get(path).cloned())
    }
}

/// One tick's reads of one domain, as the libxl backend makes them.
fn tick(keys: &mut GuestKeys, store: &mut FakeStore, domid: DomId, now_ns: u64) -> GuestReport {
    keys.memory(store, domid, UUID);
    keys.report(store, domid, 1 << 20, now_ns).unwrap()
}

fn watched(store: &mut FakeStore, domid: DomId) -> GuestKeys {
    let mut keys = GuestKeys::new(KeyMode::Watch);
    keys.memory(store, domid, UUID);
    for d in keys.unwatched() {
        keys.set_watched(d);
    }
    keys
}

#[test]
fn polling_reads_every_key_every_tick() {
    let mut store = FakeStore::default();
    store.publish(3, 50_000, 1);
    let mut keys = GuestKeys::new(KeyMode::Poll);
    tick(&mut keys, &mut store, 3, 0);
    let first = store.reads;
    tick(&mut keys, &mut store, 3, SEC);
    // static-max, target and the counter; the figures not (same counter).
    assert_eq!(store.reads - first, 3);
    assert!(keys.unwatched().is_empty(), "polling sets no watch");
}

#[test]
fn watched_keys_are_not_read_again_until_an_event_says_they_changed() {
    let mut store = FakeStore::default();
    store.publish(3, 50_000, 1);
    let mut keys = watched(&mut store, 3);
    let report = tick(&mut keys, &mut store, 3, 0);
    assert_eq!(report.mem_free_kb, Some(50_000));
    let before = store.reads;
    for t in 1..10 {
        tick(&mut keys, &mut store, 3, t * SEC / 10);
    }
    assert_eq!(store.reads, before, "nothing changed, nothing read");
    assert_eq!(keys.counters().reads, store.reads);

    store.publish(3, 20_000, 2);
    assert!(keys.event(b"/local/domain/3/data/meminfo_free"));
    assert!(keys.event(b"/local/domain/3/data/rex/seq"));
    assert_eq!(keys.take_changed(), vec![3]);
    assert!(keys.take_changed().is_empty());
    let report = tick(&mut keys, &mut store, 3, SEC);
    assert_eq!(report.mem_free_kb, Some(20_000));
    // The counter, then the four figures; memory untouched.
    assert_eq!(store.reads - before, 5);
}

#[test]
fn a_memory_event_rereads_the_target_and_ceiling_only() {
    let mut store = FakeStore::default();
    store.set(3, TARGET_KEY, "131072");
    store.set(3, STATIC_MAX_KEY, "262144");
    let mut keys = watched(&mut store, 3);
    tick(&mut keys, &mut store, 3, 0);
    store.set(3, TARGET_KEY, "196608");
    let before = store.reads;
    assert_eq!(keys.memory(&mut store, 3, UUID).1, Some(&b"131072"[..]));
    assert!(keys.event(b"/local/domain/3/memory/target"));
    assert!(keys.take_changed().is_empty(), "not a guest's own value");
    assert_eq!(keys.memory(&mut store, 3, UUID).1, Some(&b"196608"[..]));
    assert_eq!(store.reads - before, 2);
    // And rex's own write needs no event to be seen.
    store.set(3, TARGET_KEY, "200000");
    keys.wrote_memory(3);
    assert_eq!(keys.memory(&mut store, 3, UUID).1, Some(&b"200000"[..]));
}

#[test]
fn an_agent_that_stops_goes_stale_without_a_read() {
    let mut store = FakeStore::default();
    store.publish(3, 1024, 1);
    let mut keys = watched(&mut store, 3);
    assert!(!tick(&mut keys, &mut store, 3, 0).stale);
    let before = store.reads;
    assert!(!tick(&mut keys, &mut store, 3, 4 * SEC).stale);
    assert!(
        tick(&mut keys, &mut store, 3, 6 * SEC).stale,
        "5 s without a new counter"
    );
    assert_eq!(store.reads, before);
}

#[test]
fn a_reused_domid_is_a_new_domain() {
    let mut store = FakeStore::default();
    store.publish(3, 50_000, 1);
    let mut keys = watched(&mut store, 3);
    tick(&mut keys, &mut store, 3, 0);
    let before = store.reads;
    keys.memory(&mut store, 3, [8; 16]);
    assert_eq!(store.reads - before, 2, "read afresh");
    assert_eq!(keys.unwatched(), vec![3], "and watched afresh");
    assert!(
        !keys.event(b"/local/domain/3/data/x"),
        "the old watch's events are not its"
    );
}

#[test]
fn only_a_domains_own_directories_are_events_of_ours() {
    let mut store = FakeStore::default();
    let mut keys = watched(&mut store, 3);
    for path in [
        &b"/local/domain/3/data"[..],
        b"/local/domain/3/data/rex/response_ms",
        b"/local/domain/3/memory",
    ] {
        assert!(keys.event(path), "{}", String::from_utf8_lossy(path));
    }
    for path in [
        &b"/local/domain/3/database"[..],
        b"/local/domain/3/device/vif/0",
        b"/local/domain/4/data/meminfo_free",
        b"/local/domain/x/data",
        b"/local/domain//data",
        b"/local/domain/003/memoryx",
        b"/local/domain/1234567/data",
        b"/vm/3/data",
        b"",
    ] {
        assert!(!keys.event(path), "{}", String::from_utf8_lossy(path));
    }
    assert_eq!(keys.counters().events, 12);
}

#[test]
fn since_tick_pairs_the_ticks_report_with_the_stores() {
    let mut store = FakeStore::default();
    store.publish(3, 50_000, 1);
    let mut keys = watched(&mut store, 3);
    tick(&mut keys, &mut store, 3, 0);
    store.publish(3, 1_000, 2);
    keys.event(b"/local/domain/3/data/rex/seq");
    let (ticked, now) = keys
        .since_tick(&mut store, 3, 1 << 20, SEC)
        .unwrap()
        .unwrap();
    assert_eq!(ticked.mem_free_kb, Some(50_000));
    assert_eq!(now.mem_free_kb, Some(1_000));
    // The tick that follows reads nothing more and remembers the new one.
    let before = store.reads;
    assert_eq!(tick(&mut keys, &mut store, 3, SEC).mem_free_kb, Some(1_000));
    assert_eq!(store.reads, before);
    assert!(keys
        .since_tick(&mut store, 9, 1 << 20, SEC)
        .unwrap()
        .is_none());
}

#[test]
fn a_failed_read_is_tried_again_and_falling_back_to_polling_reads_all() {
    let mut store = FakeStore::default();
    store.publish(3, 50_000, 1);
    let mut keys = watched(&mut store, 3);
    store.fail = true;
    keys.memory(&mut store, 3, UUID);
    assert!(keys.report(&mut store, 3, 1 << 20, 0).is_err());
    store.fail = false;
    assert_eq!(
        tick(&mut keys, &mut store, 3, SEC).mem_free_kb,
        Some(50_000)
    );
    assert_eq!(keys.poll_from_now(), vec![3], "its watches to remove");
    assert_eq!(keys.mode(), KeyMode::Poll);
    let before = store.reads;
    tick(&mut keys, &mut store, 3, 2 * SEC);
    assert_eq!(store.reads - before, 3);
    assert!(!keys.event(b"/local/domain/3/data/x"), "no watch any more");
}

#[test]
fn forgetting_domains_names_the_watched_ones() {
    let mut store = FakeStore::default();
    let mut keys = watched(&mut store, 3);
    keys.memory(&mut store, 5, UUID);
    keys.event(b"/local/domain/3/data/x");
    assert_eq!(keys.retain(|_, _| false), vec![3]);
    assert!(keys.take_changed().is_empty());
    assert!(keys.unwatched().is_empty());
}
