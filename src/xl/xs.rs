//! A xenstore connection, for the values guests publish about themselves.

use std::ffi::{c_uint, CString};
use std::io;
use std::ptr::NonNull;

use libxl_sys as sys;

/// An open xenstore handle, closed in Drop.
#[derive(Debug)]
pub struct Xenstore {
    raw: NonNull<sys::xs_handle>,
}

impl Xenstore {
    pub fn open() -> io::Result<Self> {
        // SAFETY: xs_open has no preconditions; NULL (with errno) on failure.
        let raw = unsafe { sys::xs_open(0) };
        NonNull::new(raw)
            .map(|raw| Self { raw })
            .ok_or_else(io::Error::last_os_error)
    }

    /// The raw bytes at `path`, `None` when it does not exist. The value is
    /// whatever was written there: callers treat guest paths as untrusted.
    pub fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let cpath = c_string(path)?;
        let mut len: c_uint = 0;
        // SAFETY: the handle is open; XBT_NULL is "no transaction"; len is an
        // out-parameter. The result is malloc'd or NULL with errno set.
        let ptr = unsafe { sys::xs_read(self.raw.as_ptr(), 0, cpath.as_ptr(), &mut len) };
        if ptr.is_null() {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENOENT) => Ok(None),
                _ => Err(err),
            };
        }
        // SAFETY: xs_read returned len bytes at ptr, ours to copy then free.
        let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) }.to_vec();
        // SAFETY: allocated by xs_read with malloc; freed once.
        unsafe { libc::free(ptr) };
        Ok(Some(bytes))
    }

    /// Writes `value` at `path` (dom0's own keys: rex writes nothing a
    /// guest owns).
    pub fn write(&self, path: &str, value: &[u8]) -> io::Result<()> {
        let cpath = c_string(path)?;
        let len = c_uint::try_from(value.len())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the handle is open; XBT_NULL; value is len readable bytes.
        let ok = unsafe {
            sys::xs_write(
                self.raw.as_ptr(),
                0,
                cpath.as_ptr(),
                value.as_ptr().cast(),
                len,
            )
        };
        errno_unless(ok)
    }

    /// Removes `path`; one that does not exist is already removed.
    pub fn remove(&self, path: &str) -> io::Result<()> {
        let cpath = c_string(path)?;
        // SAFETY: the handle is open; XBT_NULL.
        if unsafe { sys::xs_rm(self.raw.as_ptr(), 0, cpath.as_ptr()) } {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOENT) => Ok(()),
            _ => Err(err),
        }
    }
}

impl Xenstore {
    /// Asks xenstored to report every change at or below `path`, with
    /// `token`. xenstored also reports the path once as the watch is set.
    pub fn watch(&self, path: &str, token: &str) -> io::Result<()> {
        let (cpath, ctoken) = (c_string(path)?, c_string(token)?);
        // SAFETY: the handle is open; both strings are NUL-terminated and
        // copied by libxenstore.
        errno_unless(unsafe { sys::xs_watch(self.raw.as_ptr(), cpath.as_ptr(), ctoken.as_ptr()) })
    }

    /// Removes the watch set by [`Xenstore::watch`] with the same pair.
    pub fn unwatch(&self, path: &str, token: &str) -> io::Result<()> {
        let (cpath, ctoken) = (c_string(path)?, c_string(token)?);
        // SAFETY: as in watch.
        errno_unless(unsafe { sys::xs_unwatch(self.raw.as_ptr(), cpath.as_ptr(), ctoken.as_ptr()) })
    }

    /// The fd that becomes readable when a watch event is pending (owned
    /// by the handle: not to be closed).
    pub fn fileno(&self) -> io::Result<std::os::fd::RawFd> {
        // SAFETY: the handle is open; -1 with errno on failure.
        match unsafe { sys::xs_fileno(self.raw.as_ptr()) } {
            -1 => Err(io::Error::last_os_error()),
            fd => Ok(fd),
        }
    }

    /// The path of the next pending watch event, `None` when none is
    /// pending; never blocks.
    pub fn next_event(&self) -> io::Result<Option<Vec<u8>>> {
        // SAFETY: the handle is open. NULL with errno EAGAIN when nothing
        // is pending; else one malloc'd block holding the vector and its
        // strings.
        let vec = unsafe { sys::xs_check_watch(self.raw.as_ptr()) };
        if vec.is_null() {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN) => Ok(None),
                _ => Err(err),
            };
        }
        // SAFETY: a watch vector has XS_WATCH_PATH and XS_WATCH_TOKEN
        // entries, NUL-terminated strings inside the same block.
        let path = unsafe {
            let entry = *vec.add(sys::xs_watch_type_XS_WATCH_PATH as usize);
            std::ffi::CStr::from_ptr(entry).to_bytes().to_vec()
        };
        // SAFETY: the block came from xs_check_watch's malloc; freed once.
        unsafe { libc::free(vec.cast()) };
        Ok(Some(path))
    }
}

fn c_string(text: &str) -> io::Result<CString> {
    CString::new(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// libxenstore's boolean result: false means errno says why.
fn errno_unless(ok: bool) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Drop for Xenstore {
    fn drop(&mut self) {
        // SAFETY: raw came from xs_open and is closed once, here.
        unsafe { sys::xs_close(self.raw.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs a machine without Xen; tests/run-all runs it there"]
    fn without_xenstored_open_fails_cleanly() {
        let present = [
            "/dev/xen/xenbus",
            "/var/run/xenstored/socket",
            "/run/xenstored/socket",
        ]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
        assert!(!present, "a Xen host");
        for _ in 0..3 {
            assert!(Xenstore::open().is_err());
        }
    }
}
