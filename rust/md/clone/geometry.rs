// SPDX-License-Identifier: GPL-2.0

//! The clone's geometry: its length and region size, validated once by the constructor, and
//! all the arithmetic between sectors and regions (which region a sector is in, the sectors
//! of a run of regions, the regions a discard covers whole, whether a write fills a region).
//!
//! A [`Geometry`] can only be built by [`Geometry::new`], so every value in the target holds
//! its invariants: the region size is a power of two of 8 to 2^21 sectors, the length is not
//! zero, and there are at most [`MAX_REGIONS`] regions. The methods rely on them and never
//! overflow, whatever sector they are given.
//!
//! Pure arithmetic on `core` only: it is also built and unit-tested on the host
//! (tools/clone-logic).

/// At most 2^31 regions (as in C: the on-disk bitset and the bitmaps count in 32 bits).
pub(crate) const MAX_REGIONS: u64 = 1 << 31;
/// Region sizes, in sectors (as in C): a power of two in this range.
pub(crate) const MIN_REGION_SECTORS: u64 = 8;
pub(crate) const MAX_REGION_SECTORS: u64 = 1 << 21;

/// Why a length and region size do not make a geometry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum GeometryError {
    /// The region size is not a power of two in [`MIN_REGION_SECTORS`]..=[`MAX_REGION_SECTORS`].
    RegionSize,
    /// The target has no sectors.
    Empty,
    /// More than [`MAX_REGIONS`] regions.
    TooManyRegions,
}

/// A validated geometry (see the module documentation). Immutable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Geometry {
    /// Target length in sectors; not zero.
    target_size: u64,
    /// `log2` of the region size in sectors: 3 to 21.
    shift: u32,
    /// `target_size / region_size` rounded up: 1 to 2^31.
    nr_regions: u32,
}

impl Geometry {
    /// The geometry of a target of `target_size` sectors in regions of `region_size` sectors.
    pub(crate) fn new(target_size: u64, region_size: u64) -> Result<Self, GeometryError> {
        if !region_size.is_power_of_two()
            || !(MIN_REGION_SECTORS..=MAX_REGION_SECTORS).contains(&region_size)
        {
            return Err(GeometryError::RegionSize);
        }
        if target_size == 0 {
            return Err(GeometryError::Empty);
        }
        let nr = target_size.div_ceil(region_size);
        if nr > MAX_REGIONS {
            return Err(GeometryError::TooManyRegions);
        }
        Ok(Self {
            target_size,
            shift: region_size.trailing_zeros(),
            nr_regions: u32::try_from(nr).map_err(|_| GeometryError::TooManyRegions)?,
        })
    }

    /// Target length in sectors.
    pub(crate) fn target_size(&self) -> u64 {
        self.target_size
    }

    /// Region size in sectors.
    pub(crate) fn region_size(&self) -> u64 {
        1 << self.shift
    }

    /// Region size in sectors, as the `u32` block-layer limits take (at most 2^21).
    pub(crate) fn region_sectors(&self) -> u32 {
        1 << self.shift
    }

    /// Region size in bytes, as the `u32` block-layer limits take (at most 1 GiB).
    pub(crate) fn region_bytes_u32(&self) -> u32 {
        1 << (self.shift + 9)
    }

    /// Region size in bytes (at most 1 GiB).
    pub(crate) fn region_bytes(&self) -> u64 {
        1 << (self.shift + 9)
    }

    /// Number of regions (the last one may be short).
    pub(crate) fn nr_regions(&self) -> u32 {
        self.nr_regions
    }

    /// The region sector `sector` is in; `nr_regions` for a sector at or past the end.
    pub(crate) fn region_of(&self, sector: u64) -> u32 {
        if sector >= self.target_size {
            return self.nr_regions;
        }
        // Below nr_regions (sector < target_size).
        u32::try_from(sector >> self.shift).unwrap_or(self.nr_regions)
    }

    /// First sector and length in sectors of regions `first..first + count`, clipped to the
    /// target (the last region may be short; regions past the end have no sectors).
    pub(crate) fn span(&self, first: u32, count: u32) -> (u64, u64) {
        // At most 2^33 regions of at most 2^21 sectors: no overflow.
        let start = (u64::from(first) << self.shift).min(self.target_size);
        let end = ((u64::from(first) + u64::from(count)) << self.shift).min(self.target_size);
        (start, end - start)
    }

    /// Bytes of regions `first..first + count` (see [`Self::span`]).
    pub(crate) fn span_bytes(&self, first: u32, count: u32) -> u64 {
        self.span(first, count).1 << 9
    }

    /// Whether `sectors` sectors at `sector` are exactly region `r`.
    pub(crate) fn is_whole_region(&self, r: u32, sector: u64, sectors: u64) -> bool {
        let (start, len) = self.span(r, 1);
        len != 0 && sector == start && sectors == len
    }

    /// The regions that sectors `sector..sector + sectors` cover whole, as `(first, count)`
    /// (`None` if none). A range reaching the end of the target covers the short last region.
    pub(crate) fn whole_regions(&self, sector: u64, sectors: u64) -> Option<(u32, u32)> {
        let end = sector.saturating_add(sectors);
        // The first region starting at or after `sector`.
        let rs = self.region_size();
        let first = sector
            .div_ceil(rs)
            .checked_mul(rs)
            .map_or(self.nr_regions, |s| self.region_of(s));
        let last = if end >= self.target_size {
            self.nr_regions
        } else {
            self.region_of(end)
        };
        (first < last).then(|| (first, last - first))
    }

