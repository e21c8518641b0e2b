//! `--metrics-listen [ADDR:]PORT`: the metrics served over HTTP from the
//! daemon's own poll loop, for a Prometheus server to scrape, beside or
//! instead of the `--metrics` file.
//!
//! `GET /metrics` answers the exposition of the last tick (HTTP/1.0-style:
//! one request a connection, then close). Clients are held to the limits
//! of the control socket's: a stalled or flooding scraper cannot hold up a
//! tick. A bare PORT listens on loopback only; another address must be
//! given explicitly.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::clients::{ClientTable, Limits, Protocol};

const LIMITS: Limits = Limits {
    max_clients: 16,
    timeout: Duration::from_secs(5),
    max_request: 8192,
    max_answer: 64 << 20,
};

/// The address `--metrics-listen` names: a bare port is loopback's.
pub fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = value
            .parse()
            .map_err(|_| format!("port {value} is out of range (1..65535)"))?;
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    value.parse().map_err(|_| {
        format!(
            "`{value}' is neither a port nor ADDRESS:PORT (e.g. 9101, 127.0.0.1:9101, [::1]:9101)"
        )
    })
}

/// HTTP requests end at their blank line.
struct Http;

impl Protocol<TcpStream, ()> for Http {
    fn name(&self) -> &'static str {
        "metrics listener"
    }

    fn request_end(&self, input: &[u8]) -> Option<usize> {
        let crlf = input.windows(4).position(|w| w == b"\r\n\r\n");
        let lf = input.windows(2).position(|w| w == b"\n\n");
        match (crlf, lf) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn too_long(&self, _limit: usize) -> Vec<u8> {
        response(
            431,
            "Request Header Fields Too Large",
            "text/plain",
            b"request too long\n",
        )
    }

    fn busy(&self) -> Vec<u8> {
        response(503, "Service Unavailable", "text/plain", b"busy\n")
    }

    fn meta(&self, _: &TcpStream) {}
}

/// The listening socket and its scrapers.
pub struct MetricsListener {
    listener: TcpListener,
    address: SocketAddr,
    clients: ClientTable<TcpStream, ()>,
}

impl MetricsListener {
    pub fn bind(address: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        Ok(Self {
            listener,
            address,
            clients: ClientTable::new(LIMITS),
        })
    }

    /// Where it listens (the port chosen, for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Appends the listener's and the clients' fds; lowers `timeout_ms` to
    /// the nearest client deadline.
    pub fn before_poll(&self, fds: &mut Vec<libc::pollfd>, timeout_ms: &mut i32) {
        self.clients
            .before_poll(self.listener.as_raw_fd(), fds, timeout_ms);
    }

    /// Serves what the poll found with `exposition`, the last tick's text.
    pub fn after_poll(&mut self, fds: &[libc::pollfd], exposition: &str) {
        self.clients
            .after_poll(&self.listener, fds, &Http, &mut |_, request| {
                answer(request, exposition)
            });
    }
}

/// The answer to one request.
fn answer(request: &[u8], exposition: &str) -> Vec<u8> {
    let line = request.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned();
    let mut words = line.split(' ');
    let (method, target, version) = (words.next(), words.next(), words.next());
    let version_ok = version.is_some_and(|v| v.starts_with("HTTP/1.")) && words.next().is_none();
    match (method, target) {
        _ if !version_ok => response(400, "Bad Request", "text/plain", b"bad request\n"),
        (Some("GET" | "HEAD"), Some("/metrics")) => {
            let mut head = response(
                200,
                "OK",
                "text/plain; version=0.0.4; charset=utf-8",
                exposition.as_bytes(),
            );
            if method == Some("HEAD") {
                let end = head.len() - exposition.len();
                head.truncate(end);
            }
            head
        }
        (Some("GET" | "HEAD"), Some(_)) => response(
            404,
            "Not Found",
            "text/plain",
            b"rex serves /metrics only\n",
        ),
        _ => response(405, "Method Not Allowed", "text/plain", b"GET /metrics\n"),
    }
}

fn response(code: u16, reason: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.0 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests;
