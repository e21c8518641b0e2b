//! libxl contexts: [`Ctx`], which rex allocates and frees, and
//! [`BorrowedCtx`], xl's own context handed in through the C ABI, which rex
//! uses and never frees. Both implement [`Context`], the sealed trait
//! behind every libxl call rex makes (see `ops.rs`).

use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libxl_sys as sys;

use super::error::{XlError, ERROR_FAIL};
use super::logger::{LogSink, Logger};

/// Something that holds a live `libxl_ctx`: [`Ctx`], [`BorrowedCtx`], or an
/// [`EventCtx`](super::EventCtx) around one.
///
/// Sealed: its methods live in a supertrait private to `xl`, because the
/// pointer they hand out feeds every unsafe libxl call. An impl outside
/// `xl` could hand out a dangling one, so none is possible:
///
/// ```compile_fail,E0277
/// struct Dangling;
/// impl rex::xl::Context for Dangling {}
/// ```
///
/// and the pointer cannot be had from outside either:
///
/// ```compile_fail,E0624
/// fn raw<C: rex::xl::Context>(ctx: &C) -> *mut libxl_sys::libxl_ctx {
///     ctx.as_raw()
/// }
/// ```
///
/// libxl.h: "libxl_ctx is threadsafe", but rex uses each context from one
/// thread only, so neither type claims Send or Sync.
#[expect(private_bounds, reason = "the private supertrait seals Context")]
pub trait Context: sealed::Sealed {}

pub(super) mod sealed {
    use super::super::error::XlError;
    use super::super::logger::LogSink;
    use libxl_sys as sys;

    /// What a [`Context`](super::Context) does, visible inside `xl` only.
    pub(in crate::xl) trait Sealed {
        /// The live context. Valid for as long as `self`.
        fn as_raw(&self) -> *mut sys::libxl_ctx;

        /// The sink of the context's logger, when rex owns that logger.
        fn log_sink(&self) -> Option<&LogSink>;

        /// Turns a negative rc into an [`XlError`] naming `call` and
        /// carrying the error line captured since the last
        /// [`begin`](Self::begin) (taken out of the sink); a non-negative rc
        /// is returned as is. It does not clear the line: `begin` does.
        fn check(&self, call: &'static str, rc: i32) -> Result<i32, XlError> {
            check_rc(call, rc, self.log_sink())
        }

        /// Clears the captured error line. To call before each libxl call,
        /// so an older line is not attached to a newer failure (git2's
        /// clear-then-check).
        fn begin(&self) {
            if let Some(sink) = self.log_sink() {
                sink.clear();
            }
        }
    }

    /// [`Sealed::check`] for a sink with no context around it yet.
    pub(in crate::xl) fn check_rc(
        call: &'static str,
        rc: i32,
        sink: Option<&LogSink>,
    ) -> Result<i32, XlError> {
        if rc < 0 {
            Err(XlError::new(call, rc, sink.and_then(LogSink::take)))
        } else {
            Ok(rc)
        }
    }
}

/// Makes one libxl call: clears the captured error line, calls, and checks
/// what came back, naming the function with `stringify!` so an error names
/// the function actually called. The call is written as libxl declares it,
/// `ctx` standing for the context's pointer; `cx` is a reference to a
/// [`Context`]:
///
/// - `libxl_call!(cx, sys::f(ctx, ..))`: an `int` rc, negative on failure;
///   gives `Result<i32, XlError>`.
/// - `libxl_call!(cx, sys::f(ctx, ..) -> ptr)`: a pointer, NULL on failure
///   (`ERROR_FAIL`); gives `Result<NonNull<_>, XlError>`.
/// - `libxl_call!(cx, sys::f(ctx, ..) -> ())`: a call with no result.
/// - `libxl_call!(sink: s, sys::f(..))`: an rc from a call made before
///   there is a context (`libxl_ctx_alloc`), `s` its logger's sink.
///
/// A `// SAFETY:` comment above each invocation says what the function
/// needs of its other arguments.
macro_rules! libxl_call {
    // The one unsafe block every call on a context (and its allocation)
    // goes through.
    (@unsafe $m:ident::$func:ident($($arg:expr),*)) => {
        // SAFETY: `ctx`, where passed, is `Sealed::as_raw` of a context
        // borrowed for the whole call, so it is live (Context is sealed:
        // only xl's own types hand one out). What the function needs of its
        // other arguments is stated, and met, at each invocation.
        unsafe { $m::$func($($arg),*) }
    };
    (@begin $cx:ident, $m:ident::$func:ident($($arg:expr),*)) => {{
        $crate::xl::ctx::sealed::Sealed::begin($cx);
        let ctx = $crate::xl::ctx::sealed::Sealed::as_raw($cx);
        $crate::xl::ctx::libxl_call!(@unsafe $m::$func(ctx $(, $arg)*))
    }};
    (sink: $sink:expr, $m:ident::$func:ident($($arg:expr),* $(,)?)) => {{
        let sink: &$crate::xl::logger::LogSink = $sink;
        sink.clear();
        let rc = $crate::xl::ctx::libxl_call!(@unsafe $m::$func($($arg),*));
        $crate::xl::ctx::sealed::check_rc(stringify!($func), rc, Some(sink))
    }};
    ($cx:expr, $m:ident::$func:ident(ctx $(, $arg:expr)* $(,)?) -> ptr) => {{
        let cx = &*$cx;
        let ptr = $crate::xl::ctx::libxl_call!(@begin cx, $m::$func($($arg),*));
        ::std::ptr::NonNull::new(ptr).ok_or_else(|| {
            $crate::xl::XlError::new(
                stringify!($func),
                $crate::xl::error::ERROR_FAIL,
                $crate::xl::ctx::sealed::Sealed::log_sink(cx)
                    .and_then($crate::xl::logger::LogSink::take),
            )
        })
    }};
    ($cx:expr, $m:ident::$func:ident(ctx $(, $arg:expr)* $(,)?) -> ()) => {{
        let cx = &*$cx;
        let () = $crate::xl::ctx::libxl_call!(@begin cx, $m::$func($($arg),*));
    }};
    ($cx:expr, $m:ident::$func:ident(ctx $(, $arg:expr)* $(,)?)) => {{
        let cx = &*$cx;
        let rc = $crate::xl::ctx::libxl_call!(@begin cx, $m::$func($($arg),*));
        $crate::xl::ctx::sealed::Sealed::check(cx, stringify!($func), rc)
    }};
}
pub(super) use libxl_call;

