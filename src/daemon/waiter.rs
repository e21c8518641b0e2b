//! Waiting between ticks: poll(2) over libxl's fds, the signal pipe and the
//! next tick's deadline, whichever comes first. Independent of libxl, so it
//! is tested on any machine.

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use crate::xl::os::{poll, SignalPipe};

/// The signals the daemon handles.
pub const HANDLED_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRequest {
    /// SIGINT or SIGTERM: stop cleanly.
    Stop(libc::c_int),
    /// SIGHUP: reread the policy file.
    Reload,
}

/// Why [`Waiter::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The deadline passed: time for a tick.
    Deadline,
    Signal(SignalRequest),
    /// One of the caller's fds is ready, or the caller's own timeout
    /// (libxl's next timer) ran out first.
    Ready,
}

/// Owns the signal handlers (restored when dropped) and waits.
#[derive(Debug)]
pub struct Waiter {
    signals: SignalPipe,
    pending: VecDeque<SignalRequest>,
}

impl Waiter {
    /// Installs handlers for SIGINT, SIGTERM and SIGHUP.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            signals: SignalPipe::install(&HANDLED_SIGNALS)?,
            pending: VecDeque::new(),
        })
    }

    /// Waits until `deadline`, a signal, or readiness of one of `fds`
    /// (whose `revents` are then set), bounded also by `timeout_ms` when it
    /// is ≥ 0. Signals come first: one per call, in arrival order.
    pub fn wait(
        &mut self,
        fds: &mut Vec<libc::pollfd>,
        deadline: Instant,
        timeout_ms: i32,
    ) -> io::Result<Wake> {
        if let Some(request) = self.pending.pop_front() {
            return Ok(Wake::Signal(request));
        }
        let now = Instant::now();
        let until_deadline = deadline.saturating_duration_since(now);
        // Round up, so a wake-up is never a hair early and a busy loop.
        let mut ms = until_deadline
            .as_micros()
            .div_ceil(1000)
            .min(i32::MAX as u128) as i32;
        if timeout_ms >= 0 {
            ms = ms.min(timeout_ms);
        }
        fds.push(libc::pollfd {
            fd: self.signals.fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let result = poll(fds, ms);
        let signal_fd = fds.pop();
        result?;
        if signal_fd.is_some_and(|p| p.revents != 0) {
            self.pending
                .extend(self.signals.take().into_iter().map(|signo| {
                    if signo == libc::SIGHUP {
                        SignalRequest::Reload
                    } else {
                        SignalRequest::Stop(signo)
                    }
                }));
        }
        if let Some(request) = self.pending.pop_front() {
            return Ok(Wake::Signal(request));
        }
        if Instant::now() >= deadline {
            return Ok(Wake::Deadline);
        }
        Ok(Wake::Ready)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::{Mutex, MutexGuard};
    use std::time::Duration;

    use super::*;
    use crate::xl::os::{disposition, raise};

    /// Signal handlers are process-wide: tests that install them take turns.
    static SIGNALS: Mutex<()> = Mutex::new(());

    pub(crate) fn signal_lock() -> MutexGuard<'static, ()> {
        SIGNALS.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn returns_deadline_and_never_before_it() {
        let _lock = signal_lock();
        let mut waiter = Waiter::new().unwrap();
        let deadline = Instant::now() + Duration::from_millis(30);
        let wake = waiter.wait(&mut Vec::new(), deadline, -1).unwrap();
        assert_eq!(wake, Wake::Deadline);
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn a_shorter_caller_timeout_wakes_without_the_deadline() {
        let _lock = signal_lock();
        let mut waiter = Waiter::new().unwrap();
        let deadline = Instant::now() + Duration::from_secs(3600);
        assert_eq!(
            waiter.wait(&mut Vec::new(), deadline, 0).unwrap(),
            Wake::Ready
        );
    }

    #[test]
    fn a_ready_fd_wakes_with_its_revents_set() {
        let _lock = signal_lock();
        let mut waiter = Waiter::new().unwrap();
        let (mut tx, rx) = UnixStream::pair().unwrap();
        tx.write_all(b"x").unwrap();
        let mut fds = vec![libc::pollfd {
            fd: rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let deadline = Instant::now() + Duration::from_secs(3600);
        assert_eq!(waiter.wait(&mut fds, deadline, -1).unwrap(), Wake::Ready);
        assert_eq!(fds.len(), 1, "the signal fd is not left behind");
        assert_ne!(fds[0].revents & libc::POLLIN, 0);
    }

    #[test]
    fn signals_are_reported_in_order_and_handlers_restored() {
        let _lock = signal_lock();
        let before: Vec<_> = HANDLED_SIGNALS
            .iter()
            .map(|&s| disposition(s).unwrap())
            .collect();
        {
            let mut waiter = Waiter::new().unwrap();
            assert!(Waiter::new().is_err(), "one set of handlers at a time");
            raise(libc::SIGHUP).unwrap();
            raise(libc::SIGTERM).unwrap();
            raise(libc::SIGINT).unwrap();
            let far = Instant::now() + Duration::from_secs(3600);
            let mut fds = Vec::new();
            assert_eq!(
                waiter.wait(&mut fds, far, -1).unwrap(),
                Wake::Signal(SignalRequest::Reload)
            );
            assert_eq!(
                waiter.wait(&mut fds, far, -1).unwrap(),
                Wake::Signal(SignalRequest::Stop(libc::SIGTERM))
            );
            assert_eq!(
                waiter.wait(&mut fds, far, -1).unwrap(),
                Wake::Signal(SignalRequest::Stop(libc::SIGINT))
            );
            assert_eq!(
                waiter.wait(&mut fds, Instant::now(), -1).unwrap(),
                Wake::Deadline
            );
        }
        let after: Vec<_> = HANDLED_SIGNALS
            .iter()
            .map(|&s| disposition(s).unwrap())
            .collect();
        assert_eq!(before, after);
        // And a new waiter can be made once the old one is gone.
        drop(Waiter::new().unwrap());
    }
}
