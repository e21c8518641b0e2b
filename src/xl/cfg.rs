//! xl's own config syntax (`key = value`, `key = [ "a", "b" ]`), parsed by
//! libxlutil's `xlu_cfg_*`, the parser `xl` uses for domain configs and
//! xl.conf. Syntax errors come back as libxlutil words them: `file:line: …`.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_long, CStr, CString};
use std::ptr;

use libxl_sys as sys;

use super::cfg_scan::{scan, Setting};

/// An error from the config parser, already worded for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CfgError(pub String);

/// A parsed config file. Values are looked up by key; lists hold strings.
pub struct XluConfig {
    cfg: *mut sys::XLU_Config,
    report: Report,
    filename: String,
    /// Every setting with the line it is on (libxlutil keeps line numbers
    /// private), in order, and for each key the settings that set it.
    settings: Vec<Setting>,
    by_key: HashMap<String, Vec<usize>>,
}

/// libxlutil writes its diagnostics to a `FILE *`; this one is an in-memory
/// stream so they can be returned as errors instead of printed.
///
/// glibc stores the stream's buffer pointer and length through the two
/// pointers given to `open_memstream`, at every `fflush` and at `fclose`.
/// They point into a heap cell of their own that no Rust reference ever
/// covers: were they fields of `Report`, the compiler could assume that
/// `fclose(self.file)` leaves `self.buf` unchanged (a `&mut self` is
/// exclusive), free a stale buffer and double-free it.
struct Report {
    file: *mut libc::FILE,
    out: *mut MemstreamOut,
}

/// What glibc writes back for a memstream.
#[repr(C)]
struct MemstreamOut {
    buf: *mut c_char,
    len: libc::size_t,
}

impl Report {
    fn new() -> Result<Self, CfgError> {
        let out = Box::into_raw(Box::new(MemstreamOut {
            buf: ptr::null_mut(),
            len: 0,
        }));
        // SAFETY: out is a live heap cell, reclaimed only in Drop after the
        // stream is closed; glibc writes through these two pointers.
        let file = unsafe { libc::open_memstream(&raw mut (*out).buf, &raw mut (*out).len) };
        if file.is_null() {
            // SAFETY: out came from Box::into_raw and was never shared.
            drop(unsafe { Box::from_raw(out) });
            return Err(CfgError("cannot allocate a report stream".into()));
        }
        Ok(Report { file, out })
    }

    /// Everything written so far, then cleared.
    fn take(&mut self) -> String {
        // SAFETY: file is a valid open memstream; fflush updates *out, read
        // afterwards through the raw pointer (no reference is held across).
        let (buf, len) = unsafe {
            libc::fflush(self.file);
            (
                ptr::read(&raw const (*self.out).buf),
                ptr::read(&raw const (*self.out).len),
            )
        };
        if buf.is_null() || len == 0 {
            return String::new();
        }
        // SAFETY: after fflush, buf points at len valid bytes, copied out
        // before the stream is written again.
        let bytes = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        let text = String::from_utf8_lossy(bytes).trim_end().to_string();
        // SAFETY: rewinding a memstream is valid; the next write starts at 0
        // and the next fflush writes the new length back.
        unsafe { libc::rewind(self.file) };
        text
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        // SAFETY: file was opened by open_memstream and is closed once here;
        // fclose writes the final buffer into *out, which is then owned by
        // us and freed with free() as the man page says, then the cell.
        unsafe {
            libc::fclose(self.file);
            libc::free(ptr::read(&raw const (*self.out).buf) as *mut libc::c_void);
            drop(Box::from_raw(self.out));
        }
    }
}

// The C handles say nothing worth printing; the file and its keys do.
impl std::fmt::Debug for XluConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XluConfig")
            .field("filename", &self.filename)
            .field("keys", &self.by_key.len())
            .finish_non_exhaustive()
    }
}

// The Report must outlive the XLU_Config that writes to it: XluConfig's Drop
// destroys the config first, then the Report's own Drop closes the stream.
impl Drop for XluConfig {
    fn drop(&mut self) {
        // SAFETY: cfg came from xlu_cfg_init and is destroyed exactly once.
        unsafe { sys::xlu_cfg_destroy(self.cfg) };
    }
}

