//! Interned strings: a workflow names each task and file many times (a Montage mConcatFit lists
//! thousands of parents, and every edge is usually stated from both ends), so each distinct
//! string is stored once and referred to by a 4-byte [`Sym`].

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// A distinct string of one workflow, numbered from 0 in order of first appearance.
pub(super) type Sym = u32;

/// The distinct strings of one document, each stored once in one buffer.
///
/// A document of a million tasks makes tens of millions of lookups into a table of millions of
/// strings, so a lookup is laid out to touch memory twice: its slot in the table, then the
/// string's record in the buffer, which holds the symbol and the length beside the bytes. A
/// string costs its bytes plus about 28 bytes, with no allocation of its own.
pub(super) struct Interner {
    /// Per symbol, in order: its number (4 bytes, little-endian), its length in bytes (4 bytes,
    /// little-endian), then its text.
    records: Vec<u8>,
    /// Where each symbol's record starts in `records`, for [`Interner::get`].
    starts: Vec<u64>,
    /// Open addressing with linear probing. A slot holds the top 28 bits of the string's hash
    /// (placing it, and sparing most record reads) above `record start + 1` in the low 36
    /// bits; 0 when empty.
    slots: Vec<u64>,
    /// Keyed per process: file contents choose the strings, so a fixed hash could be flooded.
    hasher: RandomState,
    /// The tags of the list [`Interner::intern_all`] is working on, kept to spare allocations.
    scratch: Vec<u64>,
}