    /// Growing from `old` (the same region size, fewer sectors): the sectors that the old
    /// last region gains, when it was short, as `(region, first sector, sectors)`. They were
    /// past the end of the clone: if that region is copied, the destination holds nothing of
    /// the source there, and they must be copied before the region counts as copied again.
    pub(crate) fn grown_tail(&self, old: &Geometry) -> Option<(u32, u64, u64)> {
        if old.shift != self.shift || old.target_size >= self.target_size {
            return None;
        }
        // `old` has at least one region (its length is not zero).
        let r = old.nr_regions.saturating_sub(1);
        let (start, len) = self.span(r, 1);
        let end = start + len;
        (end > old.target_size).then(|| (r, old.target_size, end - old.target_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(len: u64, rs: u64) -> Geometry {
        Geometry::new(len, rs).unwrap()
    }

    #[test]
    fn new_validates_region_size_length_and_count() {
        assert_eq!(Geometry::new(100, 0), Err(GeometryError::RegionSize));
        assert_eq!(Geometry::new(100, 4), Err(GeometryError::RegionSize));
        assert_eq!(Geometry::new(100, 24), Err(GeometryError::RegionSize));
        assert_eq!(Geometry::new(100, 1 << 22), Err(GeometryError::RegionSize));
        assert_eq!(Geometry::new(0, 8), Err(GeometryError::Empty));
        assert_eq!(
            Geometry::new((MAX_REGIONS << 3) + 1, 8),
            Err(GeometryError::TooManyRegions)
        );
        let m = g(MAX_REGIONS << 3, 8);
        assert_eq!(m.nr_regions(), 1 << 31);
        assert_eq!(g(1, 1 << 21).nr_regions(), 1);
        assert_eq!(g(17, 8).nr_regions(), 3);
        assert_eq!(g(16, 8).region_bytes(), 4096);
        assert_eq!(g(16, 8).region_size(), 8);
        assert_eq!(g(16, 1 << 21).region_sectors(), 1 << 21);
        assert_eq!(g(16, 1 << 21).region_bytes_u32(), 1 << 30);
    }

    #[test]
    fn region_of_is_clamped_past_the_end() {
        let geo = g(20, 8);
        assert_eq!(geo.region_of(0), 0);
        assert_eq!(geo.region_of(7), 0);
        assert_eq!(geo.region_of(8), 1);
        assert_eq!(geo.region_of(19), 2);
        assert_eq!(geo.region_of(20), 3);
        assert_eq!(geo.region_of(u64::MAX), 3);
    }

    #[test]
    fn span_clips_the_short_last_region() {
        let geo = g(20, 8);
        assert_eq!(geo.span(0, 1), (0, 8));
        assert_eq!(geo.span(1, 2), (8, 12));
        assert_eq!(geo.span(2, 1), (16, 4));
        assert_eq!(geo.span(3, 1), (20, 0));
        assert_eq!(geo.span(u32::MAX, u32::MAX), (20, 0));
        assert_eq!(geo.span_bytes(2, 1), 4 * 512);
        let big = g(MAX_REGIONS << 21, 1 << 21);
        assert_eq!(big.span(u32::MAX, 1), (MAX_REGIONS << 21, 0));
    }

    #[test]
    fn whole_region_writes() {
        let geo = g(20, 8);
        assert!(geo.is_whole_region(1, 8, 8));
        assert!(!geo.is_whole_region(1, 8, 7));
        assert!(!geo.is_whole_region(1, 9, 8));
        assert!(geo.is_whole_region(2, 16, 4));
        assert!(!geo.is_whole_region(2, 16, 8));
        assert!(!geo.is_whole_region(3, 20, 0));
    }

    #[test]
    fn discards_cover_whole_regions_only() {
        let geo = g(20, 8);
        assert_eq!(geo.whole_regions(0, 20), Some((0, 3)));
        assert_eq!(geo.whole_regions(1, 19), Some((1, 2)));
        assert_eq!(geo.whole_regions(1, 14), None);
        assert_eq!(geo.whole_regions(0, 15), Some((0, 1)));
        assert_eq!(geo.whole_regions(8, 8), Some((1, 1)));
        assert_eq!(geo.whole_regions(16, 4), Some((2, 1)));
        assert_eq!(geo.whole_regions(16, 3), None);
        assert_eq!(geo.whole_regions(u64::MAX - 4, 4), None);
        assert_eq!(geo.whole_regions(0, u64::MAX), Some((0, 3)));
    }

    #[test]
    fn grown_tail_is_what_a_short_last_region_gains() {
        // 100 sectors in regions of 8: region 12 has 4 sectors (96..100).
        let old = g(100, 8);
        assert_eq!(g(200, 8).grown_tail(&old), Some((12, 100, 4)));
        // Growing within the region: it gains only up to the new end.
        assert_eq!(g(102, 8).grown_tail(&old), Some((12, 100, 2)));
        // A whole last region gains nothing; neither does the same size, a smaller
        // size or another region size.
        assert_eq!(g(200, 8).grown_tail(&g(96, 8)), None);
        assert_eq!(g(100, 8).grown_tail(&old), None);
        assert_eq!(g(50, 8).grown_tail(&old), None);
        assert_eq!(g(200, 16).grown_tail(&old), None);
        // One short region.
        assert_eq!(
            g(1 << 20, 1 << 21).grown_tail(&g(8, 1 << 21)),
            Some((0, 8, (1 << 20) - 8))
        );
    }
}
