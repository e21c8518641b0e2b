//! The libxl calls rex makes, as safe methods on any [`Context`].

use std::ffi::CStr;
use std::ptr::NonNull;

use libxl_sys as sys;

use super::ctx::Context;
use super::error::{XlError, ERROR_FAIL};
use super::types::{CpupoolInfo, DomInfoList, DomainSchedParams, Physinfo};

/// libxl's scheduler ids.
pub const SCHEDULER_CREDIT: i32 = sys::libxl_scheduler_LIBXL_SCHEDULER_CREDIT as i32;
pub const SCHEDULER_CREDIT2: i32 = sys::libxl_scheduler_LIBXL_SCHEDULER_CREDIT2 as i32;

/// libxl's name for a scheduler id (`credit`, `credit2`, …).
pub fn scheduler_name(sched: i32) -> String {
    // SAFETY: a pure lookup; NULL for values outside the enum.
    let name = unsafe { sys::libxl_scheduler_to_string(sched as sys::libxl_scheduler) };
    if name.is_null() {
        format!("scheduler {sched}")
    } else {
        // SAFETY: non-NULL results are static NUL-terminated strings.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Safe libxl calls, for owned and borrowed contexts alike.
pub trait Libxl: Context {
    /// Every domain, in one `libxl_list_domain` call.
    fn list_domains(&self) -> Result<DomInfoList, XlError> {
        self.begin();
        let mut n: i32 = 0;
        // SAFETY: the context is live; n is an out-parameter.
        let ptr = unsafe { sys::libxl_list_domain(self.as_raw(), &mut n) };
        match NonNull::new(ptr) {
            // SAFETY: a non-NULL result is an array of n entries we now own.
            Some(ptr) => Ok(unsafe { DomInfoList::from_raw(ptr, n.max(0) as usize) }),
            None => Err(XlError::new(
                "libxl_list_domain",
                ERROR_FAIL,
                self.log_sink().and_then(|s| s.take()),
            )),
        }
    }

    /// The domain's name, or `None` when it has none (or is gone).
    fn domain_name(&self, domid: u32) -> Option<String> {
        self.begin();
        // SAFETY: the context is live; the result is malloc'd or NULL.
        let ptr = unsafe { sys::libxl_domid_to_name(self.as_raw(), domid) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: non-NULL is a NUL-terminated string we own; copied, then
        // freed once with free() as libxl allocates it with malloc.
        let name = unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: see above.
        unsafe { libc::free(ptr.cast()) };
        Some(name)
    }

    fn physinfo(&self) -> Result<Physinfo, XlError> {
        self.begin();
        let mut info = Physinfo::new();
        // SAFETY: the context is live; info is initialised and ours.
        let rc = unsafe { sys::libxl_get_physinfo(self.as_raw(), info.raw_mut()) };
        self.check("libxl_get_physinfo", rc)?;
        Ok(info)
    }

    /// Free host memory, KiB.
    fn free_memory_kb(&self) -> Result<u64, XlError> {
        self.begin();
        let mut kb: u64 = 0;
        // SAFETY: the context is live; kb is an out-parameter.
        let rc = unsafe { sys::libxl_get_free_memory(self.as_raw(), &mut kb) };
        self.check("libxl_get_free_memory", rc)?;
        Ok(kb)
    }

    fn cpupool_info(&self, poolid: u32) -> Result<CpupoolInfo, XlError> {
        self.begin();
        let mut info = CpupoolInfo::new();
        // SAFETY: the context is live; info is initialised and ours, and
        // disposed in its Drop whether or not this succeeds.
        let rc = unsafe { sys::libxl_cpupool_info(self.as_raw(), info.raw_mut(), poolid) };
        self.check("libxl_cpupool_info", rc)?;
        Ok(info)
    }

    /// The scheduler of cpupool 0 (libxl_get_scheduler).
    fn default_scheduler(&self) -> Result<i32, XlError> {
        self.begin();
        // SAFETY: the context is live.
        let rc = unsafe { sys::libxl_get_scheduler(self.as_raw()) };
        self.check("libxl_get_scheduler", rc)
    }

    /// A domain's parameters under its pool's scheduler (`sched` filled in).
    fn domain_sched_params(&self, domid: u32) -> Result<DomainSchedParams, XlError> {
        self.begin();
        let mut params = DomainSchedParams::new();
        // SAFETY: the context is live; params is initialised and ours.
        let rc =
            unsafe { sys::libxl_domain_sched_params_get(self.as_raw(), domid, params.raw_mut()) };
        self.check("libxl_domain_sched_params_get", rc)?;
        Ok(params)
    }

    fn set_domain_sched_params(
        &self,
        domid: u32,
        params: &DomainSchedParams,
    ) -> Result<(), XlError> {
        self.begin();
        // SAFETY: the context is live; libxl only reads params.
        let rc = unsafe { sys::libxl_domain_sched_params_set(self.as_raw(), domid, params.raw()) };
        self.check("libxl_domain_sched_params_set", rc).map(drop)
    }

    /// The domain's current balloon target, KiB.
    fn memory_target_kb(&self, domid: u32) -> Result<u64, XlError> {
        self.begin();
        let mut kb: u64 = 0;
        // SAFETY: the context is live; kb is an out-parameter.
        let rc = unsafe { sys::libxl_get_memory_target(self.as_raw(), domid, &mut kb) };
        self.check("libxl_get_memory_target", rc)?;
        Ok(kb)
    }

    /// Sets an absolute balloon target and enforces it (`enforce = 1`, as
    /// `xl mem-set` does), so the maximum follows the target.
    fn set_memory_target(&self, domid: u32, target_kb: u64) -> Result<(), XlError> {
        self.begin();
        let target = i64::try_from(target_kb).map_err(|_| {
            XlError::new(
                "libxl_set_memory_target",
                sys::libxl_error_ERROR_INVAL,
                Some(format!("target {target_kb} KiB out of range")),
            )
        })?;
        // SAFETY: the context is live; plain value arguments.
        let rc = unsafe { sys::libxl_set_memory_target(self.as_raw(), domid, target, 0, 1) };
        self.check("libxl_set_memory_target", rc).map(drop)
    }
}

impl<C: Context + ?Sized> Libxl for C {}
