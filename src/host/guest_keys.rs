//! The xenstore keys rex reads of each domain, read again only when they
//! changed.
//!
//! Polled, every tick costs a round trip to xenstored per key and domain,
//! almost all returning what the last tick saw. Watched (one watch on each
//! domain's `data` and one on its `memory` directory, as Qubes' qmemman
//! watches its guests' meminfo), a domain's keys are read only after
//! xenstored reported a write under them: with nothing changing, a tick
//! reads nothing. xenstored reports a path once as the watch is set, so a
//! read made before that is never trusted for long; a write rex makes
//! itself (a balloon target) marks the keys changed at once.
//!
//! Backend-independent: the libxl backend reads through [`Xenstore`]
//! (`crate::xl::xs`), tests and benchmarks through any [`KeyStore`], so the
//! requests counted there are those a Xen host gets.
//!
//! [`Xenstore`]: crate::xl::xs::Xenstore

use std::collections::{BTreeSet, HashMap};
use std::io;

use super::guest::{
    Heartbeat, Published, MEMINFO_FREE_KEY, MEMINFO_TOTAL_KEY, PERIOD_MS_KEY, RESPONSE_MS_KEY,
    SEQ_KEY, STATIC_MAX_KEY,
};
use crate::engine::{DomId, GuestReport, KiB};

/// Xen's balloon target of a domain, kB (written by the toolstack and rex).
pub const TARGET_KEY: &str = "memory/target";

/// How a write of rex's agent's counter ([`SEQ_KEY`]) ends.
const SEQ_PATH_END: &[u8] = b"/data/rex/seq";

/// Where keys are read from: xenstore, or a stand-in.
pub trait KeyStore {
    /// The bytes at `path`, `None` when it does not exist.
    fn read(&mut self, path: &str) -> io::Result<Option<Vec<u8>>>;
}

/// How rex learns that a domain's keys changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Read every tick (`--poll`, or when watches cannot be set).
    Poll,
    /// Read after a watch event only.
    Watch,
}

/// What the keys cost so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeyCounters {
    /// Reads sent to the store.
    pub reads: u64,
    /// Watch events received.
    pub events: u64,
}

/// The two watched directories of a domain.
pub fn watch_paths(domid: DomId) -> [String; 2] {
    [
        format!("/local/domain/{domid}/data"),
        format!("/local/domain/{domid}/memory"),
    ]
}

/// The keys of every domain seen, and whether each is known to be current.
#[derive(Debug)]
pub struct GuestKeys {
    mode: KeyMode,
    domains: HashMap<DomId, Entry>,
    /// Domains whose `data` changed since [`GuestKeys::take_changed`].
    changed: BTreeSet<DomId>,
    counters: KeyCounters,
}

#[derive(Debug, Default)]
struct Entry {
    uuid: [u8; 16],
    watched: bool,
    /// `published` is what the store holds: no event since it was read.
    data_current: bool,
    memory_current: bool,
    static_max: Option<Vec<u8>>,
    target: Option<Vec<u8>>,
    published: Published,
    heartbeat: Heartbeat,
    /// The report the last tick got (what a change is judged against).
    ticked: GuestReport,
}

impl GuestKeys {
    pub fn new(mode: KeyMode) -> Self {
        Self {
            mode,
            domains: HashMap::new(),
            changed: BTreeSet::new(),
            counters: KeyCounters::default(),
        }
    }

    pub fn mode(&self) -> KeyMode {
        self.mode
    }

    pub fn counters(&self) -> KeyCounters {
        self.counters
    }

    /// Falls back to polling (a watch could not be set or read): nothing
    /// cached is trusted from now on. Returns the domains that were
    /// watched, whose watches are to be removed (their events would
    /// otherwise pile up unread).
    pub fn poll_from_now(&mut self) -> Vec<DomId> {
        self.mode = KeyMode::Poll;
        let mut watched = Vec::new();
        for (&domid, entry) in &mut self.domains {
            if std::mem::take(&mut entry.watched) {
                watched.push(domid);
            }
        }
        self.invalidate_all();
        watched.sort_unstable();
        watched
    }

    /// Every domain's keys are read again (events may have been lost).
    pub fn invalidate_all(&mut self) {
        for entry in self.domains.values_mut() {
            entry.data_current = false;
            entry.memory_current = false;
        }
    }

    /// The domain's entry, afresh when the domid now names another domain.
    fn entry(domains: &mut HashMap<DomId, Entry>, domid: DomId, uuid: [u8; 16]) -> &mut Entry {
        let entry = domains.entry(domid).or_default();
        if entry.uuid != uuid {
            *entry = Entry {
                uuid,
                ..Entry::default()
            };
        }
        entry
    }

    /// The domain's `memory/static-max` and `memory/target`, as written.
    pub fn memory(
        &mut self,
        store: &mut impl KeyStore,
        domid: DomId,
        uuid: [u8; 16],
    ) -> (Option<&[u8]>, Option<&[u8]>) {
        let watching = self.mode == KeyMode::Watch;
        let entry = Self::entry(&mut self.domains, domid, uuid);
        if !entry.memory_current {
            entry.static_max = read_logged(store, domid, STATIC_MAX_KEY);
            entry.target = read_logged(store, domid, TARGET_KEY);
            self.counters.reads += 2;
            entry.memory_current = watching && entry.watched;
        }
        (entry.static_max.as_deref(), entry.target.as_deref())
    }

    /// What the guest published, as a tick sees it (and remembers, to
    /// judge later changes against). The domain's entry comes from
    /// [`GuestKeys::memory`], called for every domain of a list.
    pub fn report(
        &mut self,
        store: &mut impl KeyStore,
        domid: DomId,
        mem_max_kb: KiB,
        now_ns: u64,
    ) -> io::Result<GuestReport> {
        let report = self.current(store, domid, mem_max_kb, now_ns)?;
        if let Some(entry) = self.domains.get_mut(&domid) {
            entry.ticked = report;
        }
        Ok(report)
    }

