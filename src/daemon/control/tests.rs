//! The control socket against the daemon's loop on a scripted host: the
//! requests an administrator makes, and clients that misbehave. No Xen.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{request, ClientError};
use super::protocol::{Request, SlaChange};
use super::server::{ControlServer, MAX_CLIENTS};
use crate::daemon::tests::{args, events, policy_file, Script, ScriptedHost, Shared, POLICY};
use crate::daemon::waiter::tests::signal_lock;
use crate::daemon::{load, run, DaemonError, Stopped};
use crate::xl::os::raise;

fn socket_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rex-control-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A daemon running on a scripted host in a thread, with its control
/// socket at `socket`; stopped by SIGTERM when the test is done with it.
struct Daemon {
    out: Shared,
    thread: Option<thread::JoinHandle<Result<Stopped, DaemonError>>>,
    policy: PathBuf,
}

impl Daemon {
    fn start(name: &str, socket: &Path) -> Self {
        let policy = policy_file(name, POLICY);
        let mut daemon_args = args(policy.clone(), Some(20));
        daemon_args.control = Some(socket.to_path_buf());
        let config = load(&daemon_args).unwrap();
        let out = Shared::default();
        let sink = out.clone();
        let thread = thread::spawn(move || {
            run(
                ScriptedHost(Script::default()),
                config,
                &daemon_args,
                Box::new(sink),
            )
        });
        let started = Instant::now();
        while !socket.exists() {
            assert!(started.elapsed() < Duration::from_secs(10), "no socket");
            thread::sleep(Duration::from_millis(5));
        }
        Self {
            out,
            thread: Some(thread),
            policy,
        }
    }

    fn stop(mut self) -> Result<Stopped, DaemonError> {
        raise(libc::SIGTERM).unwrap();
        let result = self.thread.take().unwrap().join().unwrap();
        let _ = std::fs::remove_file(&self.policy);
        result
    }
}

fn status(socket: &Path) -> Value {
    let body = request(socket, &Request::Status { json: true }).unwrap();
    serde_json::from_str(&body).unwrap()
}

fn sla(socket: &Path, domain: &str, change: &str) -> Result<String, ClientError> {
    let request_line = Request::Sla {
        domain: domain.into(),
        change: SlaChange::parse(change).unwrap(),
    };
    request(socket, &request_line)
}