/// A libxl context owned by rex: allocated with rex's own logger (lines go
/// to the `log` crate), freed in Drop.
#[derive(Debug)]
pub struct Ctx {
    raw: NonNull<sys::libxl_ctx>,
    // Declared after raw and dropped after the Drop below has freed the
    // context, which may still log while it shuts down.
    logger: Logger,
}

impl Ctx {
    /// Allocates a context. Without a hypervisor this fails with
    /// `ERROR_FAIL` and libxl's line "cannot open libxc handle" (the
    /// /dev/xen/privcmd open failed underneath).
    pub fn new() -> Result<Self, XlError> {
        let logger = Logger::new().ok_or_else(|| {
            XlError::new(
                "xtl logger allocation",
                ERROR_FAIL,
                Some("out of memory".into()),
            )
        })?;
        let mut raw: *mut sys::libxl_ctx = ptr::null_mut();
        // SAFETY: raw is an out-parameter; the logger outlives the context
        // (it is stored next to it and dropped after libxl_ctx_free). On
        // failure libxl_ctx_alloc frees its partial context itself.
        libxl_call!(
            sink: logger.sink(),
            sys::libxl_ctx_alloc(&mut raw, sys::LIBXL_VERSION as i32, 0, logger.as_raw())
        )?;
        let raw =
            NonNull::new(raw).ok_or_else(|| XlError::new("libxl_ctx_alloc", ERROR_FAIL, None))?;
        Ok(Self { raw, logger })
    }
}

impl Context for Ctx {}

impl sealed::Sealed for Ctx {
    fn as_raw(&self) -> *mut sys::libxl_ctx {
        self.raw.as_ptr()
    }

    fn log_sink(&self) -> Option<&LogSink> {
        Some(self.logger.sink())
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: raw came from a successful libxl_ctx_alloc and is freed
        // exactly once, here; the logger is still alive. (It returns 0
        // always, and a drop could do nothing with a failure anyway.)
        let _ = libxl_call!(self, sys::libxl_ctx_free(ctx));
    }
}

/// A context rex did not allocate (xl's, passed to `rex_xl_main`): never
/// freed by rex. Its logger is the caller's, so errors carry no captured
/// line; the caller's logger has shown it already.
#[derive(Debug)]
pub struct BorrowedCtx<'a> {
    raw: NonNull<sys::libxl_ctx>,
    _caller: PhantomData<&'a mut sys::libxl_ctx>,
}

impl BorrowedCtx<'_> {
    /// `None` for NULL.
    ///
    /// # Safety
    /// `raw` must be a live libxl context that stays valid, and is used by
    /// no other thread, for the returned lifetime.
    pub unsafe fn from_raw(raw: *mut sys::libxl_ctx) -> Option<Self> {
        NonNull::new(raw).map(|raw| Self {
            raw,
            _caller: PhantomData,
        })
    }
}

impl Context for BorrowedCtx<'_> {}

impl sealed::Sealed for BorrowedCtx<'_> {
    fn as_raw(&self) -> *mut sys::libxl_ctx {
        self.raw.as_ptr()
    }

    fn log_sink(&self) -> Option<&LogSink> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_is_not_a_context() {
        // SAFETY: NULL is rejected before anything could use it.
        assert!(unsafe { BorrowedCtx::from_raw(ptr::null_mut()) }.is_none());
    }

    #[test]
    #[ignore = "needs a machine without Xen; tests/run-all runs it there"]
    fn without_a_hypervisor_allocation_fails_cleanly_and_says_why() {
        assert!(!std::path::Path::new("/dev/xen/privcmd").exists());
        // Repeated, so a leak or double free in the failure path shows up
        // under valgrind/ASan and a crash shows up here.
        for _ in 0..3 {
            let err = Ctx::new().expect_err("no hypervisor on this machine");
            assert_eq!(err.call, "libxl_ctx_alloc");
            assert_eq!(err.code, ERROR_FAIL);
            // libxl's own explanation travels with the error.
            let detail = err.detail.clone().unwrap_or_default();
            assert!(detail.contains("libxl_ctx_alloc"), "{err}");
        }
    }
}

