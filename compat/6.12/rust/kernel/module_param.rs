// SPDX-License-Identifier: GPL-2.0

//! Module parameters.
//!
//! 6.12 layer: mainline (7.3) has a `kernel::module_param` module (the parameters of its
//! `module!` macro); 6.12 has none. This gives 6.12 the module, holding what both kernels get
//! from us (on 7.3 it is added to mainline's module the same way).

mod uint;
pub use uint::{modinfo_bytes, UintParam, UintParamStorage, UintRange};
