//! What the Debian packages ship, checked without building them (that is
//! tests/build-debs, run by tests/run-all): the man pages cover every
//! subcommand, option and policy key, and the example policy is one rex
//! takes.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use rex::config::policy::{load_policy, DOMAIN_KEYS, POLICY_KEYS, ROW_KEYS};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(REPO).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The man pages `rex man` writes, by file name.
fn generated_pages() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("packaging-man");
    let _ = fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_rex"))
        .arg("man")
        .arg(&dir)
        .output()
        .expect("run rex man");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pages: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&path).unwrap())
        })
        .collect();
    pages.sort();
    pages
}

/// Long options (`--name`) in a `--help` text.
fn long_options(help: &str) -> BTreeSet<String> {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.split(['=', '<']).next().unwrap().to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn rex_man_writes_a_page_per_subcommand_with_every_option() {
    let pages = generated_pages();
    let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "rex-decompose.8",
            "rex-pause.8",
            "rex-report.8",
            "rex-resume.8",
            "rex-run.8",
            "rex-simulate.8",
            "rex-sla.8",
            "rex-status.8",
            "rex.8"
        ],
        "one page for rex and one per subcommand (not clap's help, not man)"
    );
    for (name, page) in &pages {
        assert!(
            page.starts_with(".ie") || page.contains(".TH "),
            "{name} is not roff"
        );
        let Some(sub) = name.strip_prefix("rex-").and_then(|n| n.strip_suffix(".8")) else {
            continue;
        };
        let help = Command::new(env!("CARGO_BIN_EXE_rex"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        let options = long_options(&help);
        assert!(options.len() >= 2, "{sub} --help lists options: {help}");
        for option in options {
            // roff escapes the dashes: \-\-name
            assert!(
                page.contains(&format!("\\-\\-{}", option.replace('-', "\\-"))),
                "{name} lacks --{option}"
            );
        }
    }
}

#[test]
fn rex_cfg_5_has_an_entry_for_every_policy_key() {
    let page = read("packaging/rex.cfg.5");
    for key in POLICY_KEYS {
        assert!(
            page.contains(&format!(".BI \"{key} = ")),
            "rex.cfg(5) lacks the host key {key}"
        );
    }
    for key in DOMAIN_KEYS.iter().chain(ROW_KEYS) {
        let entry = if *key == "force" {
            ".B force\n".to_owned()
        } else {
            format!(".BI {key}= ")
        };
        assert!(
            page.contains(&entry),
            "rex.cfg(5) lacks the entry key {key}"
        );
    }
}

#[test]
fn rex_agent_8_has_an_entry_for_every_option_of_its_usage() {
    let source = read("rex-agent/src/main.rs");
    let usage = source
        .lines()
        .find(|l| l.starts_with("const USAGE: &str = "))
        .expect("rex-agent's USAGE");
    let options = long_options(usage.trim_end_matches("\";"));
    assert!(
        options.contains("interval") && options.contains("once"),
        "{options:?}"
    );
    let page = read("packaging/rex-agent.8");
    for option in options {
        assert!(
            page.contains(&format!("\\-\\-{}", option.replace('-', "\\-"))),
            "rex-agent(8) lacks --{option}"
        );
    }
}

#[test]
fn the_example_policy_is_one_rex_takes_and_manages_nothing() {
    let policy =
        load_policy(&Path::new(REPO).join("packaging/rex.cfg")).expect("packaging/rex.cfg");
    assert!(
        policy.domains.is_empty(),
        "a fresh install must not manage domains nobody listed"
    );
    // The commented-out example entries are themselves valid.
    let example = read("packaging/rex.cfg");
    let uncommented: String = example
        .lines()
        .filter(|l| *l != "domains = [ ]")
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.starts_with("domains = [") || rest.trim_start().starts_with('"') => {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rex-example-uncommented.cfg");
    fs::write(&path, uncommented).unwrap();
    let policy = load_policy(&path).expect("the example entries of packaging/rex.cfg");
    let names: Vec<&str> = policy.domains.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["web", "batch"]);
}

#[test]
fn the_daemon_unit_starts_after_xen_and_is_installed_disabled() {
    let unit = read("packaging/debian/xen-rex.rex.service");
    for line in [
        "After=xen.service xenstored.service xen-init-dom0.service",
        "Restart=on-failure",
        "ExecStart=/usr/sbin/rex run --config /etc/xen/rex.cfg",
    ] {
        assert!(unit.lines().any(|l| l == line), "rex.service lacks {line}");
    }
    assert!(
        !unit.lines().any(|l| l.starts_with("PrivateDevices")),
        "PrivateDevices hides /dev/xen from libxl"
    );
    let rules = read("packaging/debian/rules");
    assert!(
        rules.contains("dh_installsystemd -pxen-rex --name=rex --no-enable --no-start"),
        "rex.service must be installed disabled"
    );
}
