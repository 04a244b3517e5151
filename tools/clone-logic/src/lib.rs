// SPDX-License-Identifier: GPL-2.0
//! The clone target's pure logic, compiled from the kernel module's own files
//! (rust/md/clone), so that its unit tests (`#[cfg(test)]` in those files) run on the host
//! with `cargo test`. These files use `core` only; what needs the kernel stays out of them.
#![allow(dead_code)]
extern crate std;

#[path = "../../../rust/md/clone/geometry.rs"]
pub mod geometry;

#[path = "../../../rust/md/clone/copy_control/controller.rs"]
pub mod controller;

#[path = "../../../rust/md/clone/config.rs"]
pub mod config;
