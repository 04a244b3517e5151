// SPDX-License-Identifier: GPL-2.0

//! Module parameters: unsigned integers in a range, settable at load time and through sysfs.
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
//! The 6.12 `module!` macro has no parameters; this is the part of them a device-mapper target
//! needs (kcopyd's throttle, as `DECLARE_DM_KCOPYD_THROTTLE_WITH_MODULE_PARM` declares it in C).
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
/// `u32`, and `arg` points to a `u32` that lives as long as the module and that the kernel
/// alone writes (under its parameter lock).
#[repr(transparent)]
pub struct UintParam(bindings::kernel_param);

// SAFETY: The entry itself is never written after it is built (the kernel reads it); the
// variable it points to is written by the kernel under its parameter lock only.
unsafe impl Sync for UintParam {}

impl UintParam {
    /// An entry for the parameter `name` (the name in sysfs and on the command line), parsed by
    /// `ops`, setting `*arg`, with sysfs permissions `perm`.
    ///
    /// # Safety
    ///
    /// `arg` points to a `u32` that lives as long as the module, is read by others with single
    /// loads and written by nobody but the kernel's parameter code; `module` is the module's
    /// `THIS_MODULE` (or null for code built in).
    pub const unsafe fn new(
        name: &'static CStr,
        ops: &'static bindings::kernel_param_ops,
        arg: *mut u32,
        perm: u16,
        module: *mut bindings::module,
    ) -> Self {
        // INVARIANT: The caller's guarantees, and a static name and operations.
        Self(bindings::kernel_param {
            name: name.as_char_ptr(),
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
/// `var` is an expression for a `*mut u32` to that variable, evaluated at compile time; `range`
/// the values it accepts (others are refused with `-EINVAL`). For a loadable module, the
/// parameter appears as `/sys/module/<module>/parameters/<name>` with permissions `perm`; built
/// in, as `<module>.<name>` on the kernel command line.
///
/// # Safety
///
/// The expansion trusts `var` with what [`UintParam::new`] needs: it lives as long as the
/// module, is read with single loads and written only by the kernel's parameter code. Nothing
/// checks that, so the macro is hidden: it is the building block of macros that declare the
/// variable themselves, such as [`declare_kcopyd_throttle!`](crate::declare_kcopyd_throttle),
/// and those are what modules use.
#[doc(hidden)]
#[macro_export]
macro_rules! __module_param_uint {
    (module: $module:literal, name: $name:literal, var: $var:expr, range: $min:literal ..= $max:literal,
     perm: $perm:literal, description: $desc:literal $(,)?) => {
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
                // SAFETY: The macro's caller promises what `UintParam::new` needs of `var`.
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
