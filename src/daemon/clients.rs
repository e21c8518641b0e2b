//! Clients of the daemon's sockets (the control socket, `/metrics`): each
//! non-blocking, polled with libxl's fds, with a bounded request, a bounded
//! answer and a deadline, so that no client can hold up a tick.
//!
//! A client sends one request and reads one answer, then the daemon closes
//! the connection.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use crate::xl::os::send_nosignal;

/// What a table of clients allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Clients served at once; more are turned away.
    pub max_clients: usize,
    /// How long a client has to send its request and read the answer.
    pub timeout: Duration,
    /// The longest request read; a longer one is refused.
    pub max_request: usize,
    /// The largest answer sent (more is cut).
    pub max_answer: usize,
}

/// How a server reads and answers its clients' requests.
pub trait Protocol<S, M> {
    /// The server, as the debug log names it.
    fn name(&self) -> &'static str;
    /// The length of the request at the start of `input` once it is
    /// complete (without its terminator), or None while more must come.
    fn request_end(&self, input: &[u8]) -> Option<usize>;
    /// The answer to a request longer than the limit.
    fn too_long(&self, limit: usize) -> Vec<u8>;
    /// The answer to a client turned away because the table is full.
    fn busy(&self) -> Vec<u8>;
    /// What the server keeps of a new client beside its stream.
    fn meta(&self, stream: &S) -> M;
}

/// A non-blocking listening socket whose connections a table serves.
pub trait Listen: AsRawFd {
    type Stream: Read + AsRawFd;
    fn accept_stream(&self) -> io::Result<Self::Stream>;
    fn make_nonblocking(stream: &Self::Stream) -> io::Result<()>;
}

impl Listen for UnixListener {
    type Stream = UnixStream;
    fn accept_stream(&self) -> io::Result<UnixStream> {
        self.accept().map(|(stream, _)| stream)
    }
    fn make_nonblocking(stream: &UnixStream) -> io::Result<()> {
        stream.set_nonblocking(true)
    }
}

impl Listen for TcpListener {
    type Stream = TcpStream;
    fn accept_stream(&self) -> io::Result<TcpStream> {
        self.accept().map(|(stream, _)| stream)
    }
    fn make_nonblocking(stream: &TcpStream) -> io::Result<()> {
        stream.set_nonblocking(true)
    }
}

struct Client<S, M> {
    stream: S,
    meta: M,
    input: Vec<u8>,
    /// The answer, once the request is complete; sent from `sent` on.
    answer: Option<Vec<u8>>,
    sent: usize,
    deadline: Instant,
}

/// The clients of one listening socket (the socket itself is the
/// server's: it is passed in).
pub struct ClientTable<S, M> {
    limits: Limits,
    clients: Vec<Client<S, M>>,
}

impl<S: Read + AsRawFd, M> ClientTable<S, M> {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            clients: Vec::new(),
        }
    }

    /// Appends the listener's fd, then the clients' (in order), and lowers
    /// `timeout_ms` to the nearest client deadline.
    pub fn before_poll(&self, listener: RawFd, fds: &mut Vec<libc::pollfd>, timeout_ms: &mut i32) {
        fds.push(libc::pollfd {
            fd: listener,
            events: libc::POLLIN,
            revents: 0,
        });
        let now = Instant::now();
        for client in &self.clients {
            let events = if client.answer.is_some() {
                libc::POLLOUT
            } else {
                libc::POLLIN
            };
            fds.push(libc::pollfd {
                fd: client.stream.as_raw_fd(),
                events,
                revents: 0,
            });
            let left = client.deadline.saturating_duration_since(now);
            let ms = left.as_millis().min(i32::MAX as u128) as i32 + 1;
            if *timeout_ms < 0 || ms < *timeout_ms {
                *timeout_ms = ms;
            }
        }
    }

    /// Serves what the poll found (`fds` as [`ClientTable::before_poll`]
    /// appended them): reads requests and answers each complete one with
    /// `handle`, accepts new clients (turning away those over the limit),
    /// sends answers, and drops the clients that are done, gone or out of
    /// time.
    pub fn after_poll<L: Listen<Stream = S>>(
        &mut self,
        listener: &L,
        fds: &[libc::pollfd],
        protocol: &dyn Protocol<S, M>,
        handle: &mut dyn FnMut(&M, &[u8]) -> Vec<u8>,
    ) {
        let now = Instant::now();
        let max_request = self.limits.max_request;
        for (client, fd) in self.clients.iter_mut().zip(fds.get(1..).unwrap_or(&[])) {
            if fd.revents != 0 && client.answer.is_none() {
                client.answer = read_request(client, max_request, protocol, handle);
            }
        }
        if fds.first().is_some_and(|l| l.revents != 0) {
            self.accept(listener, protocol, now);
        }
        let max_answer = self.limits.max_answer;
        self.clients.retain_mut(|client| {
            if client.answer.is_some() && !send_answer(client, max_answer) {
                return false;
            }
            if now >= client.deadline {
                log::debug!("{}: a client dropped: out of time", protocol.name());
                return false;
            }
            true
        });
    }

    fn accept<L: Listen<Stream = S>>(
        &mut self,
        listener: &L,
        protocol: &dyn Protocol<S, M>,
        now: Instant,
    ) {
        loop {
            let stream = match listener.accept_stream() {
                Ok(stream) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!("{} accept: {e}", protocol.name());
                    return;
                }
            };
            if L::make_nonblocking(&stream).is_err() {
                continue;
            }
            if self.clients.len() >= self.limits.max_clients {
                let _ = send_nosignal(stream.as_raw_fd(), &protocol.busy());
                continue;
            }
            let meta = protocol.meta(&stream);
            self.clients.push(Client {
                stream,
                meta,
                input: Vec::new(),
                answer: None,
                sent: 0,
                deadline: now + self.limits.timeout,
            });
        }
    }
}

/// Reads what the client sent; its answer once the request is complete
/// (its end, or the end of its writes), or refused.
fn read_request<S: Read, M>(
    client: &mut Client<S, M>,
    max_request: usize,
    protocol: &dyn Protocol<S, M>,
    handle: &mut dyn FnMut(&M, &[u8]) -> Vec<u8>,
) -> Option<Vec<u8>> {
    let mut buf = [0u8; 1024];
    loop {
        match client.stream.read(&mut buf) {
            Ok(0) => {
                if client.input.is_empty() {
                    // Connected and hung up: nothing to answer.
                    return Some(Vec::new());
                }
                return Some(handle(&client.meta, &client.input));
            }
            Ok(n) => {
                client.input.extend_from_slice(&buf[..n]);
                if let Some(end) = protocol.request_end(&client.input) {
                    return Some(handle(&client.meta, &client.input[..end]));
                }
                if client.input.len() >= max_request {
                    return Some(protocol.too_long(max_request));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Some(Vec::new()),
        }
    }
}

/// Sends what it can of the answer: false when the client is done with
/// (all sent, or gone).
fn send_answer<S: AsRawFd, M>(client: &mut Client<S, M>, max_answer: usize) -> bool {
    let Some(answer) = &mut client.answer else {
        return true;
    };
    answer.truncate(max_answer);
    while client.sent < answer.len() {
        match send_nosignal(client.stream.as_raw_fd(), &answer[client.sent..]) {
            Ok(n) => client.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    false
}
