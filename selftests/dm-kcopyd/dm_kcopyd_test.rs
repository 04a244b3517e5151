// SPDX-License-Identifier: GPL-2.0

//! `kcopyd_test`: a device-mapper target that drives kcopyd for the selftests.
//!
//! Table: `<start> <length> kcopyd_test <source> <destination>`; I/O to the device goes to the
//! destination. Messages start jobs:
//! - `copy <sector> <count> <jobs>`: copies the range from source to destination, as `jobs`
//!   jobs running at once;
//! - `zero <sector> <count>`: zeroes the range of the destination.
//!
//! Status: `<started> <completed> <read errors> <write errors>`, counting jobs.

use core::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering},
};
use kernel::{
    block::bio::Bio,
    c_str,
    device_mapper::{
        kcopyd::{Client, CopyDone, CopyResult, Region, Throttle},
        Args, Device, DeviceVisitor, MapResult, Mode, StatusFlags, StatusType, StatusWriter,
        Target, TargetError, TargetOperations, Visited,
    },
    module_dm_target,
    prelude::*,
    sync::Arc,
};

module_dm_target! {
    type: KcopydTest,
    target: "kcopyd_test",
    version: [1, 0, 0],
    name: "dm_kcopyd_test",
    description: "device-mapper target exercising kcopyd, for selftests",
    license: "GPL",
}

static THROTTLE: Throttle = Throttle::new(100);

/// Job counters, shared with the jobs in flight.
#[derive(Default)]
struct Counters {
    started: AtomicU64,
    completed: AtomicU64,
    read_errors: AtomicU64,
    write_errors: AtomicU64,
}

impl CopyDone for Counters {
    type Pointer = Arc<Counters>;

    fn copy_done(this: Arc<Counters>, result: CopyResult) {
        if result.read_error {
            this.read_errors.fetch_add(1, Ordering::Relaxed);
        }
        if result.write_errors != 0 {
            this.write_errors.fetch_add(1, Ordering::Relaxed);
        }
        this.completed.fetch_add(1, Ordering::Release);
    }
}

struct KcopydTest {
    // Dropped first: waits for the jobs, which use the devices.
    client: Client,
    src: Arc<Device>,
    dst: Arc<Device>,
    counters: Arc<Counters>,
}

const USAGE: &CStr = c_str!("expected: copy <sector> <count> <jobs> | zero <sector> <count>");

impl KcopydTest {
    fn copy(&self, sector: u64, count: u64, jobs: u64) -> Result<(), TargetError> {
        if jobs == 0 || count % jobs != 0 {
            return Err(TargetError::invalid(c_str!("count must split into jobs")));
        }
        let end = sector
            .checked_add(count)
            .filter(|&e| e <= self.src.sectors());
        if end.is_none() {
            return Err(TargetError::invalid(c_str!("range beyond the source")));
        }
        let each = count / jobs;
        for i in 0..jobs {
            // Below `sector + count`, which fits (checked above).
            let at = sector + i * each;
            let from = Region {
                device: &self.src,
                sector: at,
                count: each,
            };
            self.client
                .copy::<Counters>(from, &[(&self.dst, at)], self.counters.clone())
                .map_err(|(e, _)| TargetError::new(e, c_str!("copy refused")))?;
            self.counters.started.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn zero(&self, sector: u64, count: u64) -> Result<(), TargetError> {
        let region = Region {
            device: &self.dst,
            sector,
            count,
        };
        self.client
            .zero::<Counters>(region, self.counters.clone())
            .map_err(|(e, _)| TargetError::new(e, c_str!("zero refused")))?;
        self.counters.started.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[vtable]
impl TargetOperations for KcopydTest {
    type Data = KBox<KcopydTest>;
    type PerBio = ();

    fn ctr(target: &mut Target, mut args: Args<'_>) -> Result<KBox<KcopydTest>, TargetError> {
        let src = args.next_arg(c_str!("Missing source device"))?;
        let dst = args.next_arg(c_str!("Missing destination device"))?;
        args.finish(c_str!("Too many arguments"))?;
        let src = target
            .get_device(src, Mode::ReadOnly)
            .map_err(|e| TargetError::new(e, c_str!("Error opening source device")))?;
        let dst = target
            .get_device(dst, Mode::ReadWrite)
            .map_err(|e| TargetError::new(e, c_str!("Error opening destination device")))?;
        let src = Arc::new(src, GFP_KERNEL)?;
        let dst = Arc::new(dst, GFP_KERNEL)?;
        let client = Client::new(Some(&THROTTLE), &[src.clone(), dst.clone()])
            .map_err(|e| TargetError::new(e, c_str!("Cannot create kcopyd client")))?;
        target.set_num_flush_bios(1);
        Ok(KBox::new(
            KcopydTest {
                client,
                src,
                dst,
                counters: Arc::new(Counters::default(), GFP_KERNEL)?,
            },
            GFP_KERNEL,
        )?)
    }

    fn map(this: &KcopydTest, _target: &Target, mut bio: Bio) -> MapResult {
        this.dst.set_bio_device(&mut bio);
        MapResult::Remapped(bio)
    }

    fn status(
        this: &KcopydTest,
        _target: &Target,
        kind: StatusType,
        _flags: StatusFlags,
        out: &mut StatusWriter<'_>,
    ) {
        let c = &this.counters;
        let _ = match kind {
            StatusType::Info => write!(
                out,
                "{} {} {} {}",
                c.started.load(Ordering::Relaxed),
                c.completed.load(Ordering::Acquire),
                c.read_errors.load(Ordering::Relaxed),
                c.write_errors.load(Ordering::Relaxed)
            ),
            StatusType::Table => write!(out, "{} {}", this.src.name(), this.dst.name()),
            StatusType::Ima => Ok(()),
        };
    }

    fn message(
        this: &KcopydTest,
        _target: &Target,
        mut args: Args<'_>,
        _out: &mut StatusWriter<'_>,
    ) -> Result<(), TargetError> {
        let op = args.next_keyword(&[("copy", Op::Copy), ("zero", Op::Zero)]);
        let sector = args.next_u64(0..=u64::MAX, USAGE)?;
        let count = args.next_u64(1..=u64::MAX, USAGE)?;
        match op {
            Some(Op::Copy) => {
                let jobs = args.next_u64(1..=1024, USAGE)?;
                args.finish(USAGE)?;
                this.copy(sector, count, jobs)
            }
            Some(Op::Zero) => {
                args.finish(USAGE)?;
                this.zero(sector, count)
            }
            None => Err(TargetError::invalid(USAGE)),
        }
    }

    fn iterate_devices(
        this: &KcopydTest,
        target: &Target,
        visitor: &mut DeviceVisitor<'_>,
    ) -> Visited {
        visitor.visit(&this.dst, 0, target.len())
    }
}

/// The test target's messages.
#[derive(Clone, Copy)]
enum Op {
    Copy,
    Zero,
}