impl XluConfig {
    /// Parses `text`; `filename` is the name used in messages.
    pub fn parse(filename: &str, text: &str) -> Result<Self, CfgError> {
        // libxlutil aborts the process on a NUL inside a quoted string.
        let text = crate::input::clean_text(filename, text).map_err(CfgError)?;
        let text = text.as_str();
        // rex's own lexical check first: its messages say what was meant.
        let settings = scan(filename, text)?;
        let report = Report::new()?;
        let cname = CString::new(filename)
            .map_err(|_| CfgError(format!("{filename}: file name contains NUL")))?;
        // SAFETY: report.file is an open stream; xlu copies the file name.
        let cfg = unsafe { sys::xlu_cfg_init(report.file as *mut sys::FILE, cname.as_ptr()) };
        if cfg.is_null() {
            return Err(CfgError(format!("{filename}: cannot allocate a config")));
        }
        let mut me = XluConfig {
            cfg,
            report,
            filename: filename.to_string(),
            settings,
            by_key: HashMap::new(),
        };
        let len = c_int::try_from(text.len())
            .map_err(|_| CfgError(format!("{filename}: file too large")))?;
        // SAFETY: cfg is valid; data/len describe a live buffer xlu only reads.
        let rc = unsafe { sys::xlu_cfg_readdata(me.cfg, text.as_ptr() as *const c_char, len) };
        if rc != 0 {
            let msg = me.report.take();
            let msg = if msg.is_empty() {
                format!(
                    "{filename}: config parsing error ({})",
                    std::io::Error::from_raw_os_error(rc)
                )
            } else {
                msg
            };
            return Err(CfgError(msg));
        }
        for (i, setting) in me.settings.iter().enumerate() {
            let earlier = me.by_key.entry(setting.key.clone()).or_default();
            if let (Some(&first), false) = (earlier.first(), setting.append) {
                return Err(CfgError(format!(
                    "{filename}:{}: `{}' is set twice (first on line {}); use `+=' to add to a list",
                    setting.line, setting.key, me.settings[first].line
                )));
            }
            earlier.push(i);
        }
        Ok(me)
    }

