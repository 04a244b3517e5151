// SPDX-License-Identifier: GPL-2.0

//! `pdata_test`: a device-mapper target that keeps a bitset in persistent-data, for the
//! selftests of the kernel crate's persistent-data abstractions.
//!
//! Table: `<start> <length> pdata_test <metadata device> <#bits>`. An all-zero metadata device
//! is formatted; otherwise its superblock must check (magic, location, checksum) and hold the
//! same number of bits. The target itself fails all I/O (it has no data device).
//!
//! Messages: `set <bit>`, `clear <bit>`, `precommit` (write all but the superblock), `commit`,
//! `list` (replies with the set bits, in order, space-separated; the first 32), `test <bit>`
//! (replies 1 or 0, reading through the bitset's one-word cache), `setword
//! <index> <value>` (writes 64-bit word `index` whole, decimal), `words` (replies with the
//! words that are not zero, as `index:value`, in order; the first 32), `resize <#bits> <0|1>`
//! (the new length, up to 2^24, and the value of the new words; a commit records it, and the
//! table must then give the new length), `rewrite <mul> <xor>` (rewrites the bitset whole,
//! word `i` becoming `i * mul ^ xor`, wrapping; `DiskBitset::rewrite`), `word <index>`
//! (replies with word `index` as the array holds it, bits past the length included).
//! Status: `<#bits set> <#used>/<#total metadata blocks>`; the bits are counted with a cursor.

