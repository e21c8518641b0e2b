//! The thin safe layer over `libxl-sys`: the only home of `unsafe` that
//! talks to Xen's libraries (and to the OS, for the poll loop). Each C
//! object is owned by a Rust value that frees it in `Drop`.
//!
//! - [`ctx`]: [`Ctx`] (allocated and freed by rex) and [`BorrowedCtx`]
//!   (xl's, never freed), behind the sealed [`Context`]; [`ops::Libxl`]
//!   has the calls rex makes, each through the one `libxl_call!` macro
//!   (clear the captured error line, call, check the rc).
//! - [`logger`]: libxl's messages into `log`, and `log` into xl's logger.
//! - [`event`]: the osevent poll pair, event checks, domain-death watches.
//! - [`xs`]: xenstore reads of guest-published values.
//! - [`os`]: poll(2) and the signal self-pipe.
// What xl exports is its whole contract with the rest of rex: every item
// is public on purpose or not at all, and every type can be logged.
#![deny(unreachable_pub, missing_debug_implementations)]

pub mod cfg;
mod cfg_scan;
pub mod ctx;
pub mod error;
pub mod event;
pub mod logger;
pub mod ops;
pub mod os;
pub mod types;
pub mod xs;

pub use ctx::{BorrowedCtx, Context, Ctx};
pub use error::XlError;
pub use event::EventCtx;
pub use ops::Libxl;
