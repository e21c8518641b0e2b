use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::xl::os::poll;

const EXPOSITION: &str = "# HELP xen_rex_ticks_total Ticks.\n# TYPE xen_rex_ticks_total counter\nxen_rex_ticks_total 3\n";

/// Runs the listener's loop until `done` clients have finished (10 s at most).
fn serve(listener: &mut MetricsListener, finished: &AtomicUsize, done: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while finished.load(Ordering::SeqCst) < done && Instant::now() < deadline {
        let mut fds = Vec::new();
        let mut timeout_ms = 20;
        listener.before_poll(&mut fds, &mut timeout_ms);
        poll(&mut fds, timeout_ms.min(20)).unwrap();
        listener.after_poll(&fds, EXPOSITION);
    }
    assert_eq!(
        finished.load(Ordering::SeqCst),
        done,
        "clients left waiting"
    );
}

/// A client thread sending `request` and reading the whole answer.
fn client(
    address: SocketAddr,
    request: Vec<u8>,
    finished: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(8)))
            .unwrap();
        let _ = stream.write_all(&request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        finished.fetch_add(1, Ordering::SeqCst);
        String::from_utf8_lossy(&answer).into_owned()
    })
}

#[test]
fn a_bare_port_is_loopback_and_other_addresses_are_taken_as_given() {
    assert_eq!(
        parse_listen("9101").unwrap(),
        "127.0.0.1:9101".parse().unwrap()
    );
    assert_eq!(
        parse_listen("[::1]:9101").unwrap(),
        "[::1]:9101".parse().unwrap()
    );
    assert_eq!(
        parse_listen("0.0.0.0:9101").unwrap(),
        "0.0.0.0:9101".parse().unwrap()
    );
    assert!(parse_listen("99999").unwrap_err().contains("out of range"));
    assert!(parse_listen("localhost")
        .unwrap_err()
        .contains("neither a port"));
    assert!(parse_listen("").is_err());
}

#[test]
fn metrics_are_served_while_a_stalled_client_waits_and_bad_requests_are_refused() {
    let mut listener = MetricsListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = listener.address();
    assert_ne!(address.port(), 0);
    let finished = Arc::new(AtomicUsize::new(0));
    // Connects and says nothing; it must not hold up the others.
    let stalled = TcpStream::connect(address).unwrap();
    let clients = [
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n".to_vec(),
        b"HEAD /metrics HTTP/1.0\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"POST /metrics HTTP/1.1\r\n\r\n".to_vec(),
        b"\x01\x02\xff garbage\n\n".to_vec(),
        vec![b'a'; 9000],
    ]
    .map(|request| client(address, request, finished.clone()));
    serve(&mut listener, &finished, clients.len());
    let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let get = &answers[0];
    assert!(get.starts_with("HTTP/1.0 200 OK\r\n"), "{get}");
    assert!(
        get.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{get}"
    );
    assert!(get.ends_with(&format!("\r\n\r\n{EXPOSITION}")), "{get}");
    assert!(get.contains(&format!("Content-Length: {}\r\n", EXPOSITION.len())));
    assert!(answers[1].starts_with("HTTP/1.0 200 OK") && answers[1].ends_with("\r\n\r\n"));
    assert!(answers[2].starts_with("HTTP/1.0 404 "), "{}", answers[2]);
    assert!(answers[3].starts_with("HTTP/1.0 405 "), "{}", answers[3]);
    assert!(answers[4].starts_with("HTTP/1.0 400 "), "{}", answers[4]);
    assert!(answers[5].starts_with("HTTP/1.0 431 "), "{}", answers[5]);
    drop(stalled);
}
