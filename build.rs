//! Compiles the C shim (src/shim/): the xentoollog logger bridge, which
//! formats libxl's va_list messages in C so Rust receives finished lines.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/shim/logger.c");
    let mut build = cc::Build::new();
    build
        .file("src/shim/logger.c")
        .warnings(true)
        .extra_warnings(true);
    // libxl-sys (links = "xenlight") publishes the include directory it used.
    if let Ok(root) = env::var("DEP_XENLIGHT_ROOT") {
        build.include(PathBuf::from(root));
    }
    build.compile("rexshim");
}
