//! The C ABI (include/rex.h): what `xl rex` calls after dlopen().
//!
//! Panic policy, as rustls-ffi: every export runs inside [`boundary`], which
//! catches unwinding and returns `REX_ERR_PANIC` (or a harmless value where
//! the return type has no error). librex never aborts, exits or forks: it
//! lives inside xl.

use std::ffi::{c_char, c_int, CStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use libxl_sys as sys;

use crate::daemon::args::{help_text, Parsed};
use crate::daemon::{self, DaemonArgs};
use crate::error_chain;
use crate::host::{self, Backend};
use crate::xl::logger::XlLoggerGuard;
use crate::xl::BorrowedCtx;

/// `REX_ABI_VERSION_MAJOR` of include/rex.h.
pub const ABI_VERSION_MAJOR: u32 = 1;
/// `REX_ABI_VERSION_MINOR` of include/rex.h.
pub const ABI_VERSION_MINOR: u32 = 1;
/// `REX_ABI_VERSION`.
pub const ABI_VERSION: u32 = (ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR;

/// `rex_status`, numbered as in include/rex.h.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    Usage = 1,
    Config = 2,
    Xen = 3,
    Panic = 4,
    Invalid = 5,
}

/// Runs `f`; a panic becomes `fallback` instead of unwinding into C. Every
/// export goes through here.
fn boundary<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// [`boundary`] for the calls that return a `rex_status`.
pub fn status_boundary(f: impl FnOnce() -> Status) -> c_int {
    boundary(Status::Panic, f) as c_int
}

/// The ABI version librex was built with.
#[no_mangle]
pub extern "C" fn rex_abi_version() -> u32 {
    boundary(0, || ABI_VERSION)
}

static VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the crate version contains a NUL"),
    };

/// librex's version string, static storage.
#[no_mangle]
pub extern "C" fn rex_version() -> *const c_char {
    boundary(std::ptr::null(), || VERSION.as_ptr())
}

/// The Xen release (libxenlight.so.MAJOR.MINOR) librex was built against,
/// static storage: xl refuses a librex of another release.
#[no_mangle]
pub extern "C" fn rex_xen_release() -> *const c_char {
    boundary(std::ptr::null(), || sys::XEN_RELEASE_C.as_ptr())
}

/// Runs the reallocator inside xl, on xl's context, until SIGINT/SIGTERM.
///
/// # Safety
/// `ctx` must be NULL or xl's live libxl context; `logger` NULL or a live
/// xentoollog logger; `argv` NULL (with `argc` 0) or `argc` valid C strings.
/// All must stay valid for the call and be used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn rex_xl_main(
    ctx: *mut sys::libxl_ctx,
    logger: *mut sys::xentoollog_logger,
    argc: c_int,
    argv: *mut *mut c_char,
) -> c_int {
    status_boundary(|| {
        if argc < 0 || (argc > 0 && argv.is_null()) {
            return Status::Invalid;
        }
        if argc > MAX_ARGS {
            // Refused before argv is read or anything is allocated for it.
            crate::eprintln_safe!("xl rex: {argc} arguments, more than the {MAX_ARGS} it takes");
            return Status::Usage;
        }
        // SAFETY: the caller guarantees argv holds argc C strings (checked
        // non-NULL above when argc > 0).
        let Some(args) = (unsafe { collect_args(argc, argv) }) else {
            return Status::Invalid;
        };
        // SAFETY: the caller guarantees ctx is NULL or xl's live context,
        // ours to use on this thread for the call.
        let Some(ctx) = (unsafe { BorrowedCtx::from_raw(ctx) }) else {
            return Status::Invalid;
        };
        let _log = (!logger.is_null()).then(|| {
            // SAFETY: a live logger for the whole call; the guard is
            // dropped before we return.
            unsafe { XlLoggerGuard::install(logger) }
        });
        xl_main(ctx, args)
    })
}

/// The most arguments `xl rex` takes: far more than its options need, and
/// a bound on what a bad `argc` can make it allocate.
const MAX_ARGS: c_int = 4096;

/// # Safety
/// `argv` must hold `argc` pointers, each NULL or a valid C string.
unsafe fn collect_args(argc: c_int, argv: *mut *mut c_char) -> Option<Vec<OsString>> {
    let mut args = Vec::with_capacity(argc as usize);
    for i in 0..argc as usize {
        // SAFETY: i < argc, within the array the caller vouched for.
        let arg = unsafe { *argv.add(i) };
        if arg.is_null() {
            return None;
        }
        // SAFETY: non-NULL entries are valid C strings (caller's contract).
        let bytes = unsafe { CStr::from_ptr(arg) }.to_bytes().to_vec();
        args.push(OsString::from_vec(bytes));
    }
    Some(args)
}

