//! The event side of a host, for the daemon's poll loop: fds to poll, and
//! domains whose death was reported. Each backend implements it beside its
//! [`Host`](super::Host) implementation.

use super::guest_keys::KeyCounters;
use super::HostError;
use crate::engine::{DomId, GuestReport};

/// What the poll loop needs from a host besides [`Host`](super::Host).
pub trait EventSource {
    /// Appends the fds to poll and lowers `timeout_ms` (-1 = none) to the
    /// source's next timer.
    fn before_poll(
        &mut self,
        fds: &mut Vec<libc::pollfd>,
        timeout_ms: &mut i32,
    ) -> Result<(), HostError>;
    /// Hands back the fds appended by `before_poll`, with `revents` set.
    fn after_poll(&mut self, fds: &[libc::pollfd]);
    /// Domains reported dead since the last call.
    fn take_deaths(&mut self) -> Vec<DomId>;
    /// Watches exactly these domains for death.
    fn watch_deaths(&mut self, domids: &[DomId]);

    /// Domains whose published values changed since the last call (from
    /// xenstore watches; none from a source without them).
    fn take_changed(&mut self) -> Vec<DomId> {
        Vec::new()
    }

    /// For a domain whose values changed: the report the last tick got
    /// and the one it would get now (`None`: not a domain of the last
    /// list, or no such channel).
    fn since_tick(
        &mut self,
        _domid: DomId,
    ) -> Result<Option<(GuestReport, GuestReport)>, HostError> {
        Ok(None)
    }

    /// The xenstore reads and watch events of the guests' keys so far.
    fn key_counters(&self) -> KeyCounters {
        KeyCounters::default()
    }
}
