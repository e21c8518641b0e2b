//! The `xl rex` patch series (xl-patch/RELEASE/) against tools/xl of the
//! Xen release this build links (libxl_sys::XEN_RELEASE: 4.17 on Debian 12,
//! 4.20 in tests/debian-chroot trixie).
//!
//! `xl-patch/build-xl.sh RELEASE` fetches Debian's Xen source of that
//! release (cached in target/xl-rex/download), applies the series with no
//! fuzz, and builds xl with upstream's flags and -Werror; it fails on any
//! warning. These tests
//! then run that xl. There is no hypervisor here, and xl allocates a libxl
//! context before it dispatches any command, so xl runs under
//! tests/xl-patch/fake_xen_host.c (LD_PRELOAD): a dummy context, and xl's
//! read of /etc/xen/xl.conf redirected to a file each test writes. rex
//! itself is replaced by tests/xl-patch/fake_librex.c, built against
//! include/rex.h with the ABI version each test needs; the real librex
//! (target/<profile>/deps/librex.so) runs only on paths that end before it
//! would use the dummy context (--help, a missing policy file).
//!
//! Needs network on the first run (about 5 MB) and, on a machine without
//! dpkg-dev, gcc, make, libxen-dev or libyajl-dev, root or sudo, so every
//! test that builds xl is ignored by default; tests/run-all runs them where
//! the machine allows (`cargo test --test xl_patch -- --ignored`) and reports
//! them as skipped where it does not. The checks of the series itself need
//! nothing and always run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The release whose xl these tests build: the one librex links.
const RELEASE: &str = libxl_sys::XEN_RELEASE;
/// What xl calls its global config in messages: XEN_CONFIG_DIR "/xl.conf".
const XL_CONF: &str = "/etc/xen/xl.conf";

struct Built {
    xl: PathBuf,
    build_log: String,
    dir: PathBuf,
}

/// Builds the patched xl and the test libraries once per test run.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let work = Path::new(REPO).join("target/xl-rex");
        let out = Command::new(Path::new(REPO).join("xl-patch/build-xl.sh"))
            .arg(RELEASE)
            .env("REX_XL_WORK", &work)
            .output()
            .expect("run xl-patch/build-xl.sh");
        assert!(
            out.status.success(),
            "xl-patch/build-xl.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let xl = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let work = work.join(RELEASE);
        let dir = work.join("test");
        fs::create_dir_all(&dir).unwrap();
        cc(&dir.join("fake_xen_host.so"), "fake_xen_host.c", &[]);
        let (major, minor) = abi_in_header();
        let abi = |major: u32, minor: u32| format!("-DFAKE_ABI={}u", (major << 16) | minor);
        cc(&dir.join("librex_same.so"), "fake_librex.c", &[]);
        cc(
            &dir.join("librex_newer_minor.so"),
            "fake_librex.c",
            &[&abi(major, minor + 1)],
        );
        cc(
            &dir.join("librex_next_major.so"),
            "fake_librex.c",
            &[&abi(major + 1, 0)],
        );
        cc(
            &dir.join("librex_no_abi.so"),
            "fake_librex.c",
            &["-DNO_ABI_SYMBOL"],
        );
        cc(
            &dir.join("librex_other_release.so"),
            "fake_librex.c",
            &[&format!("-DFAKE_XEN_RELEASE=\"{}\"", other_release())],
        );
        let build_log = fs::read_to_string(work.join("build.log")).unwrap();
        Built { xl, build_log, dir }
    })
}

/// A release that is not [`RELEASE`]: the other one with a series.
fn other_release() -> &'static str {
    if RELEASE == "4.17" {
        "4.20"
    } else {
        "4.17"
    }
}

/// Builds a test library; a fake librex claims [`RELEASE`] unless
/// `defines` say otherwise.
fn cc(output: &Path, source: &str, defines: &[&str]) {
    let mut defines = defines.to_vec();
    let same_release = format!("-DFAKE_XEN_RELEASE=\"{RELEASE}\"");
    if !defines.iter().any(|d| d.starts_with("-DFAKE_XEN_RELEASE=")) {
        defines.push(&same_release);
    }
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-I{REPO}/include"))
        .args(&defines)
        .arg("-o")
        .arg(output)
        .arg(Path::new(REPO).join("tests/xl-patch").join(source))
        .status()
        .expect("run cc");
    assert!(status.success(), "cc {source} {defines:?} failed");
}

