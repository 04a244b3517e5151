// SPDX-License-Identifier: GPL-2.0

//! Bitmaps.
//!
//! 6.12 layer: mainline (7.3) has a `kernel::bitmap` module (its `Bitmap`, which no target
//! here uses); 6.12 has none. This gives 6.12 the module, holding what both kernels get from
//! us: [`AtomicBitmap`] (on 7.3 it is added to mainline's module the same way).

mod atomic;
pub use atomic::{AtomicBitmap, WORD_BITS};