    /// Reads and parses a file.
    pub fn read_file(path: &std::path::Path) -> Result<Self, CfgError> {
        let text = crate::input::read_text_file(path).map_err(CfgError)?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The top-level keys set in the file, with their line numbers, in order
    /// (a key added to with `+=` once per setting).
    pub fn keys(&self) -> impl Iterator<Item = (&str, usize)> {
        self.settings.iter().map(|s| (s.key.as_str(), s.line))
    }

    /// `file:line` where `key` was set (`file` alone if it was not).
    pub fn location(&self, key: &str) -> String {
        match self.by_key.get(key).and_then(|s| s.first()) {
            Some(&i) => format!("{}:{}", self.filename, self.settings[i].line),
            None => self.filename.clone(),
        }
    }

    /// `file:line` of the `index`-th item of list `key` (its settings'
    /// items in order, as libxlutil appends them).
    pub fn list_item_location(&self, key: &str, index: usize) -> String {
        let Some(indices) = self.by_key.get(key) else {
            return self.filename.clone();
        };
        let mut left = index;
        for &i in indices {
            let items = &self.settings[i].items;
            if left < items.len() {
                return format!("{}:{}", self.filename, items[left]);
            }
            left -= items.len();
        }
        self.location(key)
    }

    fn cname(key: &str) -> CString {
        CString::new(key).expect("config keys are static identifiers")
    }

    fn type_error(&mut self, key: &str, want: &str) -> CfgError {
        let msg = self.report.take();
        if msg.is_empty() {
            CfgError(format!("{}: `{key}' should be {want}", self.location(key)))
        } else {
            CfgError(msg)
        }
    }

    /// A string value; `Ok(None)` when the key is absent.
    pub fn string(&mut self, key: &str) -> Result<Option<String>, CfgError> {
        let name = Self::cname(key);
        let mut value: *const c_char = ptr::null();
        // SAFETY: cfg is valid and parsed; value receives a pointer owned by
        // cfg, copied out below before cfg can change.
        let rc = unsafe { sys::xlu_cfg_get_string(self.cfg, name.as_ptr(), &mut value, 0) };
        match rc {
            0 => {
                // SAFETY: on success value is a NUL-terminated string owned by cfg.
                let s = unsafe { CStr::from_ptr(value) };
                Ok(Some(s.to_string_lossy().into_owned()))
            }
            libc::ESRCH => Ok(None),
            _ => Err(self.type_error(key, "a single string")),
        }
    }

    /// A number; `Ok(None)` when the key is absent. Accepts `key = 5` and
    /// `key = "5"`, as xl does.
    pub fn long(&mut self, key: &str) -> Result<Option<i64>, CfgError> {
        let name = Self::cname(key);
        let mut value: c_long = 0;
        // SAFETY: cfg is valid and parsed; value is a plain out-parameter.
        let rc = unsafe { sys::xlu_cfg_get_long(self.cfg, name.as_ptr(), &mut value, 0) };
        match rc {
            0 => Ok(Some(value)),
            libc::ESRCH => Ok(None),
            _ => {
                let msg = self.report.take();
                Err(CfgError(if msg.is_empty() {
                    format!("{}: `{key}' should be a number", self.location(key))
                } else {
                    msg
                }))
            }
        }
    }

    /// A list of strings; `Ok(None)` when the key is absent.
    pub fn list(&mut self, key: &str) -> Result<Option<Vec<String>>, CfgError> {
        let name = Self::cname(key);
        let mut list: *mut sys::XLU_ConfigList = ptr::null_mut();
        let mut entries: c_int = 0;
        // SAFETY: cfg is valid and parsed; list is owned by cfg (no free).
        let rc =
            unsafe { sys::xlu_cfg_get_list(self.cfg, name.as_ptr(), &mut list, &mut entries, 0) };
        match rc {
            0 => {}
            libc::ESRCH => return Ok(None),
            _ => return Err(self.type_error(key, "a list")),
        }
        let mut items = Vec::with_capacity(entries.max(0) as usize);
        for i in 0..entries {
            // SAFETY: i < entries; the item is owned by cfg or NULL when it
            // is not a string (a nested list).
            let item = unsafe { sys::xlu_cfg_get_listitem(list, i) };
            if item.is_null() {
                return Err(CfgError(format!(
                    "{}: item {} of `{key}' should be a string",
                    self.list_item_location(key, i as usize),
                    i + 1
                )));
            }
            // SAFETY: non-NULL items are NUL-terminated strings owned by cfg.
            items.push(
                unsafe { CStr::from_ptr(item) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        Ok(Some(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings_numbers_and_lists() {
        let mut cfg = XluConfig::parse(
            "t.cfg",
            "name = \"exp1\"\nseed = 42\n# comment\nvms = [ \"name=a\",\n  \"name=b\" ]\n",
        )
        .unwrap();
        assert_eq!(cfg.string("name").unwrap().as_deref(), Some("exp1"));
        assert_eq!(cfg.long("seed").unwrap(), Some(42));
        assert_eq!(cfg.list("vms").unwrap().unwrap(), vec!["name=a", "name=b"]);
        assert_eq!(cfg.string("absent").unwrap(), None);
        assert_eq!(cfg.list_item_location("vms", 1), "t.cfg:5");
        assert_eq!(cfg.location("seed"), "t.cfg:2");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = XluConfig::parse("bad.cfg", "a = 1\nb = = 2\n")
            .err()
            .unwrap();
        assert!(err.0.contains("bad.cfg:2"), "{err}");
    }

    #[test]
    fn each_error_reports_only_its_own_message() {
        // Two type errors in a row, then the config is dropped: the report
        // stream is flushed, rewound, flushed again and closed.
        let mut cfg = XluConfig::parse("t.cfg", "a = [ \"x\" ]\nb = \"y\"\n").unwrap();
        let first = cfg.string("a").unwrap_err();
        let second = cfg.list("b").unwrap_err();
        assert!(first.0.contains("t.cfg:1"), "{first}");
        assert!(second.0.contains("t.cfg:2"), "{second}");
        assert!(!second.0.contains("t.cfg:1"), "{second}");
    }

    #[test]
    fn wrong_type_is_an_error_with_line() {
        let mut cfg = XluConfig::parse("t.cfg", "a = [ \"x\" ]\n").unwrap();
        let err = cfg.string("a").unwrap_err();
        assert!(err.0.contains("t.cfg:1"), "{err}");
    }
}