/// (REX_ABI_VERSION_MAJOR, REX_ABI_VERSION_MINOR) from include/rex.h.
fn abi_in_header() -> (u32, u32) {
    let header = fs::read_to_string(Path::new(REPO).join("include/rex.h")).unwrap();
    let value = |name: &str| -> u32 {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("{name} not in include/rex.h"))
            .trim()
            .parse()
            .unwrap()
    };
    (
        value("REX_ABI_VERSION_MAJOR"),
        value("REX_ABI_VERSION_MINOR"),
    )
}

/// Runs the patched xl with `xl_conf` as the contents of its xl.conf.
fn xl(test: &str, xl_conf: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let b = built();
    let conf = b.dir.join(format!("{test}.xl.conf"));
    fs::write(&conf, xl_conf).unwrap();
    Command::new(&b.xl)
        .args(args)
        .env("LD_PRELOAD", b.dir.join("fake_xen_host.so"))
        .env("FAKE_XL_CONF", &conf)
        .envs(env.iter().copied())
        .output()
        .expect("run xl")
}

fn enabled_with(library: &str) -> String {
    let path = built().dir.join(library);
    format!("rex.enable=1\nrex.library=\"{}\"\n", path.display())
}

/// xl's stderr, which must be exactly one line.
fn one_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got:\n{stderr}"
    );
    lines[0].to_owned()
}

