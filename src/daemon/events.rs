//! The event side of a host, for the poll loop: fds to poll, and domains
//! whose death libxl reported.

use super::DaemonError;
use crate::engine::DomId;
use crate::host::exec::ExecHost;
use crate::host::libxl::LibxlHost;
use crate::host::Host;
use crate::xl::Context;

/// What the poll loop needs from a host besides [`Host`].
pub trait EventSource {
    /// Appends the fds to poll and lowers `timeout_ms` (-1 = none) to the
    /// source's next timer.
    fn before_poll(
        &mut self,
        fds: &mut Vec<libc::pollfd>,
        timeout_ms: &mut i32,
    ) -> Result<(), DaemonError>;
    /// Hands back the fds appended by `before_poll`, with `revents` set.
    fn after_poll(&mut self, fds: &[libc::pollfd]);
    /// Domains reported dead since the last call.
    fn take_deaths(&mut self) -> Vec<DomId>;
    /// Watches exactly these domains for death.
    fn watch_deaths(&mut self, domids: &[DomId]);
}

impl<C: Context> EventSource for LibxlHost<C> {
    fn before_poll(
        &mut self,
        fds: &mut Vec<libc::pollfd>,
        timeout_ms: &mut i32,
    ) -> Result<(), DaemonError> {
        self.events()
            .before_poll(fds, timeout_ms)
            .map(drop)
            .map_err(DaemonError::Events)
    }

    fn after_poll(&mut self, fds: &[libc::pollfd]) {
        self.events().after_poll(fds);
    }

    fn take_deaths(&mut self) -> Vec<DomId> {
        self.events().drain_deaths().unwrap_or_else(|e| {
            log::warn!("{e}");
            Vec::new()
        })
    }

    fn watch_deaths(&mut self, domids: &[DomId]) {
        if let Err(e) = self.events().watch_deaths(domids) {
            // A domain that died between the list and here: the next list
            // drops it anyway.
            log::debug!("{e}");
        }
    }
}

impl<H: Host + EventSource> EventSource for ExecHost<H> {
    fn before_poll(
        &mut self,
        fds: &mut Vec<libc::pollfd>,
        timeout_ms: &mut i32,
    ) -> Result<(), DaemonError> {
        self.reads_mut().before_poll(fds, timeout_ms)
    }

    fn after_poll(&mut self, fds: &[libc::pollfd]) {
        self.reads_mut().after_poll(fds)
    }

    fn take_deaths(&mut self) -> Vec<DomId> {
        self.reads_mut().take_deaths()
    }

    fn watch_deaths(&mut self, domids: &[DomId]) {
        self.reads_mut().watch_deaths(domids)
    }
}
