//! Owners for the libxl IDL structs rex uses. Each calls the type's `_init`
//! when made and its `_dispose` exactly once in Drop, libxl's rule for every
//! IDL type ("libxl types" in libxl.h).

use std::ptr::NonNull;

use libxl_sys as sys;

/// Declares an owner for an IDL struct with init/dispose.
macro_rules! idl_owner {
    ($(#[$doc:meta])* $name:ident, $raw:ty, $init:path, $dispose:path) => {
        $(#[$doc])*
        pub struct $name {
            raw: $raw,
        }

        impl $name {
            pub fn new() -> Self {
                let mut raw = <$raw>::default();
                // SAFETY: init only writes the struct's default values into
                // memory we own.
                unsafe { $init(&mut raw) };
                Self { raw }
            }

            // Inside xl only: through it, safe code could point a field
            // libxl frees at memory it must not free.
            pub(super) fn raw_mut(&mut self) -> &mut $raw {
                &mut self.raw
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: raw was initialised in new(); dispose frees what
                // libxl allocated into it and runs once, here.
                unsafe { $dispose(&mut self.raw) };
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

idl_owner!(
    /// `libxl_domain_sched_params`: one domain's scheduler parameters.
    DomainSchedParams,
    sys::libxl_domain_sched_params,
    sys::libxl_domain_sched_params_init,
    sys::libxl_domain_sched_params_dispose
);

impl DomainSchedParams {
    /// For libxl calls that only read it.
    pub(super) fn raw(&self) -> &sys::libxl_domain_sched_params {
        &self.raw
    }

    /// The scheduler weight (`LIBXL_DOMAIN_SCHED_PARAM_WEIGHT_DEFAULT` after
    /// init: "leave as is").
    pub fn weight(&self) -> i32 {
        self.raw.weight
    }

    pub fn set_weight(&mut self, weight: i32) {
        self.raw.weight = weight;
    }

    /// The cap, % of one pCPU (`LIBXL_DOMAIN_SCHED_PARAM_CAP_DEFAULT` after
    /// init).
    pub fn cap(&self) -> i32 {
        self.raw.cap
    }

    pub fn set_cap(&mut self, cap: i32) {
        self.raw.cap = cap;
    }

    /// The scheduler (`LIBXL_SCHEDULER_UNKNOWN` after init: libxl then
    /// finds the domain's own, at a domain read and a cpupool read).
    pub fn scheduler(&self) -> i32 {
        self.raw.sched as i32
    }

    pub fn set_scheduler(&mut self, scheduler: i32) {
        self.raw.sched = scheduler as _;
    }
}

idl_owner!(
    /// `libxl_physinfo`: host CPU and memory totals.
    Physinfo,
    sys::libxl_physinfo,
    sys::libxl_physinfo_init,
    sys::libxl_physinfo_dispose
);

impl Physinfo {
    /// The host's memory, in Xen pages.
    pub fn total_pages(&self) -> u64 {
        self.raw.total_pages
    }

    /// Online pCPUs.
    pub fn nr_cpus(&self) -> u32 {
        self.raw.nr_cpus
    }
}

idl_owner!(
    /// `libxl_cpupoolinfo`: one cpupool, its scheduler and its CPU bitmap.
    CpupoolInfo,
    sys::libxl_cpupoolinfo,
    sys::libxl_cpupoolinfo_init,
    sys::libxl_cpupoolinfo_dispose
);

impl CpupoolInfo {
    /// The pool's scheduler, as libxl's id (see `ops::SCHEDULER_*`).
    pub fn scheduler(&self) -> i32 {
        self.raw.sched as i32
    }

    /// Number of pCPUs in the pool.
    pub fn cpu_count(&self) -> u32 {
        // SAFETY: cpumap is an initialised bitmap (empty after init, filled
        // by libxl_cpupool_info); count_set only reads size bytes of map.
        let n = unsafe { sys::libxl_bitmap_count_set(&self.raw.cpumap) };
        n.max(0) as u32
    }
}

/// The array `libxl_list_domain` returns, freed with
/// `libxl_dominfo_list_free`.
pub struct DomInfoList {
    ptr: NonNull<sys::libxl_dominfo>,
    len: usize,
}

impl DomInfoList {
    /// # Safety
    /// `ptr`/`len` must be what one `libxl_list_domain` call returned; the
    /// list takes ownership.
    pub(crate) unsafe fn from_raw(ptr: NonNull<sys::libxl_dominfo>, len: usize) -> Self {
        Self { ptr, len }
    }

    pub fn as_slice(&self) -> &[sys::libxl_dominfo] {
        // SAFETY: libxl returned len initialised entries at ptr, owned by us
        // until Drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for DomInfoList {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from libxl_list_domain; freed once, here
        // (this disposes each entry and frees the array).
        unsafe { sys::libxl_dominfo_list_free(self.ptr.as_ptr(), self.len as i32) };
    }
}

impl std::fmt::Debug for DomInfoList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomInfoList")
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_and_dispose_pair_up_without_a_context() {
        // init sets libxl's "use the default" sentinels, which rex relies on
        // to change only weight and cap.
        let params = DomainSchedParams::new();
        assert_eq!(
            params.weight(),
            sys::LIBXL_DOMAIN_SCHED_PARAM_WEIGHT_DEFAULT
        );
        assert_eq!(params.cap(), sys::LIBXL_DOMAIN_SCHED_PARAM_CAP_DEFAULT);
        drop(params);
        let pool = CpupoolInfo::new();
        assert_eq!(pool.cpu_count(), 0);
        drop(Physinfo::new());
    }

    #[test]
    fn setting_weight_and_cap_leaves_the_other_sentinels_alone() {
        let mut params = DomainSchedParams::new();
        params.set_weight(512);
        params.set_cap(50);
        assert_eq!((params.weight(), params.cap()), (512, 50));
        // What libxl_domain_sched_params_set would be handed otherwise.
        let raw = params.raw();
        assert_eq!(raw.period, sys::LIBXL_DOMAIN_SCHED_PARAM_PERIOD_DEFAULT);
        assert_eq!(raw.slice, sys::LIBXL_DOMAIN_SCHED_PARAM_SLICE_DEFAULT);
    }

    #[test]
    fn a_filled_pool_counts_its_cpus_and_dispose_frees_its_contents() {
        // Run under valgrind, this shows the name and map are freed once.
        for _ in 0..3 {
            let mut pool = CpupoolInfo::new();
            let raw = pool.raw_mut();
            // What libxl_cpupool_info leaves behind: malloc'd name and map,
            // the memory libxl_cpupoolinfo_dispose frees.
            // SAFETY: strdup of a NUL-terminated string; calloc of 2 bytes.
            unsafe {
                raw.pool_name = libc::strdup(c"Pool-0".as_ptr());
                raw.cpumap.map = libc::calloc(2, 1).cast();
            }
            assert!(!raw.pool_name.is_null() && !raw.cpumap.map.is_null());
            raw.cpumap.size = 2;
            // SAFETY: map has the 2 bytes size says.
            unsafe {
                *raw.cpumap.map = 0b1011;
                *raw.cpumap.map.add(1) = 0b1000_0000;
            }
            assert_eq!(pool.cpu_count(), 4);
        }
    }
}