/// Waits until the daemon has made `n` more ticks than `from`.
fn ticks_after(socket: &Path, from: u64, n: u64) -> u64 {
    let started = Instant::now();
    loop {
        let ticks = status(socket)["ticks"].as_u64().unwrap();
        if ticks >= from + n {
            return ticks;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "ticks stopped");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The daemon's reallocation notices so far, as JSON.
fn reallocations(out: &Shared) -> Vec<Value> {
    String::from_utf8(out.0.lock().unwrap().clone())
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "reallocation")
        .collect()
}

#[test]
fn status_sla_and_pause_work_on_a_running_daemon_and_are_audited() {
    let _lock = signal_lock();
    let dir = socket_dir("requests");
    let socket = dir.join("rex.sock");
    let daemon = Daemon::start("control-requests", &socket);

    let s = status(&socket);
    assert_eq!(s["state"], "running");
    let vm1 = &s["domains"][0];
    assert_eq!(
        (vm1["name"].as_str(), vm1["cap"].as_u64()),
        (Some("vm1"), Some(30))
    );
    assert_eq!(vm1["class"], "best-effort");
    assert_eq!(
        s["domains"].as_array().unwrap().len(),
        1,
        "only managed domains"
    );
    let text = request(&socket, &Request::Status { json: false }).unwrap();
    assert!(
        text.contains("rex: running") && text.contains("vm1"),
        "{text}"
    );

    // A new level is taken at the next tick, and audited.
    let answer = sla(&socket, "vm1", "cap=40,sla_ms=500").unwrap();
    assert!(answer.contains("cap level 10% -> 40%"), "{answer}");
    let ticks = status(&socket)["ticks"].as_u64().unwrap();
    ticks_after(&socket, ticks, 2);
    assert!(
        reallocations(&daemon.out)
            .iter()
            .any(|r| r["name"] == "vm1" && r["to"] == 40 && r["kind"] == "cap"),
        "{:?}",
        reallocations(&daemon.out)
    );
    let s = status(&socket);
    assert_eq!(s["domains"][0]["sla_ms"], 500.0);
    assert_eq!(s["domains"][0]["level_cap"], 40);
    assert_eq!(s["domains"][0]["class"], "no response reported");

    // Refused changes change nothing.
    let e = sla(&socket, "vm1", "cap=90").unwrap_err().to_string();
    assert!(e.contains("outside its cap_min..cap_max 10..60"), "{e}");
    let e = sla(&socket, "vm9", "cap=20").unwrap_err().to_string();
    assert!(
        e.contains("does not manage a domain `vm9' (it manages: vm1)"),
        "{e}"
    );
    assert_eq!(status(&socket)["domains"][0]["level_cap"], 40);

    // Paused: ticks go on, changes do not.
    assert_eq!(request(&socket, &Request::Pause).unwrap(), "paused\n");
    let held = reallocations(&daemon.out).len();
    let ticks = status(&socket)["ticks"].as_u64().unwrap();
    sla(&socket, "vm1", "cap=50").unwrap();
    ticks_after(&socket, ticks, 5);
    assert_eq!(
        reallocations(&daemon.out).len(),
        held,
        "a change while paused"
    );
    assert_eq!(status(&socket)["state"], "paused");
    assert_eq!(request(&socket, &Request::Resume).unwrap(), "running\n");
    let ticks = status(&socket)["ticks"].as_u64().unwrap();
    ticks_after(&socket, ticks, 2);
    assert!(
        reallocations(&daemon.out)
            .iter()
            .any(|r| r["name"] == "vm1" && r["to"] == 50),
        "the level set while paused is taken after resume"
    );

    let out = daemon.out.clone();
    assert_eq!(daemon.stop().unwrap(), Stopped::Signal(libc::SIGTERM));
    let seen = events(&out);
    for event in ["sla_changed", "paused", "resumed"] {
        assert!(seen.iter().any(|e| e == event), "{event}: {seen:?}");
    }
    let audit = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let uid = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    assert!(
        audit.contains(&format!("\"uid\":{}", uid.unwrap())),
        "who is audited: {audit}"
    );
    assert!(!socket.exists(), "the socket is removed on the way out");
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends `bytes` and returns the answer (empty if the daemon hung up).
fn exchange(socket: &Path, bytes: &[u8]) -> String {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The daemon may answer and close before reading it all.
    let _ = stream.write_all(bytes);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn hostile_clients_neither_crash_nor_stall_the_daemon() {
    let _lock = signal_lock();
    let dir = socket_dir("hostile");
    let socket = dir.join("rex.sock");
    let daemon = Daemon::start("control-hostile", &socket);
    let ticks = status(&socket)["ticks"].as_u64().unwrap();

    // Stalled clients: connected, never a full request.
    let stalled: Vec<UnixStream> = (0..MAX_CLIENTS - 2)
        .map(|i| {
            let mut s = UnixStream::connect(&socket).unwrap();
            if i % 2 == 0 {
                s.write_all(b"stat").unwrap();
            }
            s
        })
        .collect();
    // The daemon goes on ticking and answering others meanwhile.
    let ticks = ticks_after(&socket, ticks, 3);
    assert!(exchange(&socket, b"\x00\xff garbage\n").starts_with("error: "));
    assert!(exchange(&socket, b"reboot now\n").contains("unknown request `reboot'"));
    let huge = vec![b'a'; 1 << 20];
    assert_eq!(
        exchange(&socket, &huge),
        "error: request longer than 4096 bytes\n"
    );
    // Connect and hang up at once.
    drop(UnixStream::connect(&socket).unwrap());

    // More clients than the daemon serves at once: the extra ones are told.
    let more: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    let busy = exchange(&socket, b"status\n");
    assert!(busy.starts_with("error: busy"), "{busy}");
    drop(more);
    // Stalled clients are dropped after their time, and the daemon is
    // whole: it answers, and it ticked all along.
    for mut s in stalled {
        let mut rest = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(
            s.read_to_end(&mut rest).unwrap(),
            0,
            "dropped, not answered"
        );
    }
    ticks_after(&socket, ticks, 3);
    assert_eq!(status(&socket)["state"], "running");
    assert_eq!(daemon.stop().unwrap(), Stopped::Signal(libc::SIGTERM));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_second_daemon_refuses_to_start_and_a_dead_ones_socket_is_replaced() {
    let _lock = signal_lock();
    let dir = socket_dir("lock");
    let socket = dir.join("rex.sock");
    let first = ControlServer::bind(&socket).unwrap();
    let policy = policy_file("control-lock", POLICY);
    let mut daemon_args = args(policy.clone(), Some(20));
    daemon_args.control = Some(socket.clone());
    daemon_args.once = true;
    let config = load(&daemon_args).unwrap();
    let host = ScriptedHost(Script::default());
    let out = Shared::default();
    let e = run(host, config.clone(), &daemon_args, Box::new(out.clone())).unwrap_err();
    assert!(
        out.0.lock().unwrap().is_empty(),
        "a daemon that did not start prints no summary"
    );
    assert!(
        e.to_string()
            .contains("another rex is running on this host"),
        "{e}"
    );
    assert_eq!(e.status(), 3);
    // A dry run changes nothing: it goes on without the socket.
    daemon_args.dry_run = true;
    let host = ScriptedHost(Script::default());
    let stopped = run(host, config, &daemon_args, Box::new(Shared::default())).unwrap();
    assert_eq!(stopped, Stopped::Once);
    assert!(socket.exists(), "the first daemon's socket is left alone");
    drop(first);
    assert!(!socket.exists());

    // A socket file left by a daemon that was killed (no one listens).
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let e = request(&socket, &Request::Pause).unwrap_err();
    assert!(e.to_string().contains("no rex is running"), "{e}");
    let second = ControlServer::bind(&socket).unwrap();
    drop(second);
    let _ = std::fs::remove_file(policy);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_socket_is_root_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = socket_dir("mode");
    let socket = dir.join("sub").join("rex.sock");
    let server = ControlServer::bind(&socket).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
