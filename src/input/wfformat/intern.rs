//! Interned strings: a workflow names each task and file many times (a Montage mConcatFit lists
//! thousands of parents, and every edge is usually stated from both ends), so each distinct
//! string is stored once and referred to by a 4-byte [`Sym`].

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// A distinct string of one workflow, numbered from 0 in order of first appearance.
pub(super) type Sym = u32;

/// The distinct strings of one document, concatenated into one buffer.
///
/// The lookup table holds only symbols and hash tags and compares against the buffer, so a
/// string costs its bytes plus about 24 bytes, with no allocation of its own.
pub(super) struct Interner {
    text: String,
    /// Where each symbol's text ends in `text`; it starts where the previous one ends.
    ends: Vec<usize>,
    /// Open addressing with linear probing. A slot holds the top 32 bits of the string's hash
    /// (placing it, and sparing most text comparisons) above `symbol + 1`; 0 when empty.
    slots: Vec<u64>,
    /// Keyed per process: file contents choose the strings, so a fixed hash could be flooded.
    hasher: RandomState,
}

impl Default for Interner {
    fn default() -> Self {
        Interner::with_capacity(0)
    }
}

impl Interner {
    /// Room for about `strings` distinct strings before the table grows; growing costs a pass
    /// over the table, sizing ahead spares it.
    pub(super) fn with_capacity(strings: usize) -> Self {
        let slots = (strings.saturating_mul(2)).next_power_of_two().max(1 << 10);
        Interner {
            text: String::new(),
            ends: Vec::with_capacity(strings),
            slots: vec![0; slots],
            hasher: RandomState::new(),
        }
    }

    /// The symbol for `text`, adding it when new; `None` once 2^32 - 1 strings are held.
    pub(super) fn intern(&mut self, text: &str) -> Option<Sym> {
        let tag = self.hasher.hash_one(text) >> 32;
        let mask = self.slots.len() - 1;
        let mut slot = home(tag, self.slots.len());
        loop {
            match self.slots.get(slot).copied() {
                Some(0) | None => break,
                Some(held) => {
                    let sym = (held as u32).wrapping_sub(1);
                    if held >> 32 == tag && self.get(sym) == text {
                        return Some(sym);
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
        let sym = Sym::try_from(self.ends.len())
            .ok()
            .filter(|&sym| sym < u32::MAX)?;
        self.text.push_str(text);
        self.ends.push(self.text.len());
        if let Some(empty) = self.slots.get_mut(slot) {
            *empty = tag << 32 | u64::from(sym + 1);
        }
        // Keep the table at most half full so probe sequences stay short.
        if self.ends.len() * 2 > self.slots.len() {
            self.grow();
        }
        Some(sym)
    }

    /// The text of `sym` (empty for a symbol this interner did not hand out).
    pub(super) fn get(&self, sym: Sym) -> &str {
        let index = sym as usize;
        let start = match index.checked_sub(1) {
            Some(previous) => self.ends.get(previous).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(index).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or_default()
    }

    /// Doubles the table, placing each entry by its tag alone (no text is read).
    fn grow(&mut self) {
        let mut slots = vec![0u64; self.slots.len() * 2];
        let mask = slots.len() - 1;
        for &held in self.slots.iter().filter(|&&held| held != 0) {
            let mut slot = home(held >> 32, slots.len());
            while slots.get(slot).is_some_and(|&taken| taken != 0) {
                slot = (slot + 1) & mask;
            }
            if let Some(empty) = slots.get_mut(slot) {
                *empty = held;
            }
        }
        self.slots = slots;
    }
}

/// The first slot to probe for a 32-bit tag: its fraction of the table, so that the order of
/// tags, and therefore of probe runs, is kept when the table doubles.
fn home(tag: u64, slots: usize) -> usize {
    ((tag * slots as u64) >> 32) as usize
}

/// Hashes symbols for maps keyed by them. Symbols are handed out in sequence by the interner,
/// not chosen by the file, so a multiplicative hash is enough and far cheaper than SipHash.
#[derive(Default)]
pub(super) struct SymHasher(u64);

impl Hasher for SymHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A hash map keyed by interned symbols.
pub(super) type SymMap<V> = HashMap<Sym, V, BuildHasherDefault<SymHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_a_symbol_across_growth() {
        let mut interner = Interner::default();
        let names: Vec<String> = (0..5000).map(|index| format!("task_{index}")).collect();
        let syms: Vec<Sym> = names
            .iter()
            .map(|name| interner.intern(name).expect("room"))
            .collect();
        assert_eq!(syms, (0..5000).collect::<Vec<Sym>>());
        for (name, &sym) in names.iter().zip(&syms) {
            assert_eq!(interner.intern(name), Some(sym));
            assert_eq!(interner.get(sym), name);
        }
        assert_eq!(interner.intern(""), Some(5000));
        assert_eq!(interner.get(5000), "");
        assert_eq!(interner.get(99_999), "");
    }
}
