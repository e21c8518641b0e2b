//! `rex simulate` as a user runs it: the built-in experiment, JSON, SVG and
//! config errors.

use std::process::{Command, Output};

fn rex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rex"))
        .args(args)
        .output()
        .expect("run rex")
}

fn vm<'a>(json: &'a serde_json::Value, mode: &str, name: &str) -> &'a serde_json::Value {
    json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mode"] == mode)
        .and_then(|r| {
            r["vms"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
        })
        .unwrap_or_else(|| panic!("no {mode}/{name} in {json}"))
}

#[test]
fn builtin_experiment_vm2_meets_its_sla_only_with_rex() {
    let out = rex(&["simulate", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["scenario"], "paper-exp1");
    let with_rex = vm(&json, "rex", "vm2");
    let fixed = vm(&json, "static", "vm2");
    assert_eq!(with_rex["sla_ms"], 900.0);
    assert_eq!(with_rex["n"], 28);
    let mean_rex = with_rex["mean_ms"].as_f64().unwrap();
    let mean_static = fixed["mean_ms"].as_f64().unwrap();
    assert!(mean_rex < 900.0, "vm2 with rex: {mean_rex} ms");
    assert!(mean_static > 900.0, "vm2 static: {mean_static} ms");
    assert!(with_rex["reallocations"].as_u64().unwrap() > 0);
    assert_eq!(fixed["reallocations"], 0);
    let ci = with_rex["ci95_ms"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= mean_rex && mean_rex <= ci[1].as_f64().unwrap());
}

#[test]
fn human_output_shows_settings_notices_and_table() {
    let out = rex(&["simulate", "--repetitions", "2"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rex: managing 4 domain(s)"), "{text}");
    assert!(
        text.contains("rex: set vm2 (domain 2) cap 20% -> "),
        "{text}"
    );
    assert!(text.contains("vm2: SLA 900 ms met with rex"), "{text}");
    assert!(text.contains("MISSED with static"), "{text}");
}

#[test]
fn svg_plot_is_written() {
    let dir = std::env::temp_dir().join(format!("rex-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("exp1.svg");
    let out = rex(&[
        "simulate",
        "--repetitions",
        "1",
        "--json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"));
    assert!(text.contains("vm2") && text.contains("response time"));
    std::fs::remove_dir_all(&dir).ok();
}

fn scenario_error(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("rex-cfg-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.cfg"));
    std::fs::write(&path, text).unwrap();
    let out = rex(&["simulate", path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!out.status.success(), "{name}: accepted");
    assert!(
        out.stdout.is_empty(),
        "{name}: printed results despite the error"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_errors_name_file_and_line_and_exit_non_zero() {
    let err = scenario_error("syntax", "vms = [ \"name=a\" ]\nduration = = 5\n");
    assert!(err.contains("syntax.cfg:2"), "{err}");

    let err = scenario_error(
        "unknown",
        "vms = [ \"name=a\" ]\n\ndomains = [ \"name=ghost,cap_min=5\" ]\n",
    );
    assert!(
        err.contains("unknown.cfg:3") && err.contains("ghost"),
        "{err}"
    );

    // Floors add up to more than the one pCPU the guests have.
    let err = scenario_error(
        "floors",
        "guest_pcpus = 1\nvms = [ \"name=a\", \"name=b\" ]\n\
         domains = [ \"name=a,cap_min=60\", \"name=b,cap_min=60\" ]\n",
    );
    assert!(
        err.contains("floors.cfg:3: the cap floors (cap_min) add up to 120%"),
        "{err}"
    );

    // What the host cannot give is named at the line of the key at fault,
    // each problem at its own.
    let err = scenario_error(
        "held",
        "guest_pcpus = 1\ndom0_cpu = 80\nreserve_cpu = 40\nvms = [ \"name=a\" ]\n\n\
         domains = [ \"name=a,cap_min=10\" ]\n",
    );
    assert!(
        err.contains("held.cfg:2: dom0_cpu 80% + reserve_cpu 40% exceed")
            && err.contains("held.cfg:6: the cap floors"),
        "{err}"
    );
}

#[test]
fn default_runs_rex_and_the_three_baselines_side_by_side() {
    let out = rex(&["simulate", "--json", "--repetitions", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let modes: Vec<&str> = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["rex", "static", "threshold", "proportional"]);
    let vm2 = vm(&json, "rex", "vm2");
    for key in [
        "p95_ms",
        "violation_s",
        "recovery_s",
        "reversals_per_min",
        "cpu_above_guarantee_pct_s",
    ] {
        assert!(vm2[key].is_number(), "{key} missing: {vm2}");
    }
    // Collateral damage is reported for the VMs without an SLA, against static.
    assert!(vm(&json, "rex", "vm1")["collateral_pct"].is_number());
    assert_eq!(
        vm(&json, "static", "vm1")["collateral_pct"].as_f64(),
        Some(0.0)
    );
}

#[test]
fn policy_runs_one_law_and_rejects_unknown_names() {
    let out = rex(&[
        "simulate",
        "--json",
        "--repetitions",
        "1",
        "--policy",
        "threshold",
    ]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 1);
    assert_eq!(json["runs"][0]["mode"], "threshold");
    let out = rex(&["simulate", "--policy", "greedy"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown policy `greedy'"));
}

/// Runs rex with stdout on `/dev/full` (every write fails with ENOSPC) or a
/// pipe whose reader has gone (EPIPE).
fn rex_with_failing_stdout(args: &[&str], full: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rex"));
    cmd.args(args).stderr(std::process::Stdio::piped());
    if full {
        cmd.stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        );
        cmd.output().expect("run rex")
    } else {
        cmd.stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("run rex");
        drop(child.stdout.take());
        child.wait_with_output().expect("wait for rex")
    }
}

#[test]
fn a_stdout_that_cannot_be_written_ends_with_one_line_not_a_panic() {
    for full in [true, false] {
        for args in [&["simulate"][..], &["simulate", "--json"][..]] {
            let out = rex_with_failing_stdout(args, full);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?} full={full}: {err}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("rex simulate: stdout: "), "{args:?}: {err}");
        }
    }
}

#[test]
fn a_scenario_that_is_not_a_regular_file_or_has_a_nul_is_refused_with_its_place() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("simulate_cli");
    std::fs::create_dir_all(&dir).unwrap();
    let nul = dir.join("nul.cfg");
    std::fs::write(&nul, "name = \"x\"\nslush = \"32M\0x\"\n").unwrap();
    let out = rex(&["simulate", nul.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nul.cfg:2: contains a NUL byte"), "{err}");
    let out = rex(&["simulate", "/dev/zero"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/dev/zero: not a regular file"), "{err}");
}

#[test]
fn zero_repetitions_and_a_plot_into_a_missing_folder_are_refused_before_any_run() {
    let out = rex(&["simulate", "--repetitions", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("0 is not in 1..=10000"), "{err}");
    let out = rex(&["simulate", "--suite", "--svg", "/nonexistent/plot.svg"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim_end(),
        "rex simulate: --svg: /nonexistent: no such directory"
    );
    assert!(out.stdout.is_empty(), "it ran before refusing");
}
