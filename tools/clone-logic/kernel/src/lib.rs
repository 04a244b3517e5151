// SPDX-License-Identifier: GPL-2.0
//! A host stand-in for the `kernel` crate, as far as the clone target's table and message
//! parsing (rust/md/clone/config.rs) needs it, so that its unit tests run with `cargo test`.
//!
//! What is tested is not in here: `device_mapper::Args` is the kernel crate's own
//! rust/kernel/device_mapper/args.rs, included as it is. Only what it and config.rs lean on is
//! stood in for: `CStr` (core's, which has the same `to_str`), `c_str!`, the errno type and
//! `TargetError` (the same API as rust/kernel/device_mapper/target.rs, without the FFI).

/// Errors.
pub mod error {
    /// An errno, as the kernel crate's `Error`.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct Error(pub i32);

    /// The kernel crate's `Result`.
    pub type Result<T = (), E = Error> = core::result::Result<T, E>;

    /// Error codes.
    pub mod code {
        use super::Error;
        /// `-EINVAL`.
        pub const EINVAL: Error = Error(-22);
    }
}

/// Strings.
pub mod str {
    /// The kernel crate's `CStr` has core's `to_str`; that is all the parser uses.
    pub type CStr = core::ffi::CStr;
}

/// A `&'static CStr` from a string literal.
#[macro_export]
macro_rules! c_str {
    ($s:literal) => {{
        const C: &$crate::str::CStr =
            match core::ffi::CStr::from_bytes_with_nul(concat!($s, "\0").as_bytes()) {
                Ok(c) => c,
                Err(_) => panic!("c_str! with a NUL inside"),
            };
        C
    }};
}

// The kernel crate's own file; it names `super::TargetError`.
#[path = "../../../../rust/kernel/device_mapper/args.rs"]
mod args;
use device_mapper::TargetError;

/// Device-mapper.
pub mod device_mapper {
    use crate::{error::code::EINVAL, error::Error, str::CStr};

    pub use crate::args::Args;

    /// As the kernel crate's: an errno and the text the user sees.
    #[derive(Clone, Copy, Debug)]
    pub struct TargetError {
        code: Error,
        msg: &'static CStr,
    }

    impl TargetError {
        /// An error with its own text.
        pub const fn new(code: Error, msg: &'static CStr) -> Self {
            Self { code, msg }
        }

        /// An invalid argument (`-EINVAL`) with its text.
        pub const fn invalid(msg: &'static CStr) -> Self {
            Self::new(EINVAL, msg)
        }

        /// The errno.
        pub fn code(&self) -> Error {
            self.code
        }

        /// The text.
        pub fn message(&self) -> &'static CStr {
            self.msg
        }
    }
}

/// What config.rs takes from the prelude.
pub mod prelude {
    pub use crate::error::{Error, Result};
    pub use crate::str::CStr;
}
