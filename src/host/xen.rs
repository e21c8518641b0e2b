//! The one door to a real Xen host: [`open`] picks the backend once, for
//! `rex run` and for `xl rex` alike, and [`XenHost`] hands every call to it.

use std::path::PathBuf;

use super::exec::{ExecHost, XlCommand};
use super::guest_keys::KeyCounters;
use super::libxl::LibxlHost;
use super::{EventSource, Host, HostError};
use crate::engine::{DomId, DomainInfo, GuestReport, HostInfo, KiB, SchedParams, Scheduler};
use crate::xl::{BorrowedCtx, Ctx};

/// How rex reaches Xen.
#[derive(Debug)]
pub enum Backend<'a> {
    /// xl's own libxl context, handed in by `xl rex`: rex uses it and
    /// leaves it as it found it.
    XlContext(BorrowedCtx<'a>),
    /// rex's own libxl context, every change a libxl call (ReX's way).
    Libxl,
    /// rex's own libxl context for reads; every change a fork/exec of this
    /// `xl` (SRX's way, to measure against libxl's).
    Exec { xl: PathBuf },
}

/// A host reached through one of the [`Backend`]s.
pub enum XenHost<'a> {
    XlContext(LibxlHost<BorrowedCtx<'a>>),
    Libxl(LibxlHost<Ctx>),
    Exec(ExecHost<LibxlHost<Ctx>>),
}

impl std::fmt::Debug for XenHost<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::XlContext(_) => "XenHost::XlContext",
            Self::Libxl(_) => "XenHost::Libxl",
            Self::Exec(_) => "XenHost::Exec",
        })
    }
}

/// Opens the host through `backend`. Fails with
/// [`HostError::Unavailable`] when rex's own context cannot be had (no
/// hypervisor, not dom0).
pub fn open(backend: Backend<'_>) -> Result<XenHost<'_>, HostError> {
    Ok(match backend {
        Backend::XlContext(ctx) => XenHost::XlContext(LibxlHost::borrowed(ctx)),
        Backend::Libxl => XenHost::Libxl(LibxlHost::open()?),
        Backend::Exec { xl } => {
            XenHost::Exec(ExecHost::new(LibxlHost::open()?, XlCommand::new(xl)))
        }
    })
}

impl XenHost<'_> {
    /// Reads the guests' keys every tick instead of watching them.
    pub fn poll_keys(&mut self) {
        match self {
            XenHost::XlContext(h) => h.poll_keys(),
            XenHost::Libxl(h) => h.poll_keys(),
            XenHost::Exec(h) => h.reads_mut().poll_keys(),
        }
    }
}

/// `$body` with `$h` bound to the backend's host, whichever it is.
macro_rules! each {
    ($self:expr, $h:ident => $body:expr) => {
        match $self {
            XenHost::XlContext($h) => $body,
            XenHost::Libxl($h) => $body,
            XenHost::Exec($h) => $body,
        }
    };
}

impl Host for XenHost<'_> {
    fn now_ns(&mut self) -> u64 {
        each!(self, h => h.now_ns())
    }

    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, HostError> {
        each!(self, h => h.list_domains())
    }

    fn host_info(&mut self) -> Result<HostInfo, HostError> {
        each!(self, h => h.host_info())
    }

    fn sched_params(&mut self, domid: DomId) -> Result<SchedParams, HostError> {
        each!(self, h => h.sched_params(domid))
    }

    fn set_cap(&mut self, domid: DomId, cap: u32) -> Result<(), HostError> {
        each!(self, h => h.set_cap(domid, cap))
    }

    fn set_weight(&mut self, domid: DomId, weight: u32) -> Result<(), HostError> {
        each!(self, h => h.set_weight(domid, weight))
    }

    fn set_memory_target(&mut self, domid: DomId, target_kb: KiB) -> Result<(), HostError> {
        each!(self, h => h.set_memory_target(domid, target_kb))
    }

    fn set_uncooperative(&mut self, domid: DomId, uncooperative: bool) -> Result<(), HostError> {
        each!(self, h => h.set_uncooperative(domid, uncooperative))
    }

    fn domain_scheduler(&mut self, domid: DomId) -> Result<Option<Scheduler>, HostError> {
        each!(self, h => h.domain_scheduler(domid))
    }

    fn guest_report(&mut self, domid: DomId) -> Result<GuestReport, HostError> {
        each!(self, h => h.guest_report(domid))
    }
}

impl EventSource for XenHost<'_> {
    fn before_poll(
        &mut self,
        fds: &mut Vec<libc::pollfd>,
        timeout_ms: &mut i32,
    ) -> Result<(), HostError> {
        each!(self, h => h.before_poll(fds, timeout_ms))
    }

    fn after_poll(&mut self, fds: &[libc::pollfd]) {
        each!(self, h => h.after_poll(fds))
    }

    fn take_deaths(&mut self) -> Vec<DomId> {
        each!(self, h => h.take_deaths())
    }

    fn watch_deaths(&mut self, domids: &[DomId]) {
        each!(self, h => h.watch_deaths(domids))
    }

    fn take_changed(&mut self) -> Vec<DomId> {
        each!(self, h => h.take_changed())
    }

    fn since_tick(
        &mut self,
        domid: DomId,
    ) -> Result<Option<(GuestReport, GuestReport)>, HostError> {
        each!(self, h => h.since_tick(domid))
    }

    fn key_counters(&self) -> KeyCounters {
        each!(self, h => h.key_counters())
    }
}
