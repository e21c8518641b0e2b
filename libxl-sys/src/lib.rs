//! Raw bindings to Xen's libxl, libxlutil, xentoollog and xenstore, generated
//! by bindgen at build time with `LIBXL_API_VERSION 0x041400`.
//!
//! Nothing here is safe to call directly; the `rex` crate's `xl` module is the
//! only user, and owns every `unsafe` block. Static inline helpers from
//! libxl.h are not emitted by bindgen; the C shim in `rex` provides the few
//! that are needed.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
include!(concat!(env!("OUT_DIR"), "/release.rs"));
