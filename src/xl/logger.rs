//! xentoollog loggers: libxl's messages into the `log` crate, and rex's own
//! `log` records out through xl's logger when rex runs inside xl.
//!
//! The va_list formatting happens in C (src/shim/logger.c); Rust only sees
//! finished lines. The callback runs under `catch_unwind` and drops the
//! message if anything panics: a log line is never worth unwinding into C.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

use libxl_sys as sys;

type LogFn = extern "C" fn(*mut c_void, c_int, *const c_char, *const c_char);

extern "C" {
    fn rexshim_logger_new(callback: LogFn, user: *mut c_void) -> *mut sys::xentoollog_logger;
    fn rexshim_log(
        logger: *mut sys::xentoollog_logger,
        level: c_int,
        context: *const c_char,
        message: *const c_char,
    );
}

/// Where one logger's lines go: the `log` crate, plus a slot holding the last
/// error-level line, which [`super::XlError`] attaches to a failed call.
#[derive(Debug, Default)]
pub struct LogSink {
    last_error: Mutex<Option<String>>,
}

impl LogSink {
    /// Forgets any earlier error line (called before each libxl call).
    pub fn clear(&self) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = None;
        }
    }

    /// The last error line since [`clear`](Self::clear), taken out.
    pub fn take(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|mut slot| slot.take())
    }

    fn record(&self, level: c_int, context: Option<&str>, message: &str) {
        let target = match context {
            Some("xl") => "xl",
            Some("xc") => "xc",
            _ => "libxl",
        };
        log::log!(target: target, xtl_to_log_level(level), "{message}");
        if level >= sys::xentoollog_level_XTL_ERROR as c_int {
            if let Ok(mut slot) = self.last_error.lock() {
                *slot = Some(message.to_string());
            }
        }
    }
}

/// xentoollog's levels onto `log`'s.
pub fn xtl_to_log_level(level: c_int) -> log::Level {
    match level as sys::xentoollog_level {
        sys::xentoollog_level_XTL_ERROR | sys::xentoollog_level_XTL_CRITICAL => log::Level::Error,
        sys::xentoollog_level_XTL_WARN => log::Level::Warn,
        sys::xentoollog_level_XTL_NOTICE
        | sys::xentoollog_level_XTL_INFO
        | sys::xentoollog_level_XTL_PROGRESS => log::Level::Info,
        sys::xentoollog_level_XTL_DETAIL | sys::xentoollog_level_XTL_VERBOSE => log::Level::Debug,
        _ => log::Level::Trace,
    }
}

/// `log`'s levels onto xentoollog's.
pub fn log_to_xtl_level(level: log::Level) -> c_int {
    (match level {
        log::Level::Error => sys::xentoollog_level_XTL_ERROR,
        log::Level::Warn => sys::xentoollog_level_XTL_WARN,
        log::Level::Info => sys::xentoollog_level_XTL_INFO,
        log::Level::Debug => sys::xentoollog_level_XTL_DETAIL,
        log::Level::Trace => sys::xentoollog_level_XTL_DEBUG,
    }) as c_int
}

extern "C" fn forward_line(
    user: *mut c_void,
    level: c_int,
    context: *const c_char,
    message: *const c_char,
) {
    // A panic here (say, a log backend that panics) must not unwind into
    // libxl: the message is dropped instead.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if user.is_null() || message.is_null() {
            return;
        }
        // SAFETY: user is the LogSink the Logger boxed and keeps alive for as
        // long as the C logger exists (destroyed first in Logger's Drop).
        let sink = unsafe { &*(user as *const LogSink) };
        // SAFETY: the shim passes NUL-terminated strings valid for this call.
        let message = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        let context = if context.is_null() {
            None
        } else {
            // SAFETY: as above; context is libxl's static "libxl"/"xl"/… name.
            Some(unsafe { CStr::from_ptr(context) }.to_string_lossy())
        };
        sink.record(level, context.as_deref(), &message);
    }));
}