use core::fmt::Write;
use kernel::{
    block::bio::{Bio, Status},
    c_str,
    device_mapper::{
        persistent_data::{
            bitset::DiskBitset,
            block_manager::{bad_checksum, checksum, BlockManager, BlockValidator, Validator},
            le,
            transaction_manager::{TransactionManager, SPACE_MAP_ROOT_SIZE},
        },
        Args, MapResult, Mode, StatusFlags, StatusType, StatusWriter, Target, TargetError,
        TargetOperations,
    },
    module_dm_target, new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

module_dm_target! {
    type: PdataTest,
    target: "pdata_test",
    version: [1, 0, 0],
    name: "dm_pdata_test",
    description: "device-mapper target exercising persistent-data, for selftests",
    license: "GPL",
}

const BLOCK_SIZE: u32 = 4096;
const SUPERBLOCK: u64 = 0;
const MAGIC: u64 = 0x7365_7461_7461_6470; // "pdatates"
const CSUM_XOR: u32 = 0x5044_5453;

// Superblock layout (little endian): csum u32 @0 (of bytes 4..), magic u64 @4, location u64
// @12, #bits u32 @20, bitset root u64 @24, space map root [128] @32.
const SM_ROOT_AT: usize = 32;

struct Superblock;

impl Validator for Superblock {
    fn prepare_for_write(data: &mut [u8], location: u64) {
        le::put(data, 12, &location.to_le_bytes());
        let csum = checksum(data.get(4..).unwrap_or_default(), CSUM_XOR);
        le::put(data, 0, &csum.to_le_bytes());
    }

    fn check(data: &[u8], location: u64) -> Result {
        if le::u64_at(data, 12) != location {
            return Err(ENOTBLK);
        }
        if le::u64_at(data, 4) != MAGIC
            || le::u32_at(data, 0) != checksum(data.get(4..).unwrap_or_default(), CSUM_XOR)
        {
            return Err(bad_checksum());
        }
        Ok(())
    }
}

static SUPERBLOCK_VALIDATOR: BlockValidator =
    BlockValidator::new::<Superblock>(c_str!("pdata_test superblock"));

/// The metadata and its state; the mutex serialises messages and status.
struct Metadata {
    tm: TransactionManager,
    bitset: DiskBitset,
}

impl Metadata {
    fn format(bm: BlockManager, nr_bits: u32) -> Result<Self> {
        let mut tm = TransactionManager::create(bm, SUPERBLOCK)?;
        let bitset = DiskBitset::create(&mut tm, nr_bits)?;
        let mut md = Self { tm, bitset };
        md.commit(true)?;
        Ok(md)
    }

    fn open(bm: BlockManager, nr_bits: u32) -> Result<Self, TargetError> {
        let (sb_bits, root, sm_root) = {
            let sb = bm
                .read_lock(SUPERBLOCK, &SUPERBLOCK_VALIDATOR)
                .map_err(|e| TargetError::new(e, c_str!("Bad superblock")))?;
            let d = sb.data();
            let sm_root: [u8; SPACE_MAP_ROOT_SIZE] = le::bytes_at(d, SM_ROOT_AT);
            (le::u32_at(d, 20), le::u64_at(d, 24), sm_root)
        };
        if sb_bits != nr_bits {
            return Err(TargetError::invalid(c_str!(
                "Number of bits does not match the metadata"
            )));
        }
        let tm = TransactionManager::open(bm, SUPERBLOCK, &sm_root)
            .map_err(|e| TargetError::new(e, c_str!("Cannot open the space map")))?;
        let bitset = DiskBitset::open(&tm, root, nr_bits)?;
        Ok(Self { tm, bitset })
    }

    /// Writes everything but the superblock; with `superblock`, the superblock too.
    fn commit(&mut self, superblock: bool) -> Result {
        self.bitset.flush(&mut self.tm)?;
        if !superblock {
            return self.tm.pre_commit();
        }
        let (nr_bits, root) = (self.bitset.len(), self.bitset.root());
        self.tm
            .commit(SUPERBLOCK, &SUPERBLOCK_VALIDATOR, |d, sm_root| {
                le::put(d, 4, &MAGIC.to_le_bytes());
                le::put(d, 20, &nr_bits.to_le_bytes());
                le::put(d, 24, &root.to_le_bytes());
                le::put(d, SM_ROOT_AT, sm_root);
            })
    }

    fn count(&mut self) -> Result<u32> {
        let mut n = 0u32;
        self.bitset
            .for_each(&mut self.tm, |_, bit| n += u32::from(bit))?;
        Ok(n)
    }
}

#[pin_data]
struct PdataTest {
    #[pin]
    md: Mutex<Metadata>,
}

fn all_zero(bm: &BlockManager) -> Result<bool, TargetError> {
    let b = bm
        .read_lock_unchecked(SUPERBLOCK)
        .map_err(|e| TargetError::new(e, c_str!("Cannot read the superblock")))?;
    Ok(b.data().iter().all(|&x| x == 0))
}

const USAGE: &CStr = c_str!(
    "expected: set <bit> | clear <bit> | test <bit> | precommit | commit | list | setword <index> <value> | words | resize <#bits> <0|1> | rewrite <mul> <xor> | word <index>"
);

/// The most bits `list` replies with.
const LIST_MAX: usize = 32;

#[vtable]
impl TargetOperations for PdataTest {
    type Data = Pin<KBox<PdataTest>>;
    type PerBio = ();

    fn ctr(target: &mut Target, mut args: Args<'_>) -> Result<Pin<KBox<PdataTest>>, TargetError> {
        let path = args.next_arg(c_str!("Missing metadata device"))?;
        let nr_bits = args.next_u32(1..=1 << 24, c_str!("Invalid number of bits"))?;
        args.finish(c_str!("Too many arguments"))?;
        let dev = target
            .get_device(path, Mode::ReadWrite)
            .map_err(|e| TargetError::new(e, c_str!("Error opening metadata device")))?;
        let dev = Arc::new(dev, GFP_KERNEL)?;
        let bm = BlockManager::new(&dev, BLOCK_SIZE, 5)
            .map_err(|e| TargetError::new(e, c_str!("Cannot create block manager")))?;
        let md = if all_zero(&bm)? {
            Metadata::format(bm, nr_bits)
                .map_err(|e| TargetError::new(e, c_str!("Cannot format metadata")))?
        } else {
            Metadata::open(bm, nr_bits)?
        };
        Ok(KBox::pin_init(
            pin_init!(PdataTest {
                md <- new_mutex!(md),
            }),
            GFP_KERNEL,
        )?)
    }

    fn map(_this: Pin<&PdataTest>, _target: &Target, bio: Bio) -> MapResult {
        bio.end(Status::IOERR);
        MapResult::Submitted
    }

    fn status(
        this: Pin<&PdataTest>,
        _target: &Target,
        kind: StatusType,
        _flags: StatusFlags,
        out: &mut StatusWriter<'_>,
    ) {
        if kind != StatusType::Info {
            return;
        }
        let mut md = this.md.lock();
        let (set, free, total) = match (md.count(), md.tm.nr_free(), md.tm.nr_blocks()) {
            (Ok(s), Ok(f), Ok(t)) => (s, f, t),
            _ => {
                let _ = write!(out, "Error");
                return;
            }
        };
        let _ = write!(out, "{} {}/{}", set, total.saturating_sub(free), total);
    }

    fn message(
        this: Pin<&PdataTest>,
        _target: &Target,
        mut args: Args<'_>,
        out: &mut StatusWriter<'_>,
    ) -> Result<(), TargetError> {
        let mut md = this.md.lock();
        let nr_bits = md.bitset.len();
        let md = &mut *md;
        let failed = |e| TargetError::new(e, c_str!("metadata operation failed"));
        match args.next_keyword(&[
            ("set", Op::Set),
            ("clear", Op::Clear),
            ("precommit", Op::Commit { pre: true }),
            ("commit", Op::Commit { pre: false }),
            ("list", Op::List),
            ("setword", Op::SetWord),
            ("test", Op::Test),
            ("words", Op::Words),
            ("resize", Op::Resize),
            ("rewrite", Op::Rewrite),
            ("word", Op::Word),
        ]) {
            Some(Op::Word) => {
                let index = args.next_u32(0..=u32::MAX, USAGE)?;
                args.finish(USAGE)?;
                let word = md.bitset.word(&mut md.tm, index).map_err(failed)?;
                let _ = write!(out, "{}", word);
                Ok(())
            }
            Some(Op::Rewrite) => {
                let mul = args.next_u64(0..=u64::MAX, USAGE)?;
                let xor = args.next_u64(0..=u64::MAX, USAGE)?;
                args.finish(USAGE)?;
                md.bitset
                    .rewrite(&mut md.tm, |i| u64::from(i).wrapping_mul(mul) ^ xor)
                    .map_err(failed)
            }
            Some(Op::Resize) => {
                let bits = args.next_u32(1..=1 << 24, USAGE)?;
                let value = args.next_u32(0..=1, USAGE)? == 1;
                args.finish(USAGE)?;
                md.bitset.resize(&mut md.tm, bits, value).map_err(failed)
            }
            Some(Op::Words) => {
                args.finish(USAGE)?;
                let mut n = 0usize;
                md.bitset
                    .for_each_word(&mut md.tm, |i, word| {
                        if word != 0 && n < LIST_MAX {
                            let _ = write!(out, "{}{}:{}", if n == 0 { "" } else { " " }, i, word);
                            n += 1;
                        }
                        Ok(())
                    })
                    .map_err(failed)
            }
            Some(Op::Test) => {
                let bit = args.next_u32(0..=nr_bits - 1, USAGE)?;
                args.finish(USAGE)?;
                let set = md.bitset.test(&mut md.tm, bit).map_err(failed)?;
                let _ = write!(out, "{}", u8::from(set));
                Ok(())
            }
            Some(Op::SetWord) => {
                let index = args.next_u32(0..=u32::MAX, USAGE)?;
                let value = args.next_u64(0..=u64::MAX, USAGE)?;
                args.finish(USAGE)?;
                md.bitset.set_word(&mut md.tm, index, value).map_err(failed)
            }
            Some(Op::List) => {
                // The reply: the set bits in order, space-separated (the first LIST_MAX).
                args.finish(USAGE)?;
                let mut n = 0usize;
                md.bitset
                    .for_each(&mut md.tm, |i, bit| {
                        if bit && n < LIST_MAX {
                            let _ = write!(out, "{}{}", if n == 0 { "" } else { " " }, i);
                            n += 1;
                        }
                    })
                    .map_err(failed)
            }
            Some(op @ (Op::Set | Op::Clear)) => {
                let bit = args.next_u32(0..=nr_bits - 1, USAGE)?;
                args.finish(USAGE)?;
                if op == Op::Set {
                    md.bitset.set(&mut md.tm, bit)
                } else {
                    md.bitset.clear(&mut md.tm, bit)
                }
                .map_err(failed)
            }
            Some(Op::Commit { pre }) => {
                args.finish(USAGE)?;
                md.commit(!pre).map_err(failed)
            }
            None => Err(TargetError::invalid(USAGE)),
        }
    }
}

/// The test target's messages.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Set,
    Clear,
    Commit { pre: bool },
    List,
    SetWord,
    Test,
    Words,
    Resize,
    Rewrite,
    Word,
}