fn xl_main(ctx: BorrowedCtx<'_>, args: Vec<OsString>) -> Status {
    // `xl rex`'s options are those of `rex run` without `--actuator`: xl
    // must not fork a second xl.
    let args = match DaemonArgs::parse(args.into_iter().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            let help = help_text(
                "xl rex",
                "Reallocate idle CPU and memory to domains that need it",
            );
            crate::print_safe!("{help}");
            return Status::Ok;
        }
        Ok(Parsed::Version) => {
            crate::print_safe!("xl rex (librex) {}\n", env!("CARGO_PKG_VERSION"));
            return Status::Ok;
        }
        Err(e) => {
            crate::eprintln_safe!("xl rex: {e}\nTry 'xl rex --help' for more information.");
            return Status::Usage;
        }
    };
    let report = |e: &daemon::DaemonError| {
        crate::eprintln_safe!("xl rex: {}", error_chain(e));
        if e.status() == 2 {
            Status::Config
        } else {
            Status::Xen
        }
    };
    let config = match daemon::load(&args) {
        Ok(config) => config,
        Err(e) => return report(&e.into()),
    };
    let mut host = match host::open(Backend::XlContext(ctx)) {
        Ok(host) => host,
        Err(e) => return report(&e.into()),
    };
    if args.poll {
        host.poll_keys();
    }
    match daemon::run(host, config, &args, Box::new(std::io::stdout())) {
        Ok(_) => Status::Ok,
        Err(e) => report(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_panic_status() {
        assert_eq!(status_boundary(|| panic!("bug")), Status::Panic as c_int);
        assert_eq!(status_boundary(|| Status::Config), 2);
        assert!(boundary(std::ptr::null::<c_char>(), || panic!("bug")).is_null());
    }

    #[test]
    fn xen_release_is_the_major_minor_of_the_linked_libxenlight() {
        // SAFETY: rex_xen_release returns a static C string.
        let release = unsafe { CStr::from_ptr(rex_xen_release()) }
            .to_str()
            .unwrap();
        let soname = format!("libxenlight.so.{release}");
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(
            maps.contains(&soname),
            "built for Xen {release}, but {soname} is not mapped in this process"
        );
    }

    #[test]
    fn version_string_is_the_crate_version() {
        // SAFETY: rex_version returns a static C string.
        let v = unsafe { CStr::from_ptr(rex_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    /// Calls rex_xl_main with a context pointer that is never dereferenced
    /// on the paths tested (argument and config errors come first).
    fn xl_main_with(args: &[&str]) -> c_int {
        let mut not_a_ctx = 0u64;
        let mut owned: Vec<Vec<u8>> = args.iter().map(|a| format!("{a}\0").into_bytes()).collect();
        let mut argv: Vec<*mut c_char> = owned.iter_mut().map(|a| a.as_mut_ptr().cast()).collect();
        // SAFETY: argv holds args.len() valid C strings; the ctx pointer is
        // not used before the failures these tests provoke.
        unsafe {
            rex_xl_main(
                (&mut not_a_ctx as *mut u64).cast(),
                std::ptr::null_mut(),
                argv.len() as c_int,
                argv.as_mut_ptr(),
            )
        }
    }

    #[test]
    fn options_are_parsed_without_exiting() {
        assert_eq!(xl_main_with(&["rex", "--help"]), Status::Ok as c_int);
        assert_eq!(
            xl_main_with(&["rex", "--no-such-option"]),
            Status::Usage as c_int
        );
        assert_eq!(
            xl_main_with(&["rex", "--actuator", "exec"]),
            Status::Usage as c_int
        );
        assert_eq!(
            xl_main_with(&[
                "rex",
                "--config",
                "/nonexistent/a.cfg",
                "--dry-run",
                "--dry-run",
                "-c",
                "/nonexistent/b.cfg"
            ]),
            Status::Config as c_int,
            "repeated options (xl's, then the user's) are accepted"
        );
    }

    /// `rex_xl_main` with no context and no logger.
    ///
    /// # Safety
    /// As for `rex_xl_main`.
    unsafe fn without_ctx(argc: c_int, argv: *mut *mut c_char) -> c_int {
        // SAFETY: the caller upholds rex_xl_main's contract; NULL ctx and
        // logger are part of it.
        unsafe { rex_xl_main(std::ptr::null_mut(), std::ptr::null_mut(), argc, argv) }
    }

    #[test]
    fn null_arguments_are_invalid_not_crashes() {
        let mut arg0 = *b"rex\0";
        let mut argv = [arg0.as_mut_ptr().cast::<c_char>()];
        // SAFETY: NULL ctx is part of the contract; argv is valid.
        let rc = unsafe { without_ctx(1, argv.as_mut_ptr()) };
        assert_eq!(rc, Status::Invalid as c_int);
        // SAFETY: argc > 0 with NULL argv must be rejected before any read.
        let rc = unsafe { without_ctx(2, std::ptr::null_mut()) };
        assert_eq!(rc, Status::Invalid as c_int);
        let mut argv_null = [std::ptr::null_mut::<c_char>()];
        // SAFETY: a NULL entry inside argv must be rejected, not read.
        let rc = unsafe { without_ctx(1, argv_null.as_mut_ptr()) };
        assert_eq!(rc, Status::Invalid as c_int);
    }

    #[test]
    fn a_huge_argc_is_a_usage_error_before_argv_is_read() {
        let mut arg0 = *b"rex\0";
        let mut argv = [arg0.as_mut_ptr().cast::<c_char>()];
        // SAFETY: argc above MAX_ARGS must be refused before argv is read
        // (argv holds one entry only).
        let rc = unsafe { without_ctx(c_int::MAX, argv.as_mut_ptr()) };
        assert_eq!(rc, Status::Usage as c_int);
    }
}