/// What the fake librex printed: `argv=...` as xl passed it.
fn argv_seen(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("fake rex_xl_main:"))
        .unwrap_or_else(|| {
            panic!(
                "librex was not called; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(line.contains("ctx=set logger=set"), "{line}");
    line.split_once("argv=").unwrap().1.to_owned()
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn series_applies_without_fuzz_and_builds_without_warnings() {
    let b = built();
    let rex_compile = b
        .build_log
        .lines()
        .find(|l| l.contains("-c -o xl_rex.o xl_rex.c"))
        .expect("xl_rex.c compiled by upstream's tools/xl/Makefile");
    for flag in [
        "-Werror",
        "-Wall",
        "-Wshadow",
        "-Wmissing-declarations",
        "-Wdeclaration-after-statement",
    ] {
        assert!(
            rex_compile.split_whitespace().any(|w| w == flag),
            "{flag} missing: {rex_compile}"
        );
    }
    assert!(!b.build_log.contains("warning:"), "{}", b.build_log);
    let needed = Command::new("readelf")
        .args(["-d"])
        .arg(&b.xl)
        .output()
        .unwrap();
    let needed = String::from_utf8_lossy(&needed.stdout);
    assert!(needed.contains("libxenlight.so"), "{needed}");
    assert!(
        !needed.contains("librex"),
        "xl must not link against rex: {needed}"
    );
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn help_lists_rex_and_its_options() {
    let out = xl("help", "", &["help"], &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("rex ")),
        "{stdout}"
    );

    let out = xl("help_rex", "", &["rex", "--help"], &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Usage: xl [-vtTfN] rex [-c FILE]"),
        "{stdout}"
    );
    assert!(stdout.contains("--config=FILE"), "{stdout}");
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn refuses_unless_rex_enable_is_set() {
    for (test, conf) in [("enable_absent", ""), ("enable_0", "rex.enable=0\n")] {
        let conf = format!("{conf}rex.library=\"/nonexistent/librex.so\"\n");
        let out = xl(test, &conf, &["rex"], &[]);
        assert_eq!(out.status.code(), Some(1), "{test}");
        let line = one_line(&out);
        assert!(
            line.contains("rex.enable") && line.contains(XL_CONF),
            "{test}: {line}"
        );
    }
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn out_of_range_rex_enable_is_reported_and_keeps_rex_off() {
    let out = xl("enable_2", "rex.enable=2\n", &["rex"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{XL_CONF}:1: warning")),
        "{stderr}"
    );
    assert!(stderr.contains("set rex.enable=1"), "{stderr}");
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn missing_library_is_one_line_naming_its_path() {
    let conf = enabled_with("no-such-librex.so");
    let out = xl("missing", &conf, &["rex"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    let path = built().dir.join("no-such-librex.so");
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert!(line.contains("rex.library"), "{line}");
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn library_without_rex_symbols_is_refused() {
    let out = xl("no_abi", &enabled_with("librex_no_abi.so"), &["rex"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert!(
        line.contains("not a rex library") && line.contains("rex_abi_version"),
        "{line}"
    );
    assert!(out.stdout.is_empty(), "rex_xl_main must not run");
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn abi_major_mismatch_is_one_line_with_both_versions() {
    let (major, minor) = abi_in_header();
    let out = xl(
        "next_major",
        &enabled_with("librex_next_major.so"),
        &["rex"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert!(line.contains(&format!("{}.0", major + 1)), "{line}");
    assert!(line.contains(&format!("{major}.{minor}")), "{line}");
    assert!(out.stdout.is_empty(), "rex_xl_main must not run");
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn librex_of_another_xen_release_is_one_line_with_both_releases() {
    let out = xl(
        "other_release",
        &enabled_with("librex_other_release.so"),
        &["rex"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert!(
        line.contains(&format!("built for Xen {}", other_release()))
            && line.contains(&format!("this xl is Xen {RELEASE}")),
        "{line}"
    );
    assert!(out.stdout.is_empty(), "rex_xl_main must not run");
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn newer_minor_abi_is_accepted() {
    let out = xl(
        "newer_minor",
        &enabled_with("librex_newer_minor.so"),
        &["rex"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    argv_seen(&out);
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn passes_policy_and_remaining_options_to_rex() {
    let same = enabled_with("librex_same.so");
    let out = xl("default_policy", &same, &["rex", "--", "--once", "-v"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(argv_seen(&out), "rex --config /etc/xen/rex.cfg --once -v");

    let conf = format!("{same}rex.policy=\"/srv/rex/sla.cfg\"\n");
    let out = xl("conf_policy", &conf, &["rex"], &[]);
    assert_eq!(argv_seen(&out), "rex --config /srv/rex/sla.cfg");

    let out = xl(
        "cli_policy",
        &conf,
        &["rex", "-c", "/tmp/other.cfg", "--", "--once"],
        &[],
    );
    assert_eq!(argv_seen(&out), "rex --config /tmp/other.cfg --once");
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn xl_dry_run_asks_rex_for_a_plan_only() {
    let same = enabled_with("librex_same.so");
    let out = xl("dry_run", &same, &["-N", "rex", "--", "--once"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        argv_seen(&out),
        "rex --config /etc/xen/rex.cfg --dry-run --once"
    );
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn rex_status_becomes_xl_exit_status() {
    let same = enabled_with("librex_same.so");
    for (status, exit) in [("0", 0), ("2", 1), ("4", 1)] {
        let out = xl("status", &same, &["rex"], &[("FAKE_REX_STATUS", status)]);
        argv_seen(&out);
        assert_eq!(out.status.code(), Some(exit), "rex_status {status}");
    }
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn unknown_xl_rex_option_is_a_usage_error() {
    let out = xl(
        "unknown_opt",
        &enabled_with("librex_same.so"),
        &["rex", "-q"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "rex_xl_main must not run");
}

/// xl-patch/RELEASE for every release with a series.
fn series_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(Path::new(REPO).join("xl-patch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("series").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn listed_patches(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("series"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn there_is_a_series_for_debian_12_and_13() {
    let names: Vec<String> = series_dirs()
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["4.17", "4.20"]);
    let script = fs::read_to_string(Path::new(REPO).join("xl-patch/build-xl.sh")).unwrap();
    for name in &names {
        assert!(
            script.contains(&format!("    {name})\n")),
            "build-xl.sh has no {name}"
        );
    }
}

#[test]
fn rex_h_carried_in_each_series_is_include_rex_h() {
    let header = fs::read_to_string(Path::new(REPO).join("include/rex.h")).unwrap();
    for dir in series_dirs() {
        let carried = listed_patches(&dir)
            .iter()
            .find_map(|name| {
                let patch = fs::read_to_string(dir.join(name)).unwrap();
                new_file_in_patch(&patch, "tools/xl/rex.h")
            })
            .unwrap_or_else(|| panic!("{} does not add tools/xl/rex.h", dir.display()));
        assert!(
            carried == header,
            "tools/xl/rex.h in {} differs from include/rex.h; refresh the series (xl-patch/README.md)",
            dir.display()
        );
    }
}

#[test]
fn every_series_adds_the_same_xl_rex_c() {
    let added: Vec<(PathBuf, String)> = series_dirs()
        .into_iter()
        .map(|dir| {
            let code = listed_patches(&dir)
                .iter()
                .find_map(|name| {
                    let patch = fs::read_to_string(dir.join(name)).unwrap();
                    new_file_in_patch(&patch, "tools/xl/xl_rex.c")
                })
                .unwrap_or_else(|| panic!("{} does not add xl_rex.c", dir.display()));
            (dir, code)
        })
        .collect();
    for (dir, code) in &added[1..] {
        assert!(
            *code == added[0].1,
            "{} and {} add different xl_rex.c; one command, one source",
            added[0].0.display(),
            dir.display()
        );
    }
}

/// The contents of a file a git-format-patch adds (`new file mode`).
fn new_file_in_patch(patch: &str, path: &str) -> Option<String> {
    let start = patch.find(&format!("diff --git a/{path} b/{path}\nnew file mode"))?;
    let body = &patch[start..];
    let hunk = body.find("\n@@ ")? + 1;
    let mut text = String::new();
    for line in body[hunk..].lines().skip(1) {
        match line.strip_prefix('+') {
            Some(added) => {
                text.push_str(added);
                text.push('\n');
            }
            None => break,
        }
    }
    Some(text)
}

#[test]
fn every_patch_is_in_format_patch_form_and_listed() {
    for dir in series_dirs() {
        patches_are_in_format_patch_form_and_listed(&dir);
    }
}

fn patches_are_in_format_patch_form_and_listed(dir: &Path) {
    let listed = listed_patches(dir);
    let mut on_disk: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".patch"))
        .collect();
    on_disk.sort();
    assert_eq!(
        listed,
        on_disk,
        "{}/series must list every patch, in order",
        dir.display()
    );
    for name in listed {
        let patch = fs::read_to_string(dir.join(&name)).unwrap();
        for field in [
            "\nFrom: ",
            "\nSubject: [PATCH ",
            "\nSigned-off-by: ",
            " changed, ",
        ] {
            assert!(patch.contains(field), "{name} lacks {field:?}");
        }
    }
}

/// librex as cargo built it for this test run. `cargo test` writes the
/// cdylib to target/<profile>/deps/ (beside this test) and copies it up to
/// target/<profile>/ only on `cargo build`, so the copy there may be stale.
fn real_librex() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("librex.so");
    assert!(lib.exists(), "cargo did not build {}", lib.display());
    lib
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn real_librex_passes_the_abi_check_and_parses_xl_argv() {
    let conf = format!(
        "rex.enable=1\nrex.library=\"{}\"\n",
        real_librex().display()
    );
    // clap answers --help before rex touches the (dummy) libxl context.
    let out = xl("real_help", &conf, &["rex", "--", "--help"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("--dry-run") && stdout.contains("--once"),
        "{stdout}"
    );
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn real_librex_reports_a_missing_policy_by_name() {
    let conf = format!(
        "rex.enable=1\nrex.library=\"{}\"\n",
        real_librex().display()
    );
    // rex reads the policy before it reaches Xen, so the dummy context is
    // never used.
    let out = xl(
        "real_policy",
        &conf,
        &["rex", "-c", "/nonexistent/rex.cfg"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/rex.cfg"), "{stderr}");
}

#[test]
#[ignore = "needs network (first run) and root or sudo (build deps); tests/run-all runs it"]
fn default_library_path_is_under_libdir_in_a_directory_of_the_release() {
    built(); // installs dpkg-dev on a fresh machine
    let multiarch = Command::new("dpkg-architecture")
        .arg("-qDEB_HOST_MULTIARCH")
        .output()
        .expect("run dpkg-architecture");
    let multiarch = String::from_utf8(multiarch.stdout).unwrap();
    let default = format!("/usr/lib/{}/rex/xen-{RELEASE}/librex.so", multiarch.trim());
    assert!(
        !Path::new(&default).exists(),
        "{default} is installed here; this test expects it absent"
    );
    let out = xl("default_library", "rex.enable=1\n", &["rex"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert!(line.contains(&format!("cannot load {default} ")), "{line}");
}