    /// The report the last tick got and the one the store gives now (read
    /// if it changed), for a domain whose keys changed since.
    pub fn since_tick(
        &mut self,
        store: &mut impl KeyStore,
        domid: DomId,
        mem_max_kb: KiB,
        now_ns: u64,
    ) -> io::Result<Option<(GuestReport, GuestReport)>> {
        if !self.domains.contains_key(&domid) {
            return Ok(None);
        }
        let now = self.current(store, domid, mem_max_kb, now_ns)?;
        Ok(self.domains.get(&domid).map(|e| (e.ticked, now)))
    }

    fn current(
        &mut self,
        store: &mut impl KeyStore,
        domid: DomId,
        mem_max_kb: KiB,
        now_ns: u64,
    ) -> io::Result<GuestReport> {
        let watching = self.mode == KeyMode::Watch;
        let entry = self.domains.entry(domid).or_default();
        if !entry.data_current {
            let mut reads = 0;
            let mut read = |key: &str| {
                reads += 1;
                store.read(&format!("/local/domain/{domid}/{key}"))
            };
            let seq = read(SEQ_KEY);
            // rex's agent bumps its counter after writing its figures: the
            // same counter as last time means the same figures.
            let result = seq.and_then(|seq| {
                if seq.is_some() && seq == entry.published.seq {
                    return Ok(());
                }
                entry.published = Published {
                    free: read(MEMINFO_FREE_KEY)?,
                    total: read(MEMINFO_TOTAL_KEY)?,
                    response: read(RESPONSE_MS_KEY)?,
                    seq,
                    period_ms: read(PERIOD_MS_KEY)?,
                };
                Ok(())
            });
            self.counters.reads += reads;
            result?;
            entry.data_current = watching && entry.watched;
        }
        // A stale agent's values are ignored: rex neither grows nor shrinks
        // the guest on them.
        Ok(entry
            .published
            .report(&mut entry.heartbeat, domid, mem_max_kb, now_ns))
    }

    /// rex wrote the domain's target: its memory keys are read again.
    pub fn wrote_memory(&mut self, domid: DomId) {
        if let Some(entry) = self.domains.get_mut(&domid) {
            entry.memory_current = false;
        }
    }

    /// A watch event for `path`. Returns whether it was one of ours.
    pub fn event(&mut self, path: &[u8]) -> bool {
        self.counters.events += 1;
        let Some((domid, dir)) = parse_event_path(path) else {
            return false;
        };
        let Some(entry) = self.domains.get_mut(&domid).filter(|e| e.watched) else {
            return false;
        };
        match dir {
            Dir::Data => {
                entry.data_current = false;
                // rex's agent writes its counter last: its figures are
                // whole only then. Other tools' every write counts.
                if path.ends_with(SEQ_PATH_END) || entry.published.seq.is_none() {
                    self.changed.insert(domid);
                }
            }
            Dir::Memory => entry.memory_current = false,
        }
        true
    }

    /// Domains whose published values changed since the last call.
    pub fn take_changed(&mut self) -> Vec<DomId> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    /// Domains to set watches on (watch mode: those not watched yet).
    pub fn unwatched(&self) -> Vec<DomId> {
        if self.mode != KeyMode::Watch {
            return Vec::new();
        }
        let mut out: Vec<DomId> = self
            .domains
            .iter()
            .filter(|(_, e)| !e.watched)
            .map(|(&d, _)| d)
            .collect();
        out.sort_unstable();
        out
    }

    /// The domain's watches are set; what was read before is read again
    /// (xenstored's first event would say so too).
    pub fn set_watched(&mut self, domid: DomId) {
        if let Some(entry) = self.domains.get_mut(&domid) {
            entry.watched = true;
            entry.data_current = false;
            entry.memory_current = false;
        }
    }

    /// Forgets domains for which `keep(domid, uuid)` is false; returns the
    /// watched ones among them (their watches to remove).
    pub fn retain(&mut self, mut keep: impl FnMut(DomId, &[u8; 16]) -> bool) -> Vec<DomId> {
        let mut gone = Vec::new();
        self.domains.retain(|&domid, entry| {
            let kept = keep(domid, &entry.uuid);
            if !kept && entry.watched {
                gone.push(domid);
            }
            kept
        });
        for domid in &gone {
            self.changed.remove(domid);
        }
        gone.sort_unstable();
        gone
    }
}

fn read_logged(store: &mut impl KeyStore, domid: DomId, key: &str) -> Option<Vec<u8>> {
    store
        .read(&format!("/local/domain/{domid}/{key}"))
        .unwrap_or_else(|e| {
            log::debug!("domain {domid}: {key}: {e}");
            None
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Data,
    Memory,
}

/// `/local/domain/<domid>/data[/…]` or `…/memory[/…]`; anything else is
/// not an event of ours. Strict: xenstored reports the path written, and
/// a guest writes below its own `data`.
fn parse_event_path(path: &[u8]) -> Option<(DomId, Dir)> {
    let rest = path.strip_prefix(b"/local/domain/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (digits, rest) = (&rest[..slash], &rest[slash + 1..]);
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let domid: DomId = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let under =
        |dir: &[u8]| rest == dir || rest.strip_prefix(dir).is_some_and(|r| r.starts_with(b"/"));
    if under(b"data") {
        Some((domid, Dir::Data))
    } else if under(b"memory") {
        Some((domid, Dir::Memory))
    } else {
        None
    }
}

#[cfg(test)]
#[path = "guest_keys_tests.rs"]
mod tests;
