//! libxl's errors as Rust errors.
//!
//! libxl returns negative `ERROR_*` codes and says what went wrong through
//! its logger, not through an error slot. So an [`XlError`] names the call,
//! the code (by its IDL name) and the last error-level line rex's logger
//! captured during that call (see [`super::logger::LogSink`]).

use std::ffi::CStr;
use std::fmt;

use libxl_sys as sys;

/// A failed libxl call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XlError {
    /// The libxl function that failed, e.g. `libxl_ctx_alloc`.
    pub call: &'static str,
    /// libxl's negative `ERROR_*` code.
    pub code: i32,
    /// The last error-level line libxl logged during the call, when rex owns
    /// the logger (inside xl, xl's logger has already printed it).
    pub detail: Option<String>,
}

impl XlError {
    pub fn new(call: &'static str, code: i32, detail: Option<String>) -> Self {
        Self { call, code, detail }
    }

    /// libxl's name for the code (`FAIL`, `INVAL`, …), or the number.
    pub fn code_name(&self) -> String {
        error_name(self.code).to_ascii_uppercase()
    }
}

/// The IDL name of a libxl error code, e.g. `-3` → `"fail"`.
pub fn error_name(code: i32) -> String {
    // SAFETY: libxl_error_to_string is a pure lookup in a static table; it
    // returns NULL for values outside the enum, a static string otherwise.
    let name = unsafe { sys::libxl_error_to_string(code as sys::libxl_error) };
    if name.is_null() {
        format!("unknown error {code}")
    } else {
        // SAFETY: non-NULL results point at static NUL-terminated strings.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    }
}

impl fmt::Display for XlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: ERROR_{} ({})",
            self.call,
            self.code_name(),
            self.code
        )?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for XlError {}

/// libxl's code for "failed, no more specific reason".
pub const ERROR_FAIL: i32 = sys::libxl_error_ERROR_FAIL;
/// libxl's code for "no such domain".
pub const ERROR_DOMAIN_NOTFOUND: i32 = sys::libxl_error_ERROR_DOMAIN_NOTFOUND;
/// Returned by `libxl_event_check` when no event is pending.
pub const ERROR_NOT_READY: i32 = sys::libxl_error_ERROR_NOT_READY;
pub(crate) const ERROR_BUFFERFULL: i32 = sys::libxl_error_ERROR_BUFFERFULL;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_call_the_code_and_the_logged_line() {
        let err = XlError::new(
            "libxl_ctx_alloc",
            ERROR_FAIL,
            Some("cannot open /dev/xen/privcmd".into()),
        );
        let text = err.to_string();
        assert!(
            text.starts_with("libxl_ctx_alloc failed: ERROR_FAIL (-3)"),
            "{text}"
        );
        assert!(text.ends_with(": cannot open /dev/xen/privcmd"), "{text}");
    }

    #[test]
    fn codes_are_named_by_libxl() {
        assert_eq!(error_name(ERROR_FAIL).to_ascii_uppercase(), "FAIL");
        assert_eq!(
            error_name(ERROR_DOMAIN_NOTFOUND).to_ascii_uppercase(),
            "DOMAIN_NOTFOUND"
        );
        assert_eq!(error_name(-9999), "unknown error -9999");
    }
}
