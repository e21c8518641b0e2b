//! The libxl backend: rex's own way (and ReX's), every read and write a
//! libxl call in process, guest-published values from xenstore.
//!
//! Generic over the context, so `rex run` uses its own [`Ctx`] and `xl rex`
//! uses xl's through [`BorrowedCtx`]; the code is the same.

use std::collections::HashMap;
use std::time::Instant;

use super::guest::{memory_ceiling_kb, parse_target_kb};
use super::guest_keys::{watch_paths, GuestKeys, KeyCounters, KeyMode, KeyStore};
use super::{EventSource, Host, HostError};
use crate::engine::{
    DomId, DomainInfo, DomainState, GuestReport, HostInfo, KiB, SchedParams, Scheduler,
};
use crate::xl::ops::{scheduler_name, SCHEDULER_CREDIT, SCHEDULER_CREDIT2};
use crate::xl::types::{DomainSchedParams, Physinfo};
use crate::xl::xs::Xenstore;
use crate::xl::{BorrowedCtx, Context, Ctx, EventCtx, Libxl, XlError};

/// The device libxl needs to talk to the hypervisor.
pub const PRIVCMD: &str = "/dev/xen/privcmd";

/// A host reached through libxl.
pub struct LibxlHost<C: Context> {
    // Declared before ctx so it closes first; independent of libxl anyway.
    xenstore: Option<Xenstore>,
    ctx: EventCtx<C>,
    epoch: Instant,
    /// What the last list said of each domain: its uuid, its name (None
    /// while libxl had none yet, e.g. during `xl create`; looked up once
    /// per domain, not once per tick) and its memory ceiling, for guest
    /// reads.
    known: HashMap<DomId, Known>,
    /// What each domain's xenstore keys last said, read again only when
    /// a watch reports a change (or every tick, polling).
    keys: GuestKeys,
    /// The xenstore fd's place among the fds of the last before_poll.
    watch_fd_at: Option<usize>,
    /// The guests' cpupool as the last list saw it; `None` before any list.
    guest_pool: Option<u32>,
    /// The host's memory, kB (0 until read): no ceiling is believed above it.
    host_total_kb: KiB,
}

/// A cap or weight as libxl's int.
fn sched_int(domid: DomId, what: &str, value: u32) -> Result<i32, HostError> {
    i32::try_from(value).map_err(|_| HostError::SetSched {
        domid,
        source: format!("{what} {value} out of range").into(),
    })
}

/// The cpupool the guests run in: that of the first domain other than
/// dom0, in (domid, cpupool) order; pool 0 without guests.
fn guest_pool(domains: impl IntoIterator<Item = (DomId, u32)>) -> u32 {
    domains
        .into_iter()
        .find(|&(domid, _)| domid != 0)
        .map_or(0, |(_, pool)| pool)
}

/// The probe: `Ok(false)` when /dev/xen/privcmd is absent (no hypervisor,
/// or not dom0), `Err` when its presence cannot be told.
pub fn is_available() -> Result<bool, HostError> {
    match std::fs::metadata(PRIVCMD) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(HostError::Unavailable(format!(
            "cannot tell whether {PRIVCMD} exists: {e}"
        ))),
    }
}

/// Turns a failed context allocation into [`HostError::Unavailable`],
/// naming the missing device when that is the cause.
pub fn unavailable(err: XlError) -> HostError {
    match is_available() {
        Ok(false) => HostError::Unavailable(format!(
            "{PRIVCMD} missing: not running in a Xen dom0 (or xen-privcmd is not loaded); {err}"
        )),
        _ => HostError::Unavailable(err.to_string()),
    }
}

impl LibxlHost<Ctx> {
    /// Allocates rex's own libxl context.
    pub fn open() -> Result<Self, HostError> {
        Ok(Self::new(Ctx::new().map_err(unavailable)?))
    }
}

impl<'a> LibxlHost<BorrowedCtx<'a>> {
    /// Uses xl's context; it is left as found when this is dropped.
    pub fn borrowed(ctx: BorrowedCtx<'a>) -> Self {
        Self::new(ctx)
    }
}

