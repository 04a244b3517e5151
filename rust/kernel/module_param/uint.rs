// SPDX-License-Identifier: GPL-2.0

//! Module parameters of our own: unsigned integers in a range, settable at load time and
//! through sysfs, stored in a variable the caller owns.
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)
//!
//! The kernel finds a module's parameters in its `__param` section: an array of
//! `struct kernel_param`, each naming the parameter, the operations that parse and print it, and
//! the variable it sets. [`UintParam`] is one such entry, placed there by the hidden
//! `__module_param_uint!`, which safe macros that declare the variable themselves build on
//! (e.g. [`declare_kcopyd_throttle!`](crate::declare_kcopyd_throttle)). [`UintRange`] is the
//! operations for an unsigned integer that refuses values outside `MIN..=MAX` with `-EINVAL`
//! (`param_set_uint_minmax`), where C's `param_ops_uint` takes any value. The macro also
//! writes the `parmtype` and `parm` strings to `.modinfo`, which `modinfo -p` prints.
//!
//! This is the part of them a device-mapper target needs: kcopyd's throttle, as
//! `DECLARE_DM_KCOPYD_THROTTLE_WITH_MODULE_PARM` declares it in C, a field of a C structure
//! that kcopyd reads, writable through sysfs and refused outside its range. The 6.12 `module!`
//! macro has no parameters; mainline's (7.3) are set only at load time, have no sysfs file, no
//! range, and their own storage, so this stays beside them there.
//!
//! # Contexts
//!
//! The kernel sets a parameter while it loads the module (`modprobe ... name=value`) and when
//! its sysfs file is written, in process context, holding the module's parameter lock. The
//! variable is a `u32` that its other users read with a single (`READ_ONCE`-style) load.

use crate::{bindings, error::to_result, ffi, str::CStr};

/// Operations for an unsigned integer parameter that accepts only `MIN..=MAX`.
pub struct UintRange<const MIN: u32, const MAX: u32>;

