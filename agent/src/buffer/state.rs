//! The buffer's persistent state: depth, counters and marks, in one record
//! stored in the *results* tree under [`STATE_KEY`], so that every change
//! to the entries and to the numbers that describe them is one sled batch
//! — atomic across a crash. (sled batches are per tree; a separate meta
//! tree could persist a counter without the removal it counts, or a
//! sequence counter without the results that used it.)

/// Sorts after every data key (data keys are sequences below 2^56, big-
/// endian, so they start with 0x00).
pub(super) const STATE_KEY: &[u8] = &[0xFF];
const VERSION: u8 = 1;
const LEN: usize = 1 + 8 * 8;

/// What the buffer knows about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct State {
    /// Live entries and their logical bytes.
    pub entries: u64,
    pub bytes: u64,
    /// The next sequence to issue, as of this record.
    pub next_seq: u64,
    /// Every entry at or below this was removed (acknowledged or dropped
    /// oldest); a chunk may still hold such entries: they are dead.
    pub removed_through: u64,
    /// Every sequence removed without an acknowledgement is at or below.
    pub dropped_through: u64,
    /// Dropped counters by reason (`DropReason::index`).
    pub dropped: [u64; 3],
}

impl State {
    pub fn encode(&self) -> [u8; LEN] {
        let mut v = [0u8; LEN];
        v[0] = VERSION;
        let fields = [
            self.entries,
            self.bytes,
            self.next_seq,
            self.removed_through,
            self.dropped_through,
            self.dropped[0],
            self.dropped[1],
            self.dropped[2],
        ];
        for (i, f) in fields.iter().enumerate() {
            v[1 + i * 8..9 + i * 8].copy_from_slice(&f.to_be_bytes());
        }
        v
    }

    pub fn decode(v: &[u8]) -> Option<State> {
        if v.len() != LEN || v[0] != VERSION {
            return None;
        }
        let f = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(v[1 + i * 8..9 + i * 8].try_into().ok()?))
        };
        Some(State {
            entries: f(0)?,
            bytes: f(1)?,
            next_seq: f(2)?,
            removed_through: f(3)?,
            dropped_through: f(4)?,
            dropped: [f(5)?, f(6)?, f(7)?],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let s = State {
            entries: 1,
            bytes: 2,
            next_seq: 3,
            removed_through: 4,
            dropped_through: 5,
            dropped: [6, 7, u64::MAX],
        };
        assert_eq!(State::decode(&s.encode()), Some(s));
        assert_eq!(State::decode(&s.encode()[1..]), None);
        assert!(STATE_KEY > 0x00FF_FFFF_FFFF_FFFFu64.to_be_bytes().as_slice());
    }
}
