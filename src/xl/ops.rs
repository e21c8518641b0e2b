//! The libxl calls rex makes, as safe methods on any [`Context`].

use std::ffi::CStr;

use libxl_sys as sys;

use super::ctx::{libxl_call, Context};
use super::error::XlError;
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
        let mut n: i32 = 0;
        // SAFETY: n is an out-parameter.
        let ptr = libxl_call!(self, sys::libxl_list_domain(ctx, &mut n) -> ptr)?;
        // SAFETY: a non-NULL result is an array of n entries we now own.
        Ok(unsafe { DomInfoList::from_raw(ptr, n.max(0) as usize) })
    }

    /// The domain's name, or `None` when it has none (or is gone).
    fn domain_name(&self, domid: u32) -> Option<String> {
        // SAFETY: a plain value argument; the result is malloc'd or NULL.
        let ptr = libxl_call!(self, sys::libxl_domid_to_name(ctx, domid) -> ptr).ok()?;
        // SAFETY: non-NULL is a NUL-terminated string we own; copied, then
        // freed once with free() as libxl allocates it with malloc.
        let name = unsafe { CStr::from_ptr(ptr.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: see above.
        unsafe { libc::free(ptr.as_ptr().cast()) };
        Some(name)
    }

    fn physinfo(&self) -> Result<Physinfo, XlError> {
        let mut info = Physinfo::new();
        // SAFETY: info is initialised and ours.
        libxl_call!(self, sys::libxl_get_physinfo(ctx, info.raw_mut()))?;
        Ok(info)
    }

    /// Free host memory, KiB.
    fn free_memory_kb(&self) -> Result<u64, XlError> {
        let mut kb: u64 = 0;
        // SAFETY: kb is an out-parameter.
        libxl_call!(self, sys::libxl_get_free_memory(ctx, &mut kb))?;
        Ok(kb)
    }

    fn cpupool_info(&self, poolid: u32) -> Result<CpupoolInfo, XlError> {
        let mut info = CpupoolInfo::new();
        // SAFETY: info is initialised and ours, and disposed in its Drop
        // whether or not this succeeds.
        libxl_call!(self, sys::libxl_cpupool_info(ctx, info.raw_mut(), poolid))?;
        Ok(info)
    }

    /// The scheduler of cpupool 0 (libxl_get_scheduler).
    fn default_scheduler(&self) -> Result<i32, XlError> {
        // SAFETY: no other arguments; the rc is the scheduler id.
        libxl_call!(self, sys::libxl_get_scheduler(ctx))
    }

    /// A domain's parameters under its pool's scheduler (`sched` filled in).
    fn domain_sched_params(&self, domid: u32) -> Result<DomainSchedParams, XlError> {
        let mut params = DomainSchedParams::new();
        // SAFETY: params is initialised and ours.
        libxl_call!(
            self,
            sys::libxl_domain_sched_params_get(ctx, domid, params.raw_mut())
        )?;
        Ok(params)
    }

    fn set_domain_sched_params(
        &self,
        domid: u32,
        params: &DomainSchedParams,
    ) -> Result<(), XlError> {
        // SAFETY: libxl only reads params, an initialised struct.
        libxl_call!(
            self,
            sys::libxl_domain_sched_params_set(ctx, domid, params.raw())
        )
        .map(drop)
    }

    /// The domain's current balloon target, KiB.
    fn memory_target_kb(&self, domid: u32) -> Result<u64, XlError> {
        let mut kb: u64 = 0;
        // SAFETY: kb is an out-parameter.
        libxl_call!(self, sys::libxl_get_memory_target(ctx, domid, &mut kb))?;
        Ok(kb)
    }

    /// Sets an absolute balloon target and enforces it (`enforce = 1`, as
    /// `xl mem-set` does), so the maximum follows the target.
    fn set_memory_target(&self, domid: u32, target_kb: u64) -> Result<(), XlError> {
        let target = i64::try_from(target_kb).map_err(|_| {
            XlError::new(
                "libxl_set_memory_target",
                sys::libxl_error_ERROR_INVAL,
                Some(format!("target {target_kb} KiB out of range")),
            )
        })?;
        // SAFETY: plain value arguments (0: absolute, not relative).
        libxl_call!(self, sys::libxl_set_memory_target(ctx, domid, target, 0, 1)).map(drop)
    }
}

impl<C: Context + ?Sized> Libxl for C {}
