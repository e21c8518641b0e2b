//! `rex decompose` as a user runs it: the built binary on CSV files.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Writes `text` to a file of its own under Cargo's scratch directory.
fn csv(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("decompose_cli");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write CSV");
    path
}

fn rex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rex"))
        .args(args)
        .output()
        .expect("run rex")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const VM2_RUNS: &str = "\
domain,clients,cap,memory,response_ms
vm2,3,5,64M,120
vm2,3,10,64,40
vm2,40,10,64M,2100
vm2,40,20,128M,610
vm2,40,20,64M,880
vm2,40,30,64M,300
";

#[test]
fn least_resources_per_load_as_a_policy_line() {
    let path = csv("vm2.csv", VM2_RUNS);
    let out = rex(&["decompose", path.to_str().unwrap(), "--sla-ms", "900"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("\"domain=vm2,load=3,cap=5,memory=64M\""),
        "{text}"
    );
    assert!(
        text.contains("\"domain=vm2,load=40,cap=20,memory=64M\""),
        "{text}"
    );
    assert!(text.contains("decomposition = ["), "{text}");
    assert!(
        !text.contains("cap=30"),
        "a costlier passing run was chosen: {text}"
    );
}

#[test]
fn output_loads_as_a_policy_file() {
    let path = csv("vm2-policy.csv", VM2_RUNS);
    let out = rex(&["decompose", path.to_str().unwrap(), "--sla-ms", "900"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let policy = format!(
        "domains = [ \"name=vm2,sla_ms=900,cap_min=5,cap_max=80,mem_min=64M,mem_max=128M,load=40\" ]\n{}",
        stdout(&out)
    );
    let policy_path = csv("vm2.rex", &policy);
    let config =
        rex::config::policy::load_policy(&policy_path).unwrap_or_else(|e| panic!("{e}\n{policy}"));
    let vm2 = config.domain("vm2").expect("vm2 configured");
    assert_eq!(vm2.level.cap_pct, 20);
    assert_eq!(vm2.level.mem_kb, 64 * 1024);
}

#[test]
fn json_lists_levels_and_unmet_loads() {
    let path = csv(
        "unmet.csv",
        &format!("{VM2_RUNS}vm2,80,40,128M,1350\nvm2,80,20,64M,2600\n"),
    );
    let out = rex(&[
        "decompose",
        path.to_str().unwrap(),
        "--sla-ms",
        "900",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["sla_ms"], 900.0);
    let vm2 = &doc["domains"][0];
    assert_eq!(vm2["domain"], "vm2");
    let loads: Vec<u64> = vm2["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["load"].as_u64().unwrap())
        .collect();
    assert_eq!(loads, vec![3, 40]);
    assert_eq!(vm2["levels"][1]["cap"], 20);
    assert_eq!(vm2["levels"][1]["memory_kb"], 65536);
    assert_eq!(vm2["unmet"][0]["load"], 80);
    assert_eq!(vm2["unmet"][0]["fastest_response_ms"], 1350.0);
    assert!(
        stderr(&out).contains("load 80: no run met 900 ms"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn several_domains_and_a_domain_for_plain_files() {
    let mixed = csv(
        "mixed.csv",
        "domain,cap,memory,clients,response_ms\nvm1,5,64M,3,12\nvm2,20,64M,40,880\n",
    );
    let out = rex(&["decompose", mixed.to_str().unwrap(), "--sla-ms", "900"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("\"domain=vm1,load=3,cap=5,memory=64M\""),
        "{text}"
    );
    assert!(
        text.contains("\"domain=vm2,load=40,cap=20,memory=64M\""),
        "{text}"
    );

    let plain = csv(
        "plain.csv",
        "cap,memory,clients,response_ms\n20,1G,40,880\n",
    );
    let out = rex(&[
        "decompose",
        plain.to_str().unwrap(),
        "--sla-ms",
        "900",
        "--domain",
        "vm4",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"domain=vm4,load=40,cap=20,memory=1G\""),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_csv_names_file_line_and_column() {
    let path = csv(
        "bad.csv",
        "cap,memory,clients,response_ms\n20,64M,40,880\n20,64M,forty,880\n",
    );
    let out = rex(&["decompose", path.to_str().unwrap(), "--sla-ms", "900"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:3: column `clients'", path.display())),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "nothing printed on error");

    let path = csv("nohead.csv", "20,64M,40,880\n");
    let out = rex(&["decompose", path.to_str().unwrap(), "--sla-ms", "900"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(":1: header: no `cap' column"),
        "{}",
        stderr(&out)
    );

    let path = csv("nan.csv", "cap,memory,clients,response_ms\n20,64M,40,NaN\n");
    let out = rex(&["decompose", path.to_str().unwrap(), "--sla-ms", "900"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(":2: column `response_ms'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_target_that_is_not_a_positive_time_is_refused() {
    let path = csv("target.csv", VM2_RUNS);
    for target in ["--sla-ms=0", "--sla-ms=-900", "--sla-ms=NaN"] {
        let out = rex(&["decompose", path.to_str().unwrap(), target]);
        assert_eq!(out.status.code(), Some(1), "{target}");
        assert!(stderr(&out).contains("--sla-ms"), "{}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
}

#[test]
fn no_passing_run_at_all_is_an_error() {
    let path = csv(
        "slow.csv",
        "cap,memory,clients,response_ms\n20,64M,40,1880\n",
    );
    let out = rex(&["decompose", path.to_str().unwrap(), "--sla-ms", "900"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no run met the SLA"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_stdout_that_cannot_be_written_ends_with_one_line_not_a_panic() {
    let path = csv("vm2-full.csv", VM2_RUNS);
    let out = Command::new(env!("CARGO_BIN_EXE_rex"))
        .args(["decompose", path.to_str().unwrap(), "--sla-ms", "900"])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .expect("run rex");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim_end(),
        "rex decompose: stdout: No space left on device (os error 28)"
    );
}
