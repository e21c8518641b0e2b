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

    let mut include_dirs: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = env::var("LIBXL_INCLUDE_DIR") {
        include_dirs.push(PathBuf::from(dir));
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
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings
        .write_to_file(&out)
        .expect("libxl-sys: cannot write bindings.rs");
}