/// libxl_call! against stand-ins for libxl functions: a failing call
/// cannot be had from libxl itself without a hypervisor (or a context).
#[cfg(test)]
mod call_tests {
    use std::ffi::CStr;

    use super::*;
    use crate::xl::error::{ERROR_DOMAIN_NOTFOUND, ERROR_FAIL};

    /// A context whose pointer nobody dereferences: only the stand-ins
    /// below receive it. Its logger is rex's own, as a [`Ctx`]'s is.
    struct FakeCtx {
        logger: Logger,
    }

    impl FakeCtx {
        fn new() -> Self {
            let logger = Logger::new().expect("allocating a logger");
            Self { logger }
        }

        fn log_error(&self, line: &CStr) {
            self.logger
                .log_as_libxl(sys::xentoollog_level_XTL_ERROR, line);
        }
    }

    impl sealed::Sealed for FakeCtx {
        fn as_raw(&self) -> *mut sys::libxl_ctx {
            NonNull::dangling().as_ptr()
        }

        fn log_sink(&self) -> Option<&LogSink> {
            Some(self.logger.sink())
        }
    }

    /// Stand-ins for libxl functions, unsafe as theirs are. Each logs
    /// `line` (if any) through the context's logger, as libxl does before
    /// it fails, then returns what it is told to.
    mod fake {
        use super::*;

        pub(super) unsafe fn libxl_rc(
            _ctx: *mut sys::libxl_ctx,
            cx: &FakeCtx,
            line: Option<&CStr>,
            rc: i32,
        ) -> i32 {
            line.inspect(|l| cx.log_error(l));
            rc
        }

        pub(super) unsafe fn libxl_ptr(
            _ctx: *mut sys::libxl_ctx,
            cx: &FakeCtx,
            line: Option<&CStr>,
            ptr: *mut u8,
        ) -> *mut u8 {
            line.inspect(|l| cx.log_error(l));
            ptr
        }
    }

    #[test]
    fn a_failure_names_the_function_and_carries_its_rc_and_logged_line() {
        let cx = FakeCtx::new();
        let line = Some(c"domain 7 does not exist");
        // SAFETY: the stand-in only logs and returns.
        let err = libxl_call!(&cx, fake::libxl_rc(ctx, &cx, line, ERROR_DOMAIN_NOTFOUND))
            .expect_err("a negative rc is an error");
        assert_eq!(err.call, "libxl_rc");
        assert_eq!(err.code, ERROR_DOMAIN_NOTFOUND);
        assert_eq!(err.detail.as_deref(), Some("domain 7 does not exist"));
        assert_eq!(
            err.to_string(),
            format!(
                "libxl_rc failed: ERROR_DOMAIN_NOTFOUND ({ERROR_DOMAIN_NOTFOUND}): \
                 domain 7 does not exist"
            )
        );
    }

    #[test]
    fn a_line_logged_before_the_call_is_not_blamed_on_it() {
        let cx = FakeCtx::new();
        cx.log_error(c"left over from an earlier call");
        // SAFETY: the stand-in only logs and returns.
        let err = libxl_call!(&cx, fake::libxl_rc(ctx, &cx, None, ERROR_FAIL))
            .expect_err("a negative rc is an error");
        assert_eq!(err.detail, None, "{err}");
    }

    #[test]
    fn a_non_negative_rc_is_the_result_even_after_an_error_line() {
        let cx = FakeCtx::new();
        // libxl_get_scheduler returns its answer as the rc.
        // SAFETY: the stand-in only logs and returns.
        let rc = libxl_call!(&cx, fake::libxl_rc(ctx, &cx, None, 6));
        assert_eq!(rc, Ok(6));
        // libxl logs errors it then recovers from: the call still succeeded.
        // SAFETY: as above.
        let rc = libxl_call!(&cx, fake::libxl_rc(ctx, &cx, Some(c"retrying"), 0));
        assert_eq!(rc, Ok(0));
    }

    #[test]
    fn a_null_result_is_error_fail_with_the_logged_line() {
        let cx = FakeCtx::new();
        let null = ptr::null_mut();
        // SAFETY: the stand-in only logs and returns.
        let err = libxl_call!(&cx, fake::libxl_ptr(ctx, &cx, Some(c"no memory"), null) -> ptr)
            .expect_err("NULL is an error");
        assert_eq!(err.call, "libxl_ptr");
        assert_eq!(err.code, ERROR_FAIL);
        assert_eq!(err.detail.as_deref(), Some("no memory"));
        let mut byte = 0u8;
        // SAFETY: as above.
        let got = libxl_call!(&cx, fake::libxl_ptr(ctx, &cx, None, &mut byte) -> ptr);
        assert_eq!(got.map(NonNull::as_ptr), Ok(&mut byte as *mut u8));
    }
}