impl<C: Context> LibxlHost<C> {
    pub fn new(ctx: C) -> Self {
        let xenstore = match Xenstore::open() {
            Ok(xs) => Some(xs),
            Err(e) => {
                log::warn!("xenstore unavailable, guest reports disabled: {e}");
                None
            }
        };
        Self {
            xenstore,
            ctx: EventCtx::new(ctx),
            epoch: Instant::now(),
            known: HashMap::new(),
            keys: GuestKeys::new(KeyMode::Watch),
            watch_fd_at: None,
            guest_pool: None,
            host_total_kb: 0,
        }
    }

    /// Polls the guests' keys every tick instead of watching them
    /// (`--poll`, for comparison).
    pub fn poll_keys(&mut self) {
        self.stop_watching(None);
    }

    /// Polls from now on, removing every watch set (and `half_set`'s, a
    /// domain whose watches failed part way).
    fn stop_watching(&mut self, half_set: Option<DomId>) {
        let mut watched = self.keys.poll_from_now();
        watched.extend(half_set);
        self.unwatch(&watched);
    }

    fn unwatch(&self, domids: &[DomId]) {
        let Some(xs) = &self.xenstore else { return };
        for &domid in domids {
            for path in watch_paths(domid) {
                if let Err(e) = xs.unwatch(&path, WATCH_TOKEN) {
                    log::debug!("unwatch {path}: {e}");
                }
            }
        }
    }

    /// The domain's memory ceiling (the admin's `memory/static-max`, Xen's
    /// per-domain maximum when xenstore cannot say) and balloon target.
    fn memory_of(&mut self, d: &libxl_sys::libxl_dominfo) -> (KiB, KiB) {
        if self.host_total_kb == 0 {
            self.host_total_kb = self.ctx.physinfo().map(|p| total_mem_kb(&p)).unwrap_or(0);
        }
        let (static_max, target) = match &mut self.xenstore {
            Some(xs) => self.keys.memory(xs, d.domid, d.uuid.uuid),
            None => (None, None),
        };
        let target_kb = target
            .and_then(parse_target_kb)
            .or_else(|| self.ctx.memory_target_kb(d.domid).ok())
            .unwrap_or(d.current_memkb);
        let ceiling_kb = memory_ceiling_kb(static_max, d.max_memkb, self.host_total_kb);
        (ceiling_kb, target_kb)
    }

    /// A read of `domid`'s published values through `read` (a
    /// [`GuestKeys`] method), with the domain's ceiling and the time now;
    /// `None` without xenstore.
    fn with_keys<T>(
        &mut self,
        domid: DomId,
        read: impl FnOnce(&mut GuestKeys, &mut Xenstore, DomId, KiB, u64) -> std::io::Result<T>,
    ) -> Result<Option<T>, HostError> {
        let Some(xs) = &mut self.xenstore else {
            return Ok(None);
        };
        let mem_max_kb = self.known.get(&domid).map(|k| k.max_kb).unwrap_or(0);
        let now_ns = self.epoch.elapsed().as_nanos() as u64;
        read(&mut self.keys, xs, domid, mem_max_kb, now_ns)
            .map(Some)
            .map_err(|e| HostError::GuestReport {
                domid,
                source: boxed(e),
            })
    }

    /// Watches the keys of domains seen for the first time; unwatches
    /// those gone. A watch that cannot be set turns watching off.
    fn update_watches(&mut self, gone: &[DomId]) {
        self.unwatch(gone);
        let Some(xs) = &self.xenstore else { return };
        for domid in self.keys.unwatched() {
            let set = watch_paths(domid)
                .iter()
                .try_for_each(|path| xs.watch(path, WATCH_TOKEN).map_err(|e| (path.clone(), e)));
            match set {
                Ok(()) => self.keys.set_watched(domid),
                Err((path, e)) => {
                    log::warn!(
                        "cannot watch {path} in xenstore ({e}): the guests' keys are read every \
                         tick from now on"
                    );
                    self.stop_watching(Some(domid));
                    return;
                }
            }
        }
    }

    /// Takes the pending watch events (a bounded number per wake, so a
    /// guest writing in a loop cannot hold the loop here).
    fn drain_watch_events(&mut self) {
        let Some(xs) = &self.xenstore else { return };
        for _ in 0..MAX_EVENTS_PER_WAKE {
            match xs.next_event() {
                Ok(Some(path)) => {
                    self.keys.event(&path);
                }
                Ok(None) => return,
                Err(e) => {
                    log::warn!(
                        "reading xenstore watch events failed ({e}): the guests' keys are read \
                         every tick from now on"
                    );
                    self.stop_watching(None);
                    return;
                }
            }
        }
    }

