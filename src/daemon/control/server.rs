//! The daemon's end of the control socket: a listening Unix socket and its
//! clients, all non-blocking and polled with libxl's fds, so no client can
//! hold up a tick.
//!
//! A lock file beside the socket (`PATH.lock`, flock) makes one daemon per
//! socket: a second one fails at once, and a socket left by a daemon that
//! was killed is replaced without a race between two new ones.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{self, MAX_REQUEST};
use crate::daemon::clients::{ClientTable, Limits, Protocol};
use crate::xl::os::{peer_credentials, try_lock_exclusive};

/// Clients served at once; more are turned away with an error line.
pub const MAX_CLIENTS: usize = 16;
/// How long a client has to send its request and read the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest answer kept for one client (a status of thousands of
/// domains fits many times over).
const MAX_ANSWER: usize = 16 << 20;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "another rex is running on this host: it holds {} (ask it with `rex status`, \
         or give this one another --control path)",
        .0.display()
    )]
    Busy(PathBuf),
    #[error("control socket {}: cannot {what}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Who sent a request, from the socket's peer credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: i32,
}

/// The listening socket, its lock and its clients.
pub struct ControlServer {
    path: PathBuf,
    listener: UnixListener,
    /// Identity of the socket file this server made (removed on drop only
    /// if it is still that file).
    inode: (u64, u64),
    _lock: File,
    clients: ClientTable<UnixStream, Option<Peer>>,
}

/// Control requests are lines.
struct Lines;

impl Protocol<UnixStream, Option<Peer>> for Lines {
    fn name(&self) -> &'static str {
        "control socket"
    }

    fn request_end(&self, input: &[u8]) -> Option<usize> {
        input.iter().position(|&b| b == b'\n')
    }

    fn too_long(&self, limit: usize) -> Vec<u8> {
        protocol::error(&format!("request longer than {limit} bytes")).into_bytes()
    }

    fn busy(&self) -> Vec<u8> {
        protocol::error("busy: too many control clients at once; try again").into_bytes()
    }

    fn meta(&self, stream: &UnixStream) -> Option<Peer> {
        peer_credentials(stream.as_raw_fd())
            .ok()
            .map(|(uid, pid)| Peer { uid, pid })
    }
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ControlError + 'a {
    move |source| ControlError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl ControlServer {
    /// Takes the lock and listens on `path` (its directory made 0700 if
    /// missing, the socket 0600).
    pub fn bind(path: &Path) -> Result<Self, ControlError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io_error("create its directory", path))?;
            }
        }
        let lock_path = lock_path(path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(io_error("open its lock file", path))?;
        if !try_lock_exclusive(lock.as_raw_fd()).map_err(io_error("lock", path))? {
            return Err(ControlError::Busy(path.to_path_buf()));
        }
        // With the lock held, a socket file left there is a dead daemon's.
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_dir() => {
                return Err(ControlError::Io {
                    what: "replace it",
                    path: path.to_path_buf(),
                    source: io::Error::new(io::ErrorKind::AlreadyExists, "a directory is there"),
                })
            }
            Ok(_) => fs::remove_file(path).map_err(io_error("remove a stale socket", path))?,
            Err(_) => {}
        }
        let listener = UnixListener::bind(path).map_err(io_error("listen", path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(io_error("set its mode", path))?;
        listener
            .set_nonblocking(true)
            .map_err(io_error("make it non-blocking", path))?;
        let meta = fs::symlink_metadata(path).map_err(io_error("stat", path))?;
        Ok(Self {
            path: path.to_path_buf(),
            listener,
            inode: (meta.dev(), meta.ino()),
            _lock: lock,
            clients: ClientTable::new(Limits {
                max_clients: MAX_CLIENTS,
                timeout: CLIENT_TIMEOUT,
                max_request: MAX_REQUEST,
                max_answer: MAX_ANSWER,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the listener's and the clients' fds, and lowers
    /// `timeout_ms` to the nearest client deadline.
    pub fn before_poll(&self, fds: &mut Vec<libc::pollfd>, timeout_ms: &mut i32) {
        self.clients
            .before_poll(self.listener.as_raw_fd(), fds, timeout_ms);
    }

    /// Serves what the poll found: accepts new clients, reads requests,
    /// answers each complete one with `handle`, sends answers, and drops
    /// clients that are done or out of time. `fds` are those appended by
    /// [`ControlServer::before_poll`].
    pub fn after_poll(
        &mut self,
        fds: &[libc::pollfd],
        handle: &mut dyn FnMut(Option<Peer>, &[u8]) -> String,
    ) {
        self.clients
            .after_poll(&self.listener, fds, &Lines, &mut |peer, line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                handle(*peer, line).into_bytes()
            });
    }
}

/// The lock file of a control socket.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        // Only the file this server made: never another daemon's.
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.inode {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}
