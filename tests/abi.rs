//! The C ABI as C sees it: include/rex.h compiles cleanly, librex.so exports
//! exactly what the header declares, and the version macros match the
//! library. Needs `cc` and `nm` (binutils); no Xen.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The librex.so built for this test run: cargo writes the cdylib to
/// target/<profile>/deps/ (where this test runs from) and copies it to
/// target/<profile>/ only on `cargo build`, so the deps/ copy is the fresh
/// one.
fn librex() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let lib = deps.join("librex.so");
    let lib = if lib.exists() {
        lib
    } else {
        deps.parent().map(|p| p.join("librex.so")).unwrap()
    };
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

fn header() -> String {
    std::fs::read_to_string(root().join("include/rex.h")).unwrap()
}

/// Names of the functions the header declares: `type rex_name(` at the
/// start of a declaration.
fn declared_functions(header: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut text = header.to_string();
    // Drop comments so prose mentioning rex_xl_main() is not a prototype.
    while let Some(start) = text.find("/*") {
        let end = text[start..].find("*/").map(|e| start + e + 2).unwrap();
        text.replace_range(start..end, " ");
    }
    for statement in text.split(';') {
        let statement = statement.trim();
        if statement.starts_with('#') || statement.contains("typedef") {
            continue;
        }
        if let Some(paren) = statement.find('(') {
            let before = &statement[..paren];
            let name = before
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap();
            if name.starts_with("rex_") {
                names.insert(name.to_string());
            }
        }
    }
    names
}

fn header_macro(header: &str, name: &str) -> u32 {
    let line = header
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name) && l.starts_with("#define"))
        .unwrap_or_else(|| panic!("{name} not in rex.h"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn c_program_compiles_with_warnings_as_errors_and_calls_every_export() {
    let lib = librex();
    let out = std::env::temp_dir().join(format!("rex-abi-{}", std::process::id()));
    let status = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(root().join("include"))
        .arg(root().join("tests/abi_c/abi.c"))
        .arg("-o")
        .arg(&out)
        .arg("-L")
        .arg(lib.parent().unwrap())
        .arg(format!("-Wl,-rpath,{}", lib.parent().unwrap().display()))
        .arg("-lrex")
        .status()
        .expect("running cc");
    assert!(status.success(), "cc failed on tests/abi_c/abi.c");
    let run = Command::new(&out).output().unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(
        run.status.success(),
        "abi.c failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        stdout.trim(),
        format!(
            "{} {} {}",
            env!("CARGO_PKG_VERSION"),
            rex::ffi::ABI_VERSION,
            libxl_sys::XEN_RELEASE
        )
    );
}

#[test]
fn library_exports_exactly_the_header_functions() {
    let declared = declared_functions(&header());
    assert!(declared.contains("rex_xl_main"), "parsed {declared:?}");
    let nm = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(librex())
        .output()
        .expect("running nm");
    assert!(nm.status.success());
    let exported: BTreeSet<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (_addr, kind, name) = (words.next()?, words.next()?, words.next()?);
            (kind == "T").then(|| name.to_string())
        })
        .collect();
    assert_eq!(exported, declared, "exports (T) of librex.so vs rex.h");
}

/// librex is loaded into every `xl rex`: it carries the daemon, not the
/// `rex` binary's command line (clap) or plotting (plotters).
#[test]
fn library_links_no_command_line_or_plotting_crate() {
    let lib = librex();
    let nm = Command::new("nm").arg(&lib).output().expect("running nm");
    assert!(nm.status.success());
    let symbols = String::from_utf8_lossy(&nm.stdout);
    // Not vacuous: the library's own symbols are there to be read.
    assert!(
        symbols.contains("rex_xl_main") && symbols.lines().count() > 1000,
        "{} has no symbol table to check",
        lib.display()
    );
    for crate_name in ["clap", "plotters"] {
        let found: Vec<&str> = symbols
            .lines()
            .filter(|l| l.contains(crate_name))
            .take(3)
            .collect();
        assert!(found.is_empty(), "librex.so links {crate_name}: {found:?}");
    }
    let size = std::fs::metadata(&lib).map(|m| m.len()).unwrap_or(0);
    eprintln!("librex.so: {size} bytes");
}

#[test]
fn header_version_macros_match_the_library() {
    let h = header();
    let major = header_macro(&h, "REX_ABI_VERSION_MAJOR");
    let minor = header_macro(&h, "REX_ABI_VERSION_MINOR");
    assert_eq!(major, rex::ffi::ABI_VERSION_MAJOR);
    assert_eq!(minor, rex::ffi::ABI_VERSION_MINOR);
    // The composed macro, as the header spells it, against the runtime value.
    assert!(h.contains(
        "#define REX_ABI_VERSION ((REX_ABI_VERSION_MAJOR << 16) | REX_ABI_VERSION_MINOR)"
    ));
    assert_eq!(rex::ffi::rex_abi_version(), (major << 16) | minor);
}

#[test]
fn status_numbers_match_the_header() {
    let h = header();
    for (name, status) in [
        ("REX_OK", rex::ffi::Status::Ok),
        ("REX_ERR_USAGE", rex::ffi::Status::Usage),
        ("REX_ERR_CONFIG", rex::ffi::Status::Config),
        ("REX_ERR_XEN", rex::ffi::Status::Xen),
        ("REX_ERR_PANIC", rex::ffi::Status::Panic),
        ("REX_ERR_INVALID", rex::ffi::Status::Invalid),
    ] {
        let line = h
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} =")))
            .unwrap_or_else(|| panic!("{name} not in rex.h"));
        let value: i32 = line
            .split('=')
            .nth(1)
            .unwrap()
            .trim()
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap();
        assert_eq!(value, status as i32, "{name}");
    }
}