impl<const MIN: u32, const MAX: u32> UintRange<MIN, MAX> {
    /// The `kernel_param_ops` of this range: parse with `param_set_uint_minmax`, print with
    /// `param_get_uint`.
    pub const OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
        flags: 0,
        set: Some(Self::set),
        get: Some(bindings::param_get_uint),
        free: None,
    };

    /// `kernel_param_ops.set`: parses `val` into the parameter's `u32`, or fails with `-EINVAL`
    /// (not a number, or out of range), leaving it unchanged.
    ///
    /// # Safety
    ///
    /// Called by the kernel only, with `val` a nul-terminated string and `kp` a parameter whose
    /// `arg` is a `u32`.
    unsafe extern "C" fn set(val: *const ffi::c_char, kp: *const bindings::kernel_param) -> i32 {
        // SAFETY: The caller passes the string and the parameter as the kernel does.
        let ret = unsafe { bindings::param_set_uint_minmax(val, kp, MIN, MAX) };
        match to_result(ret) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

/// One entry of the module's `__param` section: an unsigned integer parameter.
///
/// # Invariants
///
/// `name` is a static nul-terminated string, `ops` static operations that read and write a
/// `u32`, and `arg` points to a `u32` (of a [`UintParamStorage`]) that lives as long as the
/// module and that the kernel alone writes (under its parameter lock).
#[repr(transparent)]
pub struct UintParam(bindings::kernel_param);

// SAFETY: The entry itself is never written after it is built (the kernel reads it); the
// variable it points to is written by the kernel under its parameter lock only.
unsafe impl Sync for UintParam {}

/// A `'static` value holding the `u32` that a [`UintParam`] sets: the parameter's storage is
/// owned by a type that says where it is, not given as a pointer (which safe code could make
/// null or read-only).
///
/// # Safety
///
/// At byte offset `OFFSET` in `Self` there is a `u32` inside an `UnsafeCell` (e.g. a field of
/// an `Opaque` C structure), read by others with single loads and written by nobody but the
/// kernel's parameter code.
pub unsafe trait UintParamStorage: Sync {
    /// The byte offset of the `u32` in `Self`.
    const OFFSET: usize;
}

impl UintParam {
    /// An entry for the parameter `name` (the name in sysfs and on the command line), parsed by
    /// `ops`, setting the `u32` of `storage`, with sysfs permissions `perm`.
    ///
    /// # Safety
    ///
    /// `module` is the module's `THIS_MODULE` (or null for code built in).
    pub const unsafe fn new<S: UintParamStorage>(
        name: &'static CStr,
        ops: &'static bindings::kernel_param_ops,
        storage: &'static S,
        perm: u16,
        module: *mut bindings::module,
    ) -> Self {
        let base: *const S = storage;
        // By the `UintParamStorage` contract the `u32` is at `S::OFFSET` in `*storage`, inside
        // an `UnsafeCell`: written through this pointer by the parameter code only.
        let arg = base.cast::<u8>().wrapping_add(S::OFFSET).cast_mut();
        // INVARIANT: A static `u32` as the storage contract says, a static name and operations.
        Self(bindings::kernel_param {
            name: crate::str::as_char_ptr_in_const_context(name),
            mod_: module,
            ops,
            perm,
            // `module_param` uses level -1 (not an initcall level) and no flags.
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 { arg: arg.cast() },
        })
    }
}

/// The bytes of a `.modinfo` string (`key=value` and its nul), as an array of length `N`.
///
/// Evaluated at compile time: a wrong `N` fails the build.
#[doc(hidden)]
pub const fn modinfo_bytes<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Declares an unsigned integer module parameter over a `u32` that lives as long as the module.
///
/// `var` is a `&'static` [`UintParamStorage`] (a `static` of the module), whose `u32` the
/// parameter sets; `range` the values it accepts (others are refused with `-EINVAL`). For a
/// loadable module, the parameter appears as `/sys/module/<module>/parameters/<name>` with
/// permissions `perm`; built in, as `<module>.<name>` on the kernel command line. Safe to use:
/// the storage's type answers for the variable (only the kernel crate implements
/// [`UintParamStorage`], for kcopyd's throttle). Hidden: modules use the macros that declare
/// the storage themselves, such as [`declare_kcopyd_throttle!`](crate::declare_kcopyd_throttle).
#[doc(hidden)]
#[macro_export]
macro_rules! __module_param_uint {
    (module: $module:literal, name: $name:literal, var: $var:expr,
     range: $min:literal ..= $max:literal, perm: $perm:literal,
     description: $desc:literal $(,)?) => {
        const _: () = {
            #[cfg(MODULE)]
            extern "C" {
                static __this_module: $crate::types::Opaque<$crate::bindings::module>;
            }

            #[used(compiler)]
            #[link_section = "__param"]
            static PARAM: $crate::module_param::UintParam = {
                #[cfg(MODULE)]
                const NAME: &$crate::str::CStr = $crate::c_str!($name);
                #[cfg(not(MODULE))]
                const NAME: &$crate::str::CStr = $crate::c_str!(concat!($module, ".", $name));
                // SAFETY: `__this_module` is the module's own, built by the kernel at load time.
                #[cfg(MODULE)]
                let module = unsafe { __this_module.get() };
                #[cfg(not(MODULE))]
                let module = ::core::ptr::null_mut();
                // SAFETY: `module` is this module's (or null, built in).
                unsafe {
                    $crate::module_param::UintParam::new(
                        NAME,
                        &$crate::module_param::UintRange::<$min, $max>::OPS,
                        $var,
                        $perm,
                        module,
                    )
                }
            };

            #[cfg(MODULE)]
            const TYPE: &str = concat!("parmtype=", $name, ":uint\0");
            #[cfg(not(MODULE))]
            const TYPE: &str = concat!($module, ".parmtype=", $name, ":uint\0");
            #[used(compiler)]
            #[link_section = ".modinfo"]
            static PARMTYPE: [u8; TYPE.len()] = $crate::module_param::modinfo_bytes(TYPE);

            #[cfg(MODULE)]
            const DESC: &str = concat!("parm=", $name, ":", $desc, "\0");
            #[cfg(not(MODULE))]
            const DESC: &str = concat!($module, ".parm=", $name, ":", $desc, "\0");
            #[used(compiler)]
            #[link_section = ".modinfo"]
            static PARM: [u8; DESC.len()] = $crate::module_param::modinfo_bytes(DESC);
        };
    };
}