    /// One libxl call: fields left at their defaults keep the domain's
    /// values, as `xl sched-credit -c` does, so rex does not read first.
    /// The scheduler is the one libxl found at this tick's read, which
    /// spares libxl finding it again (a domain read, a cpupool read and the
    /// pool's name from xenstore); unknown (not read since the last list),
    /// libxl finds it. A domain moved to another pool in between is
    /// refused by Xen (another scheduler) and set at the next tick.
    fn set_sched(&mut self, domid: DomId, mut params: DomainSchedParams) -> Result<(), HostError> {
        if let Some(scheduler) = self.known.get(&domid).and_then(|k| k.scheduler) {
            params.set_scheduler(scheduler);
        }
        self.ctx
            .set_domain_sched_params(domid, &params)
            .map_err(|e| HostError::SetSched {
                domid,
                source: boxed(e),
            })
    }

    fn scheduler(&self, id: i32) -> Scheduler {
        match id {
            SCHEDULER_CREDIT => Scheduler::Credit,
            SCHEDULER_CREDIT2 => Scheduler::Credit2,
            other => Scheduler::Other(scheduler_name(other)),
        }
    }

    /// The domain's name. A name is reused from the last tick only for the
    /// same domain (same uuid: a domid can be reused), and only once libxl
    /// had one: a domain being built has no name yet, and caching a
    /// stand-in would hide it from its policy for good.
    fn name_of(&self, domid: DomId, uuid: &[u8; 16]) -> Option<String> {
        match self.known.get(&domid).and_then(|k| k.name_for(uuid)) {
            Some(name) => Some(name.to_string()),
            None => self.ctx.domain_name(domid),
        }
    }
}

/// The token of rex's watches (their paths say whose keys changed).
const WATCH_TOKEN: &str = "rex";

/// Watch events taken per wake of the poll loop at most.
const MAX_EVENTS_PER_WAKE: usize = 4096;

impl KeyStore for Xenstore {
    fn read(&mut self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        Xenstore::read(self, path)
    }
}

/// One domain as the last list saw it.
struct Known {
    uuid: [u8; 16],
    name: Option<String>,
    max_kb: KiB,
    cpupool: u32,
    /// The scheduler libxl found for the domain at this tick's read of
    /// its parameters, given back to libxl when setting them.
    scheduler: Option<i32>,
}

impl Known {
    /// The remembered name, if it is the same domain and it had one.
    fn name_for(&self, uuid: &[u8; 16]) -> Option<&str> {
        if &self.uuid == uuid {
            self.name.as_deref()
        } else {
            None
        }
    }
}

fn state_of(info: &libxl_sys::libxl_dominfo) -> DomainState {
    if info.dying {
        DomainState::Dying
    } else if info.shutdown {
        DomainState::Shutdown
    } else if info.paused {
        DomainState::Paused
    } else if info.blocked && !info.running {
        DomainState::Blocked
    } else {
        DomainState::Running
    }
}

/// The host's memory, kB. Xen pages are 4 KiB on every architecture libxl
/// supports here.
fn total_mem_kb(phys: &Physinfo) -> KiB {
    phys.total_pages() * 4
}

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> super::BoxError {
    Box::new(e)
}

/// squeezed's flag for a domain whose balloon does not follow its target,
/// under the domain's xenstore path (dom0-owned: the guest can read it).
pub const UNCOOPERATIVE_KEY: &str = "memory/uncooperative";

