//! Sets of vendor ids, kept as sorted ranges.
//!
//! A TC string can name any of 65,535 vendors, one by one in a bitfield or as ranges, and a
//! hostile string can repeat one huge range thousands of times. Keeping the ranges themselves
//! (sorted, merged) makes the memory a set needs proportional to the text it came from, never
//! to the ids it covers, and membership a binary search.

use alloc::vec::Vec;

/// A set of vendor ids (1 to 65,535).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdSet {
    /// Inclusive, sorted, disjoint and non-adjacent ranges.
    ranges: Vec<(u16, u16)>,
}

impl IdSet {
    /// The set covering the inclusive ranges given, in any order, overlapping or not. Ranges
    /// whose end precedes their start cover nothing.
    pub fn from_ranges(ranges: Vec<(u16, u16)>) -> IdSet {
        let mut set = IdSet::default();
        for (start, end) in ranges {
            set.insert(start, end);
        }
        set
    }

    /// Adds the ids `start..=end` (nothing when `end < start`). Ranges given in ascending
    /// order, as encoders write them, are appended; others are merged in place (linear in the
    /// ranges held, and without pulling a sort into the wasm).
    pub fn insert(&mut self, start: u16, end: u16) {
        if end < start {
            return;
        }
        // The first range that overlaps or touches `start..=end`, and the first after those.
        let from = self
            .ranges
            .partition_point(|&(_, e)| u32::from(e) + 1 < u32::from(start));
        let mut to = from;
        let (mut start, mut end) = (start, end);
        while let Some(&(s, e)) = self.ranges.get(to) {
            if u32::from(s) > u32::from(end) + 1 {
                break;
            }
            start = start.min(s);
            end = end.max(e);
            to += 1;
        }
        if from == to {
            self.ranges.insert(from, (start, end));
        } else {
            self.ranges.drain(from + 1..to);
            if let Some(range) = self.ranges.get_mut(from) {
                *range = (start, end);
            }
        }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u16) -> bool {
        self.ranges
            .binary_search_by(|&(start, end)| {
                if end < id {
                    core::cmp::Ordering::Less
                } else if start > id {
                    core::cmp::Ordering::Greater
                } else {
                    core::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many ids the set holds.
    pub fn len(&self) -> usize {
        self.ranges
            .iter()
            .map(|&(start, end)| usize::from(end - start) + 1)
            .sum()
    }

    /// The inclusive ranges, sorted, disjoint and never adjacent.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.ranges.iter().flat_map(|&(start, end)| start..=end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn merges_sorts_and_drops_empty_ranges() {
        let set = IdSet::from_ranges(vec![(10, 12), (1, 1), (13, 20), (5, 3), (2, 2), (11, 11)]);
        assert_eq!(set.ranges(), &[(1, 2), (10, 20)]);
        assert_eq!(set.len(), 13);
        assert!(set.contains(1) && set.contains(15) && set.contains(20));
        assert!(!set.contains(0) && !set.contains(3) && !set.contains(9) && !set.contains(21));
        assert_eq!(set.iter().take(4).collect::<Vec<_>>(), vec![1, 2, 10, 11]);
    }

    #[test]
    fn inserts_merge_with_every_range_they_touch() {
        let mut set = IdSet::from_ranges(vec![(1, 2), (5, 6), (9, 9), (20, 30)]);
        set.insert(3, 4);
        assert_eq!(set.ranges(), &[(1, 6), (9, 9), (20, 30)]);
        set.insert(8, 19);
        assert_eq!(set.ranges(), &[(1, 6), (8, 30)]);
        set.insert(40, 41);
        set.insert(35, 35);
        set.insert(32, 33);
        assert_eq!(
            set.ranges(),
            &[(1, 6), (8, 30), (32, 33), (35, 35), (40, 41)]
        );
        set.insert(0, u16::MAX);
        assert_eq!(set.ranges(), &[(0, u16::MAX)]);
    }

    #[test]
    fn the_extremes() {
        let set = IdSet::from_ranges(vec![(1, u16::MAX), (1, u16::MAX)]);
        assert_eq!(set.len(), 65_535);
        assert!(set.contains(u16::MAX));
        assert!(IdSet::default().is_empty());
        assert!(!IdSet::default().contains(1));
    }
}
