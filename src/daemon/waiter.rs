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
        let mut ms = until_deadline.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
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
            self.pending.extend(self.signals.take().into_iter().map(|signo| {
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
