//! `rex run` as a user meets it on a machine without Xen: config errors are
//! reported as such (file:line), and a good policy fails at once naming
//! /dev/xen/privcmd. Nothing hangs, nothing is changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GOOD: &str =
    "interval = 500\ndomains = [ \"name=vm1,cap_min=10,cap_max=60,mem_min=64M,mem_max=256M\" ]\n";

fn no_xen() -> bool {
    !Path::new("/dev/xen/privcmd").exists()
}

fn policy(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("rex-run-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn rex_run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rex"))
        .arg("run")
        .args(args)
        .output()
        .expect("running rex")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_syntax_error_is_reported_with_file_and_line() {
    let path = policy("bad.cfg", "interval = 500\ndomains = = [\n");
    let out = rex_run(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{}:2", path.display())),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("privcmd"),
        "config is checked before Xen"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_bad_value_is_reported_with_file_and_line() {
    let path = policy(
        "badvalue.cfg",
        "interval = 500\n\ndomains = [ \"name=vm1,cap_min=90,cap_max=10\" ]\n",
    );
    let out = rex_run(&["-c", path.to_str().unwrap(), "--actuator", "exec"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{}:3", path.display())),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_missing_policy_file_is_named() {
    let out = rex_run(&["-c", "/nonexistent/rex.cfg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/rex.cfg"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[ignore = "needs a machine without Xen; tests/run-all runs it there"]
fn without_xen_both_actuators_fail_at_once_naming_privcmd() {
    // On a Xen host this would start the daemon.
    assert!(no_xen(), "a Xen host");
    let path = policy("good.cfg", GOOD);
    for actuator in ["libxl", "exec"] {
        let out = rex_run(&[
            "-c",
            path.to_str().unwrap(),
            "--actuator",
            actuator,
            "--once",
        ]);
        assert_eq!(out.status.code(), Some(3), "{actuator}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("/dev/xen/privcmd missing"),
            "{actuator}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "nothing displayed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn bad_options_are_usage_errors() {
    let out = rex_run(&["--actuator", "ssh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ssh"), "{}", stderr(&out));
    let out = rex_run(&["--interval", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

fn rex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rex"))
        .args(args)
        .output()
        .expect("running rex")
}

#[test]
fn control_requests_without_a_daemon_say_so() {
    let socket = std::env::temp_dir().join(format!("rex-run-cli-{}-none.sock", std::process::id()));
    let socket = socket.to_str().unwrap();
    for args in [
        &["status", "--control", socket][..],
        &["status", "--json", "--control", socket],
        &["sla", "vm1", "cap=40", "--control", socket],
        &["pause", "--control", socket],
        &["resume", "--control", socket],
    ] {
        let out = rex(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("no rex is running: nothing answers on {socket}")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_bad_sla_change_is_refused_before_asking_the_daemon() {
    let out = rex(&["sla", "vm1", "cap=lots", "--control", "/nonexistent.sock"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rex sla: `cap=lots': not"),
        "{}",
        stderr(&out)
    );
}