/// Bits of a slot that hold the record's start (plus one): 64 GiB of names.
const START_BITS: u32 = 36;
const START_MASK: u64 = (1 << START_BITS) - 1;
/// Bytes before a record's text: its symbol and its length.
const HEADER: usize = 8;

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
            records: Vec::new(),
            starts: Vec::with_capacity(strings),
            slots: vec![0; slots],
            hasher: RandomState::new(),
            scratch: Vec::new(),
        }
    }

    /// The symbol for `text`, adding it when new; `None` once 2^32 - 1 strings, or 64 GiB of
    /// them, are held.
    pub(super) fn intern(&mut self, text: &str) -> Option<Sym> {
        let tag = self.hasher.hash_one(text) >> START_BITS;
        self.intern_tagged(text, tag)
    }

    /// The symbols of `texts`, in order, appended to `out`: the same symbols as interning each
    /// in turn. `false` (with `out` partly filled) once the table is full.
    ///
    /// A large document's table is far bigger than the caches, so a lookup waits on memory
    /// twice: its slot, then the string's record. One string's waits depend on each other, but
    /// different strings' do not, so the slots, then the records they point at, are read for
    /// the whole list first, letting the processor overlap those waits; the lookups proper
    /// then find everything cached.
    pub(super) fn intern_all<'t>(
        &mut self,
        texts: impl Iterator<Item = &'t str> + Clone,
        out: &mut Vec<Sym>,
    ) -> bool {
        let slots = self.slots.len();
        let mut tags = std::mem::take(&mut self.scratch);
        tags.clear();
        tags.extend(
            texts
                .clone()
                .map(|text| self.hasher.hash_one(text) >> START_BITS),
        );
        let mut touched = 0u64;
        for &tag in &tags {
            touched ^= self.slots.get(home(tag, slots)).copied().unwrap_or(0);
        }
        for &tag in &tags {
            let held = self.slots.get(home(tag, slots)).copied().unwrap_or(0);
            if held != 0 && held >> START_BITS == tag {
                let start = ((held & START_MASK) - 1) as usize;
                touched ^= u64::from(self.records.get(start).copied().unwrap_or(0));
            }
        }
        // Keeps the reads above: their values are not needed, only their cache lines.
        std::hint::black_box(touched);
        let mut complete = true;
        for (text, &tag) in texts.zip(&tags) {
            match self.intern_tagged(text, tag) {
                Some(sym) => out.push(sym),
                None => {
                    complete = false;
                    break;
                }
            }
        }
        self.scratch = tags;
        complete
    }

    fn intern_tagged(&mut self, text: &str, tag: u64) -> Option<Sym> {
        let mask = self.slots.len() - 1;
        let mut slot = home(tag, self.slots.len());
        loop {
            match self.slots.get(slot).copied() {
                Some(0) | None => break,
                Some(held) => {
                    if held >> START_BITS == tag {
                        let start = ((held & START_MASK) - 1) as usize;
                        if let Some(sym) = self.matches(start, text) {
                            return Some(sym);
                        }
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
        let sym = Sym::try_from(self.starts.len())
            .ok()
            .filter(|&sym| sym < u32::MAX)?;
        let len = u32::try_from(text.len()).ok()?;
        let start = self.records.len();
        let held = u64::try_from(start + 1)
            .ok()
            .filter(|&held| held <= START_MASK)?;
        self.records.extend_from_slice(&sym.to_le_bytes());
        self.records.extend_from_slice(&len.to_le_bytes());
        self.records.extend_from_slice(text.as_bytes());
        self.starts.push(start as u64);
        if let Some(empty) = self.slots.get_mut(slot) {
            *empty = tag << START_BITS | held;
        }
        // Keep the table at most half full so probe sequences stay short.
        if self.starts.len() * 2 > self.slots.len() {
            self.grow();
        }
        Some(sym)
    }

    /// The symbol of the record at `start` when its text is `text`.
    fn matches(&self, start: usize, text: &str) -> Option<Sym> {
        let header = self.records.get(start..start + HEADER)?;
        let (sym, len) = header.split_at(4);
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        if len != text.len() {
            return None;
        }
        let body = self.records.get(start + HEADER..start + HEADER + len)?;
        (body == text.as_bytes()).then(|| Sym::from_le_bytes(sym.try_into().unwrap_or_default()))
    }

    /// How many distinct strings are held; symbols run from 0 to this, exclusive.
    pub(super) fn len(&self) -> usize {
        self.starts.len()
    }

    /// The text of `sym` (empty for a symbol this interner did not hand out).
    pub(super) fn get(&self, sym: Sym) -> &str {
        let Some(&start) = self.starts.get(sym as usize) else {
            return "";
        };
        let start = start as usize;
        let len = self
            .records
            .get(start + 4..start + HEADER)
            .and_then(|len| len.try_into().ok())
            .map_or(0, |len| u32::from_le_bytes(len) as usize);
        // Every record's text came in as a `&str`, so it is valid UTF-8 and this cannot fail.
        self.records
            .get(start + HEADER..start + HEADER + len)
            .and_then(|body| std::str::from_utf8(body).ok())
            .unwrap_or_default()
    }

    /// Doubles the table, placing each entry by its tag alone (no record is read).
    fn grow(&mut self) {
        let mut slots = vec![0u64; self.slots.len() * 2];
        let mask = slots.len() - 1;
        for &held in self.slots.iter().filter(|&&held| held != 0) {
            let mut slot = home(held >> START_BITS, slots.len());
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

/// The first slot to probe for a 28-bit tag: its fraction of the table, so that the order of
/// tags, and therefore of probe runs, is kept when the table doubles.
fn home(tag: u64, slots: usize) -> usize {
    ((tag * slots as u64) >> (64 - START_BITS)) as usize
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

    #[test]
    fn interning_a_list_gives_the_symbols_of_interning_each_in_turn() {
        let names: Vec<String> = (0..20_000)
            .map(|index| format!("file_{}", (index * 7919) % 12_000))
            .collect();
        let mut one_by_one = Interner::default();
        let expected: Vec<Sym> = names
            .iter()
            .map(|name| one_by_one.intern(name).expect("room"))
            .collect();
        let mut listed = Interner::default();
        let mut got = Vec::new();
        for chunk in names.chunks(333) {
            assert!(listed.intern_all(chunk.iter().map(String::as_str), &mut got));
        }
        assert_eq!(got, expected);
        assert_eq!(listed.len(), 12_000);
        for (name, &sym) in names.iter().zip(&got) {
            assert_eq!(listed.get(sym), name);
        }
    }
}
