//! How entries are laid out in sled: several per value ("chunks").
//!
//! Why: sled 0.34 splits a leaf at 16 items and keeps a page-table entry
//! per page, so one key per result costs ~350 bytes of RAM per 8 results
//! *just to open the database* (measured: 41 MiB for 1,000,000 results),
//! and its page cache, sharded 256 ways, hardly evicts. A chunk of up to
//! [`PACK_ENTRIES`] results per value cuts the page count ~64-fold, and
//! entries removed on acknowledgement free their memory as the backlog
//! drains (see BENCHMARKS.md).
//!
//! Layout: key = the chunk's first sequence (u64 big-endian, so keys sort
//! by sequence and every data key starts with 0x00); value =
//! `[2u8]` then per entry `[seq u64][produced_unix_ms i64][len u32][payload]`
//! (big-endian). Sequences ascend inside a chunk and across chunks. A
//! version-1 value (`[1u8][produced i64][payload]`, one entry whose
//! sequence is the key) is still read.

use std::ops::Range;

/// Version byte of a chunk value.
const CHUNK_VERSION: u8 = 2;
/// Version byte of a single-entry value (the first layout).
const SINGLE_VERSION: u8 = 1;
const SINGLE_HEADER: usize = 9;
const ENTRY_HEADER: usize = 8 + 8 + 4;
/// Most entries in one chunk.
pub(super) const PACK_ENTRIES: usize = 64;
/// Most payload bytes in one chunk (a single larger entry gets its own).
pub(super) const PACK_BYTES: usize = 48 * 1024;

/// Logical size of one entry — what `max_bytes` counts: an 8-byte key,
/// a 9-byte header and the payload, whatever the physical layout.
pub(super) fn entry_size(payload_len: usize) -> u64 {
    (8 + SINGLE_HEADER + payload_len) as u64
}

/// The key of a chunk starting at `seq`.
pub(super) fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The sequence a key names (0 for a key that is not 8 bytes).
pub(super) fn key_seq(k: &[u8]) -> u64 {
    <[u8; 8]>::try_from(k).map_or(0, u64::from_be_bytes)
}

/// One entry inside a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    pub seq: u64,
    pub produced: i64,
    /// Where the payload lies in the value.
    pub payload: Range<usize>,
}

impl Item {
    pub fn size(&self) -> u64 {
        entry_size(self.payload.len())
    }
}

fn be_u64(v: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(at..at + 8)?.try_into().ok()?))
}

/// The entries of a stored value, or `None` when it is unreadable.
pub(super) fn decode(key: &[u8], v: &[u8]) -> Option<Vec<Item>> {
    match *v.first()? {
        SINGLE_VERSION if v.len() >= SINGLE_HEADER => Some(vec![Item {
            seq: key_seq(key),
            produced: be_u64(v, 1)? as i64,
            payload: SINGLE_HEADER..v.len(),
        }]),
        CHUNK_VERSION => {
            let mut items = Vec::new();
            let mut at = 1;
            let mut prev = 0u64;
            while at < v.len() {
                let seq = be_u64(v, at)?;
                let produced = be_u64(v, at + 8)? as i64;
                let len = u32::from_be_bytes(v.get(at + 16..at + 20)?.try_into().ok()?) as usize;
                let start = at + ENTRY_HEADER;
                let end = start.checked_add(len)?;
                if end > v.len() || seq <= prev {
                    return None;
                }
                items.push(Item {
                    seq,
                    produced,
                    payload: start..end,
                });
                prev = seq;
                at = end;
            }
            (!items.is_empty() && items[0].seq == key_seq(key)).then_some(items)
        }
        _ => None,
    }
}

/// Encodes entries (ascending) as one chunk value.
pub(super) fn encode<'a>(entries: impl IntoIterator<Item = (u64, i64, &'a [u8])>) -> Vec<u8> {
    let mut v = vec![CHUNK_VERSION];
    for (seq, produced, payload) in entries {
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&produced.to_be_bytes());
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
    }
    v
}

/// Splits ascending entries into chunk-sized runs.
pub(super) fn runs<T>(entries: &[T], len: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in entries.iter().enumerate() {
        let n = i - start;
        if n > 0 && (n >= PACK_ENTRIES || bytes + len(e) > PACK_BYTES) {
            out.push(&entries[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += len(e);
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_reject_damage() {
        let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; i as usize * 3]).collect();
        let v = encode(
            payloads
                .iter()
                .enumerate()
                .map(|(i, p)| (100 + i as u64 * 2, -(i as i64), p.as_slice())),
        );
        let items = decode(&key(100), &v).unwrap();
        assert_eq!(items.len(), 5);
        for (i, it) in items.iter().enumerate() {
            assert_eq!(it.seq, 100 + i as u64 * 2);
            assert_eq!(it.produced, -(i as i64));
            assert_eq!(&v[it.payload.clone()], payloads[i].as_slice());
        }
        assert!(decode(&key(101), &v).is_none(), "key must be the first seq");
        assert!(decode(&key(100), &v[..v.len() - 1]).is_none(), "truncated");
        assert!(decode(&key(100), &[9, 1, 2]).is_none(), "unknown version");
        assert!(decode(&key(100), &[CHUNK_VERSION]).is_none(), "empty chunk");
    }

    #[test]
    fn the_first_layout_is_still_read() {
        let mut v = vec![SINGLE_VERSION];
        v.extend_from_slice(&7i64.to_be_bytes());
        v.extend_from_slice(b"payload");
        let items = decode(&key(42), &v).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!((items[0].seq, items[0].produced), (42, 7));
        assert_eq!(&v[items[0].payload.clone()], b"payload");
        assert_eq!(items[0].size(), entry_size(7));
    }

    #[test]
    fn runs_respect_both_limits() {
        let small: Vec<usize> = vec![10; 150];
        let r = runs(&small, |n| *n);
        assert_eq!(
            r.iter().map(|r| r.len()).collect::<Vec<_>>(),
            vec![64, 64, 22]
        );
        let big: Vec<usize> = vec![PACK_BYTES / 2 + 1; 3];
        assert_eq!(runs(&big, |n| *n).len(), 3);
        let huge = vec![PACK_BYTES * 2];
        assert_eq!(runs(&huge, |n| *n).len(), 1);
        assert!(runs(&Vec::<usize>::new(), |n| *n).is_empty());
    }
}