/// A xentoollog logger owned by rex, for a context rex allocates itself.
#[derive(Debug)]
pub struct Logger {
    raw: NonNull<sys::xentoollog_logger>,
    sink: Box<LogSink>,
}

impl Logger {
    /// `None` only when the shim cannot allocate.
    pub fn new() -> Option<Self> {
        let sink = Box::new(LogSink::default());
        let user = &*sink as *const LogSink as *mut c_void;
        // SAFETY: forward_line matches the shim's callback type; user points
        // into the box, which lives in the returned Logger as long as raw.
        let raw = NonNull::new(unsafe { rexshim_logger_new(forward_line, user) })?;
        Some(Self { raw, sink })
    }

    pub fn as_raw(&self) -> *mut sys::xentoollog_logger {
        self.raw.as_ptr()
    }

    pub fn sink(&self) -> &LogSink {
        &self.sink
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        // SAFETY: raw came from rexshim_logger_new and is destroyed once; the
        // sink it points at is dropped only after this, with the struct.
        unsafe { sys::xtl_logger_destroy(self.raw.as_ptr()) };
    }
}

#[cfg(test)]
impl Logger {
    /// Logs `message` through the C logger, as libxl does.
    pub(super) fn log_as_libxl(&self, level: sys::xentoollog_level, message: &CStr) {
        // SAFETY: raw is live; both strings are NUL-terminated and outlive
        // the call.
        unsafe {
            rexshim_log(
                self.raw.as_ptr(),
                level as c_int,
                c"libxl".as_ptr(),
                message.as_ptr(),
            )
        };
    }
}

/// xl's logger while rex runs inside xl; NULL otherwise.
static XL_LOGGER: AtomicPtr<sys::xentoollog_logger> = AtomicPtr::new(ptr::null_mut());

/// A `log::Log` that writes rex's records through xl's logger, so `xl -v`
/// decides what is shown. Records are dropped while no xl logger is set.
#[derive(Debug)]
pub struct XtlBridge;

static BRIDGE: XtlBridge = XtlBridge;

impl log::Log for XtlBridge {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        !XL_LOGGER.load(Ordering::Acquire).is_null()
    }

    fn log(&self, record: &log::Record<'_>) {
        let logger = XL_LOGGER.load(Ordering::Acquire);
        if logger.is_null() {
            return;
        }
        // A logger that itself logs through `log` (rex's own, say) would
        // come straight back here: such nested records are dropped.
        let Some(_nested) = ReentryGuard::enter() else {
            return;
        };
        let Ok(message) = CString::new(record.args().to_string().replace('\0', " ")) else {
            return;
        };
        // SAFETY: logger is xl's, valid while the XlLoggerGuard that set it
        // lives (the length of rex_xl_main); rex runs on xl's one thread.
        unsafe {
            rexshim_log(
                logger,
                log_to_xtl_level(record.level()),
                c"rex".as_ptr(),
                message.as_ptr(),
            )
        };
    }

    fn flush(&self) {}
}

