//! The carry words a histogram's shards share: per block of the layout,
//! the high parts of counts that outgrew their 16-bit words, and the
//! sequence a transfer into them holds (see `shard.rs` for the protocol).
//! The table of carry blocks is installed on first use, each block too.

use super::shard::{install, HighWords, BLOCK_LEN};
use crate::primitive::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use std::ptr;

/// The shared carry words of one block of the layout, and the sequence
/// that transfers into them hold.
pub(crate) struct Carry {
    /// Even while no transfer runs; odd while one does.
    pub(super) seq: AtomicU32,
    pub(super) high: HighWords,
}

/// The memory a carry block takes, for `bytes_used`.
const CARRY_BYTES: usize = std::mem::size_of::<Carry>();

/// A histogram's carry blocks: a table with a slot per block of the layout,
/// itself installed on first use, so a histogram whose counts never needed
/// one holds a null pointer.
pub(crate) struct Carries {
    table: AtomicPtr<CarryTable>,
    blocks: usize,
}

struct CarryTable {
    slots: Box<[AtomicPtr<Carry>]>,
}

impl Carries {
    /// No carries yet, for a layout of `blocks` blocks.
    pub(crate) fn new(blocks: usize) -> Self {
        Carries {
            table: AtomicPtr::new(ptr::null_mut()),
            blocks,
        }
    }

    /// Whether any carry exists yet (Acquire, as every lookup).
    pub(crate) fn any(&self) -> bool {
        self.table().is_some()
    }

    fn table(&self) -> Option<&CarryTable> {
        // Acquire pairs with `install`'s Release.
        // SAFETY: non-null table pointers come from `install` and are freed
        // only in `drop` (`&mut self`).
        unsafe { self.table.load(Acquire).as_ref() }
    }

    /// Block `b`'s carry, if installed.
    #[inline]
    pub(super) fn get(&self, b: usize) -> Option<&Carry> {
        // Acquire pairs with `install`'s Release.
        // SAFETY: non-null carry pointers come from `install` and are freed
        // only when the table is dropped (`&mut`).
        self.table()
            .and_then(|t| unsafe { t.slots[b].load(Acquire).as_ref() })
    }

    /// Block `b`'s carry, installed (with the table) if need be.
    #[cold]
    pub(super) fn get_or_install(&self, b: usize) -> &Carry {
        let table = match self.table() {
            Some(table) => table,
            None => {
                let fresh = Box::new(CarryTable {
                    slots: (0..self.blocks)
                        .map(|_| AtomicPtr::new(ptr::null_mut()))
                        .collect(),
                });
                // SAFETY: a fresh, unshared box; installed tables are freed
                // only in `drop`.
                unsafe { &*install(&self.table, Box::into_raw(fresh)) }
            }
        };
        let slot = &table.slots[b];
        // Acquire pairs with `install`'s Release.
        let mut carry = slot.load(Acquire);
        if carry.is_null() {
            let fresh = Box::new(Carry {
                seq: AtomicU32::new(0),
                high: std::array::from_fn(|_| AtomicU64::new(0)),
            });
            // SAFETY: a fresh, unshared box.
            carry = unsafe { install(slot, Box::into_raw(fresh)) };
        }
        // SAFETY: as in `get`.
        unsafe { &*carry }
    }

    /// Bytes of the table and the carry blocks.
    pub(crate) fn bytes(&self) -> usize {
        self.table().map_or(0, |t| {
            std::mem::size_of::<CarryTable>()
                + t.slots.len() * std::mem::size_of::<AtomicPtr<Carry>>()
                + (0..t.slots.len())
                    .filter(|&b| self.get(b).is_some())
                    .count()
                    * CARRY_BYTES
        })
    }

    /// The carry word of count `index` (for fingerprints: read after the
    /// shards' words, see `Shard::activity`).
    pub(crate) fn high(&self, index: usize) -> u64 {
        // Relaxed: ordered after the shards' Acquire loads.
        self.get(index / BLOCK_LEN)
            .map_or(0, |c| c.high[index % BLOCK_LEN].load(Relaxed))
    }
}

impl Drop for Carries {
    fn drop(&mut self) {
        // Acquire pairs with `install`'s Release; `&mut self` orders this
        // after every other use.
        let table = self.table.load(Acquire);
        if table.is_null() {
            return;
        }
        // SAFETY: installed by `install` from `Box::into_raw`, freed only
        // here.
        let table = unsafe { Box::from_raw(table) };
        for slot in table.slots.iter() {
            let carry = slot.load(Acquire);
            if !carry.is_null() {
                // SAFETY: as for the table.
                drop(unsafe { Box::from_raw(carry) });
            }
        }
    }
}
