//! Generates bindings for the Xen toolstack libraries at build time.
//!
//! Order of choices, as libgit2-sys does: an explicit include directory from
//! `LIBXL_INCLUDE_DIR`, else pkg-config `xenlight` (4.14 ≤ v < 5), else a
//! readable failure that says which Debian packages provide the headers.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-env-changed=LIBXL_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=LIBXL_XEN_RELEASE");

    let mut include_dirs: Vec<PathBuf> = Vec::new();
    let release;
    if let Ok(dir) = env::var("LIBXL_INCLUDE_DIR") {
        include_dirs.push(PathBuf::from(dir));
        release = env::var("LIBXL_XEN_RELEASE").unwrap_or_else(|_| {
            panic!(
                "libxl-sys: LIBXL_INCLUDE_DIR is set, so LIBXL_XEN_RELEASE must say which \
                 Xen release its libxenlight is (e.g. 4.20)"
            )
        });
        for lib in ["xenlight", "xlutil", "xentoollog", "xenstore"] {
            println!("cargo:rustc-link-lib={lib}");
        }
    } else {
        let found = pkg_config::Config::new()
            .range_version("4.14".."5")
            .probe("xenlight")
            .and_then(|xl| {
                let lu = pkg_config::Config::new().probe("xlutil")?;
                let xs = pkg_config::Config::new().probe("xenstore")?;
                let tl = pkg_config::Config::new().probe("xentoollog")?;
                Ok([xl, lu, xs, tl])
            });
        match found {
            Ok(libs) => {
                release = libs[0].version.clone();
                for lib in libs {
                    include_dirs.extend(lib.include_paths);
                }
            }
            Err(e) => {
                println!(
                    "cargo:warning=Xen toolstack headers not found ({e}); \
                     on Debian install: libxen-dev libyajl-dev libclang-dev clang pkg-config"
                );
                panic!("libxl-sys: pkg-config xenlight/xlutil/xenstore/xentoollog failed: {e}");
            }
        }
    }
    if let Some(dir) = include_dirs.first() {
        println!("cargo:root={}", dir.display());
    }
    let release = xen_release(&release);
    // DEP_XENLIGHT_XEN_RELEASE for rex's build script.
    println!("cargo:xen_release={release}");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    std::fs::write(
        out_dir.join("release.rs"),
        format!(
            "/// The Xen release (major.minor) of the libxenlight these bindings link:\n\
             /// its soname is `libxenlight.so.{release}`.\n\
             pub const XEN_RELEASE: &str = \"{release}\";\n\
             /// [`XEN_RELEASE`] as a C string.\n\
             pub const XEN_RELEASE_C: &core::ffi::CStr = c\"{release}\";\n"
        ),
    )
    .expect("libxl-sys: cannot write release.rs");

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .allowlist_function("libxl_.*|xlu_.*|xtl_.*|xs_.*")
        .allowlist_type("libxl_.*|xlu_.*|xtl_.*|xentoollog_.*|XLU_.*|xs_.*")
        .allowlist_var("LIBXL_.*|ERROR_.*|XTL_.*|XS_.*")
        // va_list functions are close to unusable from Rust; the C shim
        // formats those instead.
        .blocklist_function("xtl_logv|xtl_log|xtl_progress|xtl_stdiostream_.*")
        .derive_default(true)
        .layout_tests(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for dir in &include_dirs {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    let bindings = builder
        .generate()
        .expect("libxl-sys: bindgen failed over wrapper.h");
    let out = out_dir.join("bindings.rs");
    bindings
        .write_to_file(&out)
        .expect("libxl-sys: cannot write bindings.rs");
}

/// "4.17.0" (pkg-config's Version) or "4.20" → "4.17" / "4.20": the part of
/// the version that libxenlight's soname carries.
fn xen_release(version: &str) -> String {
    let mut parts = version.trim().split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor))
            if [major, minor]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            format!("{major}.{minor}")
        }
        _ => panic!("libxl-sys: cannot read a Xen release (major.minor) from {version:?}"),
    }
}
