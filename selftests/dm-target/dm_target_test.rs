// SPDX-License-Identifier: GPL-2.0

//! `target_test`: a device-mapper target that misuses the target abstraction on purpose, for
//! the selftests of what the abstraction guarantees whatever safe code does.
//!
//! Table: `<start> <length> target_test <device>`; I/O goes to the device. Messages:
//! - `put`: drops the target's handle of the device while it lives (bios are then killed).
//!   The device must stay open until the target is destroyed: a bio sent there before may
//!   still be on it.
//! - `end_io <pass|drop|end>`: what `end_io` does with each completed bio: give it back; drop
//!   it (it must complete with an I/O error); end it with its status. Ending inside `end_io`
//!   must not call `end_io` again.
//!
//! Status: `<end_io calls> <end_io mode>`.

use core::{
    fmt::Write,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};
use kernel::{
    block::bio::{Bio, Status},
    c_str,
    device_mapper::{
        Args, Device, DeviceVisitor, EndIoResult, MapResult, Mode, StatusFlags, StatusType,
        StatusWriter, Target, TargetError, TargetOperations, Visited,
    },
    module_dm_target, new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock},
};

module_dm_target! {
    type: TargetTest,
    target: "target_test",
    version: [1, 0, 0],
    name: "dm_target_test",
    description: "device-mapper target misusing the target abstraction, for selftests",
    license: "GPL",
}

const PASS: u32 = 0;
const DROP: u32 = 1;
const END: u32 = 2;
const MODES: [&str; 3] = ["pass", "drop", "end"];

/// # Locking
///
/// `dev` is taken in `map` and by the `put` message (process context); `end_io` (interrupt
/// context) only uses the atomics.
#[pin_data]
struct TargetTest {
    #[pin]
    dev: SpinLock<Option<Arc<Device>>>,
    /// The device's name, for the table line after `put`.
    name: KVec<u8>,
    mode: AtomicU32,
    end_io_calls: AtomicU64,
}

const USAGE: &CStr = c_str!("expected: put | end_io <pass|drop|end>");

#[vtable]
impl TargetOperations for TargetTest {
    type Data = Pin<KBox<TargetTest>>;
    type PerBio = ();

    fn ctr(target: &mut Target, mut args: Args<'_>) -> Result<Pin<KBox<TargetTest>>, TargetError> {
        let dev = args.next_arg(c_str!("Missing device"))?;
        args.finish(c_str!("Too many arguments"))?;
        let dev = target
            .get_device(dev, Mode::ReadWrite)
            .map_err(|e| TargetError::new(e, c_str!("Error opening device")))?;
        let mut name = KVec::new();
        name.extend_from_slice(dev.name().as_bytes(), GFP_KERNEL)?;
        let dev = Arc::new(dev, GFP_KERNEL)?;
        target.set_num_flush_bios(1);
        Ok(KBox::pin_init(
            pin_init!(TargetTest {
                dev <- new_spinlock!(Some(dev), "target_test_dev"),
                name,
                mode: AtomicU32::new(PASS),
                end_io_calls: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )?)
    }

    fn map(this: Pin<&TargetTest>, _target: &Target, mut bio: Bio) -> MapResult {
        match &*this.dev.lock() {
            Some(dev) => {
                dev.set_bio_device(&mut bio);
                MapResult::Remapped(bio)
            }
            None => MapResult::Kill(bio),
        }
    }

    fn end_io(
        this: Pin<&TargetTest>,
        _target: &Target,
        bio: Bio,
        status: &mut Status,
    ) -> EndIoResult {
        this.end_io_calls.fetch_add(1, Ordering::Relaxed);
        match this.mode.load(Ordering::Relaxed) {
            DROP => {
                drop(bio);
                EndIoResult::Kept
            }
            END => {
                bio.end(*status);
                EndIoResult::Kept
            }
            _ => EndIoResult::Done(bio),
        }
    }

    fn status(
        this: Pin<&TargetTest>,
        _target: &Target,
        kind: StatusType,
        _flags: StatusFlags,
        out: &mut StatusWriter<'_>,
    ) {
        let mode = MODES
            .get(this.mode.load(Ordering::Relaxed) as usize)
            .copied()
            .unwrap_or("?");
        let _ = match kind {
            StatusType::Info => write!(
                out,
                "{} {}",
                this.end_io_calls.load(Ordering::Relaxed),
                mode
            ),
            StatusType::Table => write!(out, "{}", core::str::from_utf8(&this.name).unwrap_or("?")),
            StatusType::Ima => Ok(()),
        };
    }

    fn message(
        this: Pin<&TargetTest>,
        _target: &Target,
        mut args: Args<'_>,
        _out: &mut StatusWriter<'_>,
    ) -> Result<(), TargetError> {
        match args.next_keyword(&[("put", Op::Put), ("end_io", Op::EndIo)]) {
            Some(Op::Put) => {
                args.finish(USAGE)?;
                let dev = this.dev.lock().take();
                // Outside the lock.
                drop(dev);
                Ok(())
            }
            Some(Op::EndIo) => {
                let mode = args
                    .next_keyword(&[("pass", PASS), ("drop", DROP), ("end", END)])
                    .ok_or(TargetError::invalid(USAGE))?;
                args.finish(USAGE)?;
                this.mode.store(mode, Ordering::Relaxed);
                Ok(())
            }
            None => Err(TargetError::invalid(USAGE)),
        }
    }

    fn iterate_devices(
        this: Pin<&TargetTest>,
        target: &Target,
        visitor: &mut DeviceVisitor<'_>,
    ) -> Visited {
        let dev = this.dev.lock().clone();
        match dev {
            Some(dev) => visitor.visit(&dev, 0, target.len()),
            None => Visited::NONE,
        }
    }
}

/// The test target's messages.
#[derive(Clone, Copy)]
enum Op {
    Put,
    EndIo,
}
