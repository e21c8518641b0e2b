//! The OS services rex's poll loop needs besides libxl: poll(2), a
//! self-pipe that turns SIGINT/SIGTERM/SIGHUP into readable bytes, and for
//! the control socket a lock file, peer credentials and a send that cannot
//! raise SIGPIPE (inside xl, SIGPIPE's default would kill xl). Kept here
//! with the other `unsafe` code.
//!
//! libxl retries its own syscalls on EINTR, so a flag set by a signal
//! handler could go unseen until the next tick; a byte in a pipe that poll
//! watches cannot.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// poll(2) over `fds` for at most `timeout_ms` (-1 = no limit). EINTR is
/// returned as `Ok(0)`: the caller re-checks its deadline and signals.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a valid, exclusively borrowed array of fds.len() entries.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(rc as usize)
}

/// Write end of the active pipe, -1 when none; read by the handler.
static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: libc::c_int) {
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: errno location is thread-local; saved and restored around the
    // async-signal-safe write so the interrupted code sees its own errno.
    let saved = unsafe { *libc::__errno_location() };
    let byte = signo as u8;
    // SAFETY: write(2) is async-signal-safe; fd is the pipe's non-blocking
    // write end (a full pipe just drops the byte: one is enough).
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// Signal handlers that write to a pipe, installed for its lifetime. The
/// previous dispositions are restored in Drop (inside xl, xl's own). At most
/// one exists per process.
#[derive(Debug)]
pub struct SignalPipe {
    read: OwnedFd,
    write: OwnedFd,
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl SignalPipe {
    /// Installs handlers for `signals`. Fails with `AlreadyExists` while
    /// another SignalPipe is alive.
    pub fn install(signals: &[libc::c_int]) -> io::Result<Self> {
        let mut fds = [-1 as RawFd; 2];
        // SAFETY: fds is a 2-element out-array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded; each fd is fresh and owned only here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        if PIPE_WRITE_FD
            .compare_exchange(-1, write.as_raw_fd(), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "signal handlers are already installed",
            ));
        }
        let mut me = Self {
            read,
            write,
            previous: Vec::new(),
        };
        for &signo in signals {
            // SAFETY: an all-zero sigaction is a valid "no flags, empty
            // mask" value to fill in.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            // SAFETY: sa_mask is ours to initialise.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            // SAFETY: as above, an out-parameter for the old disposition.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: valid signal number from the caller, valid structs;
            // the handler only does async-signal-safe work.
            if unsafe { libc::sigaction(signo, &action, &mut old) } < 0 {
                return Err(io::Error::last_os_error()); // Drop restores the rest
            }
            me.previous.push((signo, old));
        }
        Ok(me)
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Signal numbers received since the last call, in arrival order.
    pub fn take(&self) -> Vec<libc::c_int> {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: buf is a valid writable buffer; the fd is non-blocking.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return got;
            }
            got.extend(buf[..n as usize].iter().map(|&b| libc::c_int::from(b)));
        }
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for (signo, old) in self.previous.iter().rev() {
            // SAFETY: restores exactly what sigaction reported before.
            unsafe { libc::sigaction(*signo, old, std::ptr::null_mut()) };
        }
        let _ = PIPE_WRITE_FD.compare_exchange(
            self.write.as_raw_fd(),
            -1,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

/// Sends `signo` to this process (for tests and for `--once` shutdowns).
pub fn raise(signo: libc::c_int) -> io::Result<()> {
    // SAFETY: raise(3) has no memory-safety preconditions.
    if unsafe { libc::raise(signo) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The current disposition of `signo`, as a handler address (SIG_DFL = 0).
pub fn disposition(signo: libc::c_int) -> io::Result<libc::sighandler_t> {
    // SAFETY: zeroed sigaction is a valid out-parameter.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: NULL new action = query only.
    if unsafe { libc::sigaction(signo, std::ptr::null(), &mut old) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old.sa_sigaction)
}

/// Takes an exclusive flock(2) on `fd` without waiting: `Ok(false)` when
/// another process holds it. Released when the fd is closed.
pub fn try_lock_exclusive(fd: RawFd) -> io::Result<bool> {
    // SAFETY: flock(2) on an fd the caller owns; no memory is passed.
    if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(false);
    }
    Err(err)
}

/// Who is at the other end of a Unix socket (SO_PEERCRED): uid and pid.
pub fn peer_credentials(fd: RawFd) -> io::Result<(u32, i32)> {
    // SAFETY: a zeroed ucred is a valid out-parameter of its exact size.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len point to live locals of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.uid, cred.pid))
}

/// send(2) with MSG_NOSIGNAL|MSG_DONTWAIT: a peer that went away is an
/// EPIPE error, never a SIGPIPE; a full buffer is `WouldBlock`.
pub fn send_nosignal(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a live slice of buf.len() bytes.
    let rc = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}
