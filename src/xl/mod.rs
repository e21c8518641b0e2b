//! The thin safe layer over `libxl-sys`: the only home of `unsafe` that
//! talks to Xen's libraries. Each C object is owned by a Rust value that
//! frees it in `Drop`.

pub mod cfg;
