//! The event side of a host, for the daemon's poll loop: fds to poll, and
//! domains whose death was reported. Each backend implements it beside its
//! [`Host`](super::Host) implementation.

use super::HostError;
use crate::engine::DomId;

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
}
