//! libxl's event machinery, driven from rex's own poll loop: the
//! `libxl_osevent_beforepoll` / `afterpoll` pair, `libxl_event_check`, and
//! domain-death watches.

use std::collections::BTreeMap;
use std::ptr;

use libxl_sys as sys;

use super::ctx::sealed::Sealed;
use super::ctx::{libxl_call, Context};
use super::error::{XlError, ERROR_BUFFERFULL, ERROR_NOT_READY};
use super::logger::LogSink;

// rex polls libc::pollfd; libxl declares its own struct pollfd. They are the
// same C struct; these checks make any mismatch a compile error.
const _: () = {
    assert!(std::mem::size_of::<libc::pollfd>() == std::mem::size_of::<sys::pollfd>());
    assert!(std::mem::align_of::<libc::pollfd>() == std::mem::align_of::<sys::pollfd>());
    assert!(std::mem::offset_of!(libc::pollfd, fd) == std::mem::offset_of!(sys::pollfd, fd));
    assert!(
        std::mem::offset_of!(libc::pollfd, events) == std::mem::offset_of!(sys::pollfd, events)
    );
    assert!(
        std::mem::offset_of!(libc::pollfd, revents) == std::mem::offset_of!(sys::pollfd, revents)
    );
};

fn now_timeval() -> sys::timeval {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    sys::timeval {
        tv_sec: now.as_secs() as _,
        tv_usec: now.subsec_micros() as _,
    }
}

/// A context plus the domain-death watches rex enabled on it. Every watch is
/// disabled in Drop, before the context itself goes (and, for xl's context,
/// so xl gets it back as it was).
pub struct EventCtx<C: Context> {
    // Declared first: Drop below disables them while ctx is still alive.
    deaths: BTreeMap<u32, *mut sys::libxl_evgen_domain_death>,
    ctx: C,
}

impl<C: Context> EventCtx<C> {
    pub fn new(ctx: C) -> Self {
        Self {
            deaths: BTreeMap::new(),
            ctx,
        }
    }

    /// Watches exactly `domids` for death: enables new ones, disables the
    /// rest. A domain that is already gone fails to enable; that error is
    /// returned after the others are done.
    pub fn watch_deaths(&mut self, domids: &[u32]) -> Result<(), XlError> {
        let stale: Vec<u32> = self
            .deaths
            .keys()
            .filter(|d| !domids.contains(d))
            .copied()
            .collect();
        for domid in stale {
            self.unwatch(domid);
        }
        let mut first_error = None;
        for &domid in domids {
            if self.deaths.contains_key(&domid) {
                continue;
            }
            let mut evgen: *mut sys::libxl_evgen_domain_death = ptr::null_mut();
            // SAFETY: evgen is an out-parameter, stored and disabled exactly
            // once (unwatch or Drop).
            let enabled = libxl_call!(
                self,
                sys::libxl_evenable_domain_death(ctx, domid, u64::from(domid), &mut evgen)
            );
            match enabled {
                Ok(_) if !evgen.is_null() => {
                    self.deaths.insert(domid, evgen);
                }
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn unwatch(&mut self, domid: u32) {
        if let Some(evgen) = self.deaths.remove(&domid) {
            // SAFETY: evgen came from libxl_evenable_domain_death on this
            // context and was just removed from the map: disabled once.
            libxl_call!(self, sys::libxl_evdisable_domain_death(ctx, evgen) -> ());
        }
    }

    /// Adds libxl's fds to `fds` (after what is there) and lowers
    /// `timeout_ms` to libxl's next timeout. Returns where libxl's fds start.
    pub fn before_poll(
        &mut self,
        fds: &mut Vec<libc::pollfd>,
        timeout_ms: &mut i32,
    ) -> Result<usize, XlError> {
        let start = fds.len();
        let mut room: i32 = 8;
        loop {
            fds.resize(
                start + room as usize,
                libc::pollfd {
                    fd: -1,
                    events: 0,
                    revents: 0,
                },
            );
            let mut nfds = room;
            // SAFETY: fds[start..] has room entries of a layout-identical
            // struct (checked above); nfds and timeout_ms are in/out
            // parameters.
            let polled = libxl_call!(
                self,
                sys::libxl_osevent_beforepoll(
                    ctx,
                    &mut nfds,
                    fds[start..].as_mut_ptr().cast::<sys::pollfd>(),
                    timeout_ms,
                    now_timeval(),
                )
            );
            match polled {
                // libxl said how many entries it needs: again, with as many.
                Err(e) if e.code == ERROR_BUFFERFULL && nfds > room => room = nfds,
                Err(e) => {
                    fds.truncate(start);
                    return Err(e);
                }
                Ok(_) => {
                    fds.truncate(start + nfds.max(0) as usize);
                    return Ok(start);
                }
            }
        }
    }

    /// Hands libxl the poll results for the fds it asked for.
    pub fn after_poll(&mut self, fds: &[libc::pollfd]) {
        // SAFETY: fds are the entries before_poll filled in (same layout),
        // with revents set by poll(); libxl only reads them.
        libxl_call!(
            self,
            sys::libxl_osevent_afterpoll(
                ctx,
                fds.len() as i32,
                fds.as_ptr().cast::<sys::pollfd>(),
                now_timeval(),
            ) -> ()
        );
    }

    /// Takes every pending event, frees each, and returns the domains whose
    /// death was reported. Their watches stay until the next
    /// [`watch_deaths`](Self::watch_deaths) drops them, as libxl requires a
    /// disable even after the death event.
    pub fn drain_deaths(&mut self) -> Result<Vec<u32>, XlError> {
        let mut dead = Vec::new();
        loop {
            let mut event: *mut sys::libxl_event = ptr::null_mut();
            // SAFETY: the context has no event_occurs hooks (rex never
            // registers any, nor does xl for its global context); event is
            // an out-parameter; NULL predicate = any event.
            let checked = libxl_call!(
                self,
                sys::libxl_event_check(ctx, &mut event, u64::MAX, None, ptr::null_mut())
            );
            match checked {
                Err(e) if e.code == ERROR_NOT_READY => return Ok(dead),
                other => other?,
            };
            if event.is_null() {
                return Ok(dead);
            }
            // SAFETY: on success event points at an event we own until freed.
            let (kind, domid) = unsafe { ((*event).type_, (*event).domid) };
            // SAFETY: freed once, with the context it came from.
            libxl_call!(self, sys::libxl_event_free(ctx, event) -> ());
            if kind == sys::libxl_event_type_LIBXL_EVENT_TYPE_DOMAIN_DEATH {
                dead.push(domid);
            } else {
                log::debug!("libxl event type {kind} for domain {domid} ignored");
            }
        }
    }
}

// Sound to implement: it hands out the wrapped context's pointer, which is
// live for as long as self.
impl<C: Context> Context for EventCtx<C> {}

impl<C: Context> Sealed for EventCtx<C> {
    fn as_raw(&self) -> *mut sys::libxl_ctx {
        self.ctx.as_raw()
    }

    fn log_sink(&self) -> Option<&LogSink> {
        self.ctx.log_sink()
    }
}

impl<C: Context> Drop for EventCtx<C> {
    fn drop(&mut self) {
        let domids: Vec<u32> = self.deaths.keys().copied().collect();
        for domid in domids {
            self.unwatch(domid);
        }
    }
}

impl<C: Context + std::fmt::Debug> std::fmt::Debug for EventCtx<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventCtx")
            .field("watched", &self.deaths.keys().collect::<Vec<_>>())
            .field("ctx", &self.ctx)
            .finish()
    }
}