thread_local! {
    static IN_BRIDGE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as inside [`XtlBridge::log`].
struct ReentryGuard;

impl ReentryGuard {
    fn enter() -> Option<Self> {
        IN_BRIDGE.with(|inside| (!inside.replace(true)).then_some(ReentryGuard))
    }
}

impl Drop for ReentryGuard {
    fn drop(&mut self) {
        IN_BRIDGE.with(|inside| inside.set(false));
    }
}

/// Routes rex's `log` records to xl's logger until dropped.
#[derive(Debug)]
pub struct XlLoggerGuard {
    previous: *mut sys::xentoollog_logger,
}

impl XlLoggerGuard {
    /// # Safety
    /// `logger` must be a valid xentoollog logger for the guard's lifetime.
    pub unsafe fn install(logger: *mut sys::xentoollog_logger) -> Self {
        // The first install wins the process-wide `log` slot; inside xl
        // nobody else sets one. Later installs only swap the target.
        if log::set_logger(&BRIDGE).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
        let previous = XL_LOGGER.swap(logger, Ordering::AcqRel);
        Self { previous }
    }
}

impl Drop for XlLoggerGuard {
    fn drop(&mut self) {
        XL_LOGGER.store(self.previous, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_are_kept_until_taken_and_cleared() {
        let sink = LogSink::default();
        sink.record(
            sys::xentoollog_level_XTL_WARN as c_int,
            Some("libxl"),
            "just a warning",
        );
        assert_eq!(sink.take(), None);
        sink.record(
            sys::xentoollog_level_XTL_ERROR as c_int,
            Some("libxl"),
            "first",
        );
        sink.record(
            sys::xentoollog_level_XTL_CRITICAL as c_int,
            Some("libxl"),
            "second",
        );
        assert_eq!(sink.take().as_deref(), Some("second"));
        assert_eq!(sink.take(), None);
        sink.record(sys::xentoollog_level_XTL_ERROR as c_int, None, "stale");
        sink.clear();
        assert_eq!(sink.take(), None);
    }

    #[test]
    fn levels_map_both_ways() {
        for level in [
            log::Level::Error,
            log::Level::Warn,
            log::Level::Info,
            log::Level::Debug,
        ] {
            assert_eq!(xtl_to_log_level(log_to_xtl_level(level)), level);
        }
    }
}

#[cfg(test)]
mod shim_tests {
    use super::*;

    extern "C" {
        // Variadic, so Rust can call it (only defining one needs VaList).
        fn xtl_log(
            logger: *mut sys::xentoollog_logger,
            level: sys::xentoollog_level,
            errnoval: c_int,
            context: *const c_char,
            format: *const c_char,
            ...
        );
    }

    #[test]
    fn shim_formats_the_va_list_and_appends_errno() {
        let logger = Logger::new().expect("allocating a logger");
        // SAFETY: logger is live; the format's one %d/%s take the arguments given.
        unsafe {
            xtl_log(
                logger.as_raw(),
                sys::xentoollog_level_XTL_ERROR,
                libc::ENOENT,
                c"libxl".as_ptr(),
                c"open %s failed after %d tries".as_ptr(),
                c"/dev/xen/privcmd".as_ptr(),
                3 as c_int,
            )
        };
        let line = logger.sink().take().expect("the error line was captured");
        assert_eq!(
            line,
            format!(
                "open /dev/xen/privcmd failed after 3 tries: {}",
                std::io::Error::from_raw_os_error(libc::ENOENT)
                    .to_string()
                    .split(" (os error")
                    .next()
                    .unwrap()
            )
        );
    }

    #[test]
    fn percent_signs_in_rex_lines_are_not_formats() {
        let logger = Logger::new().expect("allocating a logger");
        // SAFETY: logger is live; both strings are NUL-terminated.
        unsafe {
            rexshim_log(
                logger.as_raw(),
                sys::xentoollog_level_XTL_ERROR as c_int,
                c"rex".as_ptr(),
                c"cap 100%s %d".as_ptr(),
            )
        };
        assert_eq!(logger.sink().take().as_deref(), Some("cap 100%s %d"));
    }

    #[test]
    fn rex_records_go_through_the_installed_xl_logger_until_the_guard_drops() {
        // Stands in for xl's logger: any xentoollog logger will do.
        let xl_logger = Logger::new().expect("allocating a logger");
        {
            // SAFETY: xl_logger outlives the guard.
            let _guard = unsafe { XlLoggerGuard::install(xl_logger.as_raw()) };
            // Other tests' libxl lines may pass through the bridge while the
            // guard is up (the slot is process-wide); one clean round is
            // enough to show the path works.
            let seen = (0..5).any(|_| {
                log::error!(target: "rex::test", "rex says {}", 42);
                xl_logger.sink().take().as_deref() == Some("rex says 42")
            });
            assert!(seen, "rex's record never reached the xl logger");
        }
        log::error!(target: "rex::test", "after the guard");
        assert_eq!(xl_logger.sink().take(), None);
    }
}
