//! The anonymous-page record's chunks by key: a vector sorted by key,
//! searched by halves, that remembers where the last search ended.
//!
//! Faults come in runs over one 2 MiB block, and a fault looks its chunk up
//! more than once (its frame, then its mark): the remembered position
//! answers those with one comparison, where a search of the standard
//! `BTreeMap` compares the key with up to eleven others a node. Adding or
//! dropping a chunk moves the entries after it (once per 2 MiB block
//! touched or emptied); everything else reads in place.

use core::cell::Cell;
use core::ops::RangeInclusive;

use alloc::vec::Vec;

/// Values by `u64` key, in key order.
#[derive(Debug)]
pub(crate) struct ChunkMap<V> {
    /// (key, value), sorted by key, keys distinct.
    entries: Vec<(u64, V)>,
    /// Where the last search found its key: checked first by the next one.
    /// Only a guess: entries move when one is added or dropped.
    last_found: Cell<usize>,
}

impl<V> Default for ChunkMap<V> {
    fn default() -> Self {
        ChunkMap { entries: Vec::new(), last_found: Cell::new(0) }
    }
}

impl<V: Clone> Clone for ChunkMap<V> {
    fn clone(&self) -> Self {
        ChunkMap { entries: self.entries.clone(), last_found: Cell::new(self.last_found.get()) }
    }
}

impl<V> ChunkMap<V> {
    /// `Ok(position)` of `key`, or `Err(position)` where it would go.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    fn search(&self, key: u64) -> Result<usize, usize> {
        let guess = self.last_found.get();
        if self.entries.get(guess).is_some_and(|&(at, _)| at == key) {
            return Ok(guess);
        }
        let found = self.entries.binary_search_by_key(&key, |&(at, _)| at);
        if let Ok(position) = found {
            self.last_found.set(position);
        }
        found
    }

    /// How many keys are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `key` is held.
    #[cfg(test)]
    pub(crate) fn contains_key(&self, key: u64) -> bool {
        self.search(key).is_ok()
    }

    /// The value of `key`.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn get(&self, key: u64) -> Option<&V> {
        self.search(key).ok().map(|position| &self.entries[position].1)
    }

    /// The value of `key`, to change.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        self.search(key).ok().map(|position| &mut self.entries[position].1)
    }

    /// The value of `key`, made by `make` first if `key` is not held.
    // Inlined: on the path of every anonymous fault (DESIGN.md, "Inlining").
    #[inline(always)]
    pub(crate) fn get_or_insert_with(&mut self, key: u64, make: impl FnOnce() -> V) -> &mut V {
        let position = match self.search(key) {
            Ok(position) => position,
            Err(position) => {
                self.entries.insert(position, (key, make()));
                self.last_found.set(position);
                position
            }
        };
        &mut self.entries[position].1
    }

    /// Adds `value` under `key` if `key` is not held; else gives it back.
    pub(crate) fn insert_if_vacant(&mut self, key: u64, value: V) -> Result<(), V> {
        match self.search(key) {
            Ok(_) => Err(value),
            Err(position) => {
                self.entries.insert(position, (key, value));
                Ok(())
            }
        }
    }

    /// Takes `key` and its value out.
    pub(crate) fn remove(&mut self, key: u64) -> Option<V> {
        let position = self.search(key).ok()?;
        Some(self.entries.remove(position).1)
    }

    /// The (key, value) pairs whose keys lie in `keys`, in key order.
    pub(crate) fn range(&self, keys: RangeInclusive<u64>) -> impl Iterator<Item = (u64, &V)> + '_ {
        let (first, last) = (*keys.start(), *keys.end());
        let start = self.entries.partition_point(|&(at, _)| at < first);
        self.entries[start..].iter().take_while(move |&&(at, _)| at <= last).map(|(at, value)| (*at, value))
    }

    /// Every (key, value) pair, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.entries.iter().map(|(at, value)| (*at, value))
    }

    /// Adds `value` under `key`, greater than every key held: building a
    /// map in key order.
    pub(crate) fn push_last(&mut self, key: u64, value: V) {
        debug_assert!(self.entries.last().is_none_or(|&(at, _)| at < key), "keys come in order");
        self.entries.push((key, value));
    }

    /// Takes every pair out, in key order, leaving the map empty.
    pub(crate) fn take_all(&mut self) -> Vec<(u64, V)> {
        self.last_found.set(0);
        core::mem::take(&mut self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_in_order_whatever_the_guess() {
        let mut map = ChunkMap::default();
        for key in [50u64, 10, 30, 20, 40] {
            *map.get_or_insert_with(key, || 0) += key;
        }
        assert_eq!(map.iter().map(|(key, _)| key).collect::<Vec<_>>(), [10, 20, 30, 40, 50]);
        // The guess points at 50's old place after these moves: still right.
        assert_eq!(map.get(50), Some(&50));
        assert_eq!(map.get(10), Some(&10));
        assert_eq!(map.remove(10), Some(10));
        assert_eq!(map.get(20), Some(&20));
        assert_eq!(map.get(10), None);
        assert_eq!(map.insert_if_vacant(20, 7), Err(7));
        assert_eq!(map.insert_if_vacant(25, 7), Ok(()));
        assert_eq!(
            map.range(20..=40).map(|(key, &value)| (key, value)).collect::<Vec<_>>(),
            [(20, 20), (25, 7), (30, 30), (40, 40)]
        );
        assert_eq!(map.range(41..=49).count(), 0);
        assert_eq!(map.range(0..=u64::MAX).count(), 5);
        assert_eq!(map.take_all().len(), 5);
        assert!(map.is_empty() && map.get(20).is_none());
    }
}