impl<C: Context> Host for LibxlHost<C> {
    fn now_ns(&mut self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, HostError> {
        let list = self
            .ctx
            .list_domains()
            .map_err(|e| HostError::ListDomains(boxed(e)))?;
        let mut out = Vec::with_capacity(list.as_slice().len());
        let mut known = HashMap::with_capacity(out.capacity());
        for d in list.as_slice() {
            let name = self.name_of(d.domid, &d.uuid.uuid);
            let (mem_max_kb, mem_target_kb) = self.memory_of(d);
            known.insert(
                d.domid,
                Known {
                    uuid: d.uuid.uuid,
                    name: name.clone(),
                    max_kb: mem_max_kb,
                    cpupool: d.cpupool,
                    scheduler: None,
                },
            );
            out.push(DomainInfo {
                domid: d.domid,
                name: name.unwrap_or_else(|| format!("domain-{}", d.domid)),
                uuid: d.uuid.uuid,
                vcpus_online: d.vcpu_online,
                cpu_time_ns: d.cpu_time,
                mem_current_kb: d.current_memkb,
                mem_target_kb,
                mem_max_kb,
                state: state_of(d),
            });
        }
        self.known = known;
        self.guest_pool = Some(guest_pool(
            list.as_slice().iter().map(|d| (d.domid, d.cpupool)),
        ));
        let known = &self.known;
        let gone = self
            .keys
            .retain(|domid, uuid| known.get(&domid).is_some_and(|k| &k.uuid == uuid));
        self.update_watches(&gone);
        Ok(out)
    }

    fn host_info(&mut self) -> Result<HostInfo, HostError> {
        let err = |e: XlError| HostError::HostInfo(boxed(e));
        let phys = self.ctx.physinfo().map_err(err)?;
        let free_mem_kb = self.ctx.free_memory_kb().map_err(err)?;
        // The guests' pool decides both the pCPUs and the scheduler; if it
        // cannot be read, fall back to the whole host and pool 0's scheduler.
        // From the last list (each tick makes one); the first host_info
        // (the policy's validation) comes before any, so it lists itself.
        let guest_pool = match self.guest_pool {
            Some(pool) => pool,
            None => {
                let domains = self
                    .ctx
                    .list_domains()
                    .map_err(|e| HostError::ListDomains(boxed(e)))?;
                guest_pool(domains.as_slice().iter().map(|d| (d.domid, d.cpupool)))
            }
        };
        let (guest_pcpus, scheduler) = match self.ctx.cpupool_info(guest_pool) {
            Ok(pool) if pool.cpu_count() > 0 => (pool.cpu_count(), pool.scheduler()),
            other => {
                if let Err(e) = other {
                    log::debug!("cpupool {guest_pool}: {e}; using all pCPUs");
                }
                (phys.nr_cpus(), self.ctx.default_scheduler().map_err(err)?)
            }
        };
        Ok(HostInfo {
            guest_pcpus,
            total_mem_kb: total_mem_kb(&phys),
            free_mem_kb,
            scheduler: self.scheduler(scheduler),
        })
    }

    fn sched_params(&mut self, domid: DomId) -> Result<SchedParams, HostError> {
        let params = self
            .ctx
            .domain_sched_params(domid)
            .map_err(|e| HostError::GetSched {
                domid,
                source: boxed(e),
            })?;
        if let Some(known) = self.known.get_mut(&domid) {
            known.scheduler = Some(params.scheduler());
        }
        Ok(SchedParams {
            weight: params.weight().max(0) as u32,
            cap: params.cap().max(0) as u32,
        })
    }

    fn set_cap(&mut self, domid: DomId, cap: u32) -> Result<(), HostError> {
        let mut params = DomainSchedParams::new();
        params.set_cap(sched_int(domid, "cap", cap)?);
        self.set_sched(domid, params)
    }

    fn set_weight(&mut self, domid: DomId, weight: u32) -> Result<(), HostError> {
        let mut params = DomainSchedParams::new();
        params.set_weight(sched_int(domid, "weight", weight)?);
        self.set_sched(domid, params)
    }

    fn set_memory_target(&mut self, domid: DomId, target_kb: KiB) -> Result<(), HostError> {
        // Read back next tick, whatever libxl managed to write.
        self.keys.wrote_memory(domid);
        self.ctx
            .set_memory_target(domid, target_kb)
            .map_err(|e| HostError::SetMemory {
                domid,
                source: boxed(e),
            })
    }

    /// The scheduler of the domain's own cpupool (from the last list), so
    /// a domain in another pool than the guests' is set with its own.
    fn domain_scheduler(&mut self, domid: DomId) -> Result<Option<Scheduler>, HostError> {
        let Some(pool) = self.known.get(&domid).map(|k| k.cpupool) else {
            return Ok(None);
        };
        match self.ctx.cpupool_info(pool) {
            Ok(info) => Ok(Some(self.scheduler(info.scheduler()))),
            Err(e) => {
                log::debug!("cpupool {pool} of domain {domid}: {e}; using the guests' scheduler");
                Ok(None)
            }
        }
    }

    fn set_uncooperative(&mut self, domid: DomId, uncooperative: bool) -> Result<(), HostError> {
        let Some(xs) = &self.xenstore else {
            return Ok(());
        };
        let path = format!("/local/domain/{domid}/{UNCOOPERATIVE_KEY}");
        let result = if uncooperative {
            xs.write(&path, b"1")
        } else {
            xs.remove(&path)
        };
        result.map_err(|e| HostError::SetFlag {
            domid,
            source: boxed(e),
        })
    }

    fn guest_report(&mut self, domid: DomId) -> Result<GuestReport, HostError> {
        self.with_keys(domid, GuestKeys::report)
            .map(Option::unwrap_or_default)
    }
}

impl<C: Context> EventSource for LibxlHost<C> {
    fn before_poll(
        &mut self,
        fds: &mut Vec<libc::pollfd>,
        timeout_ms: &mut i32,
    ) -> Result<(), HostError> {
        let start = fds.len();
        self.ctx
            .before_poll(fds, timeout_ms)
            .map_err(|e| HostError::Events(Box::new(e)))?;
        self.watch_fd_at = None;
        if self.keys.mode() == KeyMode::Watch {
            match self.xenstore.as_ref().map(Xenstore::fileno) {
                Some(Ok(fd)) => {
                    self.watch_fd_at = Some(fds.len() - start);
                    fds.push(libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
                Some(Err(e)) => {
                    log::warn!("no xenstore watch fd ({e}): the guests' keys are read every tick");
                    self.stop_watching(None);
                }
                None => {}
            }
        }
        Ok(())
    }

    fn after_poll(&mut self, fds: &[libc::pollfd]) {
        let libxl_fds = self.watch_fd_at.unwrap_or(fds.len()).min(fds.len());
        self.ctx.after_poll(&fds[..libxl_fds]);
        if let Some(watch) = self.watch_fd_at.and_then(|at| fds.get(at)) {
            if watch.revents != 0 {
                self.drain_watch_events();
            }
        }
    }

    fn take_changed(&mut self) -> Vec<DomId> {
        self.keys.take_changed()
    }

    fn since_tick(
        &mut self,
        domid: DomId,
    ) -> Result<Option<(GuestReport, GuestReport)>, HostError> {
        self.with_keys(domid, GuestKeys::since_tick)
            .map(Option::flatten)
    }

    fn key_counters(&self) -> KeyCounters {
        self.keys.counters()
    }

    fn take_deaths(&mut self) -> Vec<DomId> {
        self.ctx.drain_deaths().unwrap_or_else(|e| {
            log::warn!("{e}");
            Vec::new()
        })
    }

    fn watch_deaths(&mut self, domids: &[DomId]) {
        if let Err(e) = self.ctx.watch_deaths(domids) {
            // A domain that died between the list and here: the next list
            // drops it anyway.
            log::debug!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guests_pool_is_that_of_the_first_guest() {
        assert_eq!(guest_pool([]), 0);
        assert_eq!(guest_pool([(0, 0)]), 0);
        assert_eq!(guest_pool([(0, 0), (3, 2), (5, 1)]), 2);
    }

    #[test]
    fn a_name_is_remembered_only_for_the_same_domain_once_it_had_one() {
        let known = Known {
            uuid: [1; 16],
            name: Some("vm5".into()),
            max_kb: 0,
            cpupool: 0,
            scheduler: None,
        };
        assert_eq!(known.name_for(&[1; 16]), Some("vm5"));
        // domid reused by another domain: ask libxl again
        assert_eq!(known.name_for(&[2; 16]), None);
        // seen while `xl create` had not named it yet: ask libxl again
        let unnamed = Known {
            name: None,
            ..known
        };
        assert_eq!(unnamed.name_for(&[1; 16]), None);
    }

    #[test]
    #[ignore = "needs a machine without Xen; tests/run-all runs it there"]
    fn without_a_hypervisor_open_is_unavailable_and_names_privcmd() {
        assert!(!std::path::Path::new(PRIVCMD).exists(), "a Xen host");
        assert!(!is_available().unwrap());
        let err = LibxlHost::open().err().expect("no hypervisor here");
        let text = err.to_string();
        assert!(matches!(err, HostError::Unavailable(_)), "{text}");
        assert!(text.contains("/dev/xen/privcmd missing"), "{text}");
        assert!(text.contains("libxl_ctx_alloc failed"), "{text}");
    }
}
