//! Clients of the daemon's sockets (the control socket, `/metrics`): each
//! non-blocking, polled with libxl's fds, with a bounded request, a bounded
//! answer and a deadline, so that no client can hold up a tick.
//!
//! A client sends one request and reads one answer, then the daemon closes
//! the connection.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
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
pub trait Protocol<M> {
    /// The length of the request at the start of `input` once it is
    /// complete (without its terminator), or None while more must come.
    fn request_end(&self, input: &[u8]) -> Option<usize>;
    /// The answer to a request longer than the limit.
    fn too_long(&self, limit: usize) -> Vec<u8>;
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

/// The clients of one listening socket.
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

    pub fn is_full(&self) -> bool {
        self.clients.len() >= self.limits.max_clients
    }

    /// Takes a new client (the caller turns one away when full).
    pub fn add(&mut self, stream: S, meta: M, now: Instant) {
        self.clients.push(Client {
            stream,
            meta,
            input: Vec::new(),
            answer: None,
            sent: 0,
            deadline: now + self.limits.timeout,
        });
    }

    /// Appends the clients' fds (in order) and lowers `timeout_ms` to the
    /// nearest deadline.
    pub fn before_poll(&self, fds: &mut Vec<libc::pollfd>, timeout_ms: &mut i32) {
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

    /// Reads what the poll found ready (`fds` as [`ClientTable::before_poll`]
    /// appended them), answers each complete request with `handle`.
    pub fn read_ready(
        &mut self,
        fds: &[libc::pollfd],
        protocol: &dyn Protocol<M>,
        handle: &mut dyn FnMut(&M, &[u8]) -> Vec<u8>,
    ) {
        let max_request = self.limits.max_request;
        for (client, fd) in self.clients.iter_mut().zip(fds) {
            if fd.revents != 0 && client.answer.is_none() {
                client.answer = read_request(client, max_request, protocol, handle);
            }
        }
    }

    /// Sends what can be sent of the answers and drops the clients that
    /// are done, gone or out of time (those are logged as `what`).
    pub fn send_and_expire(&mut self, now: Instant, what: &str) {
        let max_answer = self.limits.max_answer;
        self.clients.retain_mut(|client| {
            if client.answer.is_some() && !send_answer(client, max_answer) {
                return false;
            }
            if now >= client.deadline {
                log::debug!("{what} client dropped: out of time");
                return false;
            }
            true
        });
    }
}

/// Reads what the client sent; its answer once the request is complete
/// (its end, or the end of its writes), or refused.
fn read_request<S: Read, M>(
    client: &mut Client<S, M>,
    max_request: usize,
    protocol: &dyn Protocol<M>,
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
