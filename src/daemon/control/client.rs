//! The client's end: `rex status`, `rex sla`, `rex pause`, `rex resume`.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::Request;

/// Where the daemon listens unless told otherwise (`--control`).
pub const DEFAULT_SOCKET: &str = "/run/rex/rex.sock";
/// How long a client waits for the daemon's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: u64 = 64 << 20;

/// Why a request got no answer, or a refusal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no rex is running: nothing answers on {}", .0.display())]
    NotRunning(PathBuf),
    #[error("cannot reach rex on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("rex answered: {0}")]
    Refused(String),
    #[error("rex's answer on {} is not one of the protocol's", .0.display())]
    Garbled(PathBuf),
}

impl ClientError {
    /// The exit status of a client that got this error: 1 when rex refused
    /// the request, 3 when rex could not be asked.
    pub fn status(&self) -> u8 {
        match self {
            Self::Refused(_) => 1,
            _ => 3,
        }
    }
}

/// Sends `request` to the daemon on `path`; the body of its answer.
pub fn request(path: &Path, request: &Request) -> Result<String, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ClientError::NotRunning(path.to_path_buf()))
        }
        Err(e) => return Err(io(e)),
    };
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
    let line = format!("{}\n", request.to_line());
    stream.write_all(line.as_bytes()).map_err(io)?;
    stream.shutdown(Shutdown::Write).map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(io)?;
    let answer = String::from_utf8(answer).map_err(|_| ClientError::Garbled(path.into()))?;
    if let Some(body) = answer.strip_prefix("ok\n") {
        return Ok(body.to_string());
    }
    match answer.strip_prefix("error: ") {
        Some(message) => Err(ClientError::Refused(message.trim_end().to_string())),
        None => Err(ClientError::Garbled(path.to_path_buf())),
    }
}
