//! rex: a resource reallocator for Xen hosts.
//!
//! rex watches every domain's CPU and memory use and moves *idle* CPU share
//! (scheduler cap and weight) and memory (balloon targets) to the domains
//! that need more to keep their SLA. It is the modern form of SRX and ReX
//! (see `README.md`).
//!
//! Layering, from the inside out:
//! - [`engine`]: pure. Observations in, a [`engine::Plan`] out. It never
//!   names a backend.
//! - [`host`]: the [`host::Host`] trait and its backends: the deterministic
//!   simulator, libxl in process, and SRX-style fork/exec of `xl`.
//! - [`xl`]: the thin safe layer over `libxl-sys`; the only home of `unsafe`
//!   apart from the C ABI in [`ffi`].
#![deny(clippy::undocumented_unsafe_blocks)]

/// `eprintln!` that cannot panic: a stderr that cannot be written to (a
/// full disk, a closed pipe) is not worth a backtrace, and the exit status
/// still tells.
#[macro_export]
macro_rules! eprintln_safe {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `print!` to stdout that cannot panic, for the same reason.
#[macro_export]
macro_rules! print_safe {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub mod config;
pub mod daemon;
pub mod display;
pub mod engine;
pub mod ffi;
pub mod host;
pub mod input;
pub mod report;
pub mod simulate;
pub mod stats;
pub mod xl;

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// Each cause once: an error that prints its source in its own text
    /// would read "poll loop: X: X".
    #[test]
    fn an_error_chain_names_each_cause_once() {
        let io = || std::io::Error::from_raw_os_error(libc::ENOENT);
        let cause = io().to_string();
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(crate::daemon::DaemonError::Io(io())),
            Box::new(crate::host::exec::ExecError::Spawn {
                xl: "/usr/sbin/xl".into(),
                source: io(),
            }),
            Box::new(crate::host::HostError::Events(Box::new(io()))),
        ];
        for e in errors {
            let chain = error_chain(e.as_ref());
            assert_eq!(chain.matches(&cause).count(), 1, "{chain}");
        }
    }
}
