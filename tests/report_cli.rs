//! `rex report` as an administrator runs it on a daemon's `--json` log:
//! the summary, the plot, and a log it cannot read.

use std::path::PathBuf;
use std::process::{Command, Output};

fn rex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rex"))
        .args(args)
        .output()
        .expect("run rex")
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rex-report-cli-{}-{name}", std::process::id()))
}

/// A short run as `rex run --json --verbose` prints it: web misses its
/// 900 ms SLA for one tick and gets a higher cap.
const LOG: &str = r#"{"event":"start","t":0.0,"dry_run":false,"interval_ms":1000,"domains":[{"domid":1,"name":"web","cap":20,"mem_target_kb":131072,"sla_ms":900.0},{"domid":2,"name":"batch","cap":20,"mem_target_kb":131072,"sla_ms":null}]}
{"event":"usage","t":1.0,"domains":[{"domid":1,"name":"web","cpu_pct":19.8,"cap":20,"cap_used_pct":99.0,"mem_current_kb":131072,"mem_target_kb":131072,"mem_used_kb":null,"response_ms":1200.0},{"domid":2,"name":"batch","cpu_pct":5.0,"cap":20,"cap_used_pct":25.0,"mem_current_kb":131072,"mem_target_kb":131072,"mem_used_kb":null,"response_ms":null}]}
{"event":"reallocation","t":1.0,"domid":1,"name":"web","kind":"cap","from":20,"to":40,"reason":"SLA missed","reason_key":"sla_missed","dry_run":false,"elapsed_us":1500.0,"error":null}
{"event":"usage","t":2.0,"domains":[{"domid":1,"name":"web","cpu_pct":30.0,"cap":40,"cap_used_pct":75.0,"mem_current_kb":131072,"mem_target_kb":131072,"mem_used_kb":null,"response_ms":600.0},{"domid":2,"name":"batch","cpu_pct":5.0,"cap":20,"cap_used_pct":25.0,"mem_current_kb":131072,"mem_target_kb":131072,"mem_used_kb":null,"response_ms":null}]}
"#;

#[test]
fn a_run_is_summarized_and_drawn() {
    let log = temp("run.jsonl");
    let svg = temp("run.svg");
    std::fs::write(&log, LOG).unwrap();
    let out = rex(&[
        "report",
        log.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let web = stdout
        .lines()
        .find(|l| l.starts_with("web "))
        .expect(&stdout);
    assert_eq!(
        web.split_whitespace().collect::<Vec<_>>(),
        ["web", "900", "1.0", "1", "0"]
    );
    assert!(stdout.contains("sla_missed"), "{stdout}");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains("response time (ms)"));
    assert!(
        drawn.contains("\nweb\n") && drawn.contains("\nSLA\n"),
        "legend"
    );
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&svg);
}

#[test]
fn a_log_it_cannot_read_is_named_by_line_and_nothing_is_drawn() {
    let log = temp("bad.jsonl");
    let svg = temp("bad.svg");
    std::fs::write(&log, format!("{LOG}rex: not json\n")).unwrap();
    let out = rex(&[
        "report",
        log.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "rex report: {}:5: not a JSON event",
            log.display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(!svg.exists(), "no plot of a log it refused");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn standard_input_is_read_with_a_dash() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rex"))
        .args(["report", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(LOG.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("rex report -: 2.0 s, 2 managed"));
}
