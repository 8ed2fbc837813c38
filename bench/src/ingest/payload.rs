//! Batches of real encoded results, built cheaply enough that the load
//! generator does not compete with the server it measures.
//!
//! A result's bytes are exactly what the agent buffers and sends
//! (`transport::convert::encode_result` of `fill::synthetic`): prost writes
//! fields in field-number order and `seq` is field 1, so the encoding of a
//! result is `08 varint(seq)` followed by the encoding of the same result
//! with `seq = 0` (a default, which prost omits). A [`Templates`] keeps the
//! seq-less encodings of a few varied results (ok and failed, different
//! checks) and frames a batch as the agent's `transport::codec::batch`
//! does. Tests prove both (decoded: label maps have no fixed order).

use std::time::SystemTime;

use bytes::{BufMut, Bytes, BytesMut};
use outpost_agent::transport::convert;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

use crate::fill;

/// Distinct result shapes cycled through (ok and failed, 50 checks).
const VARIANTS: u64 = 50;
const AGENT_MESSAGE_BATCH: u32 = 2;
const BATCH_RESULTS: u32 = 1;
const BATCH_DROPPED_THROUGH: u32 = 2;
const RESULT_SEQ: u32 = 1;

/// Seq-less encodings of synthetic results.
pub struct Templates {
    tails: Vec<Vec<u8>>,
}

impl Templates {
    /// Results as `fill::synthetic` makes them, started at `started`.
    pub fn new(started: SystemTime) -> Templates {
        let tails = (0..VARIANTS)
            .map(|v| convert::encode_result(&fill::synthetic(v, started), 0))
            .collect();
        Templates { tails }
    }

    fn tail(&self, seq: u64) -> &[u8] {
        &self.tails[(seq % VARIANTS) as usize]
    }

    /// Encoded length of result `seq`.
    pub fn result_len(&self, seq: u64) -> usize {
        1 + encoded_len_varint(seq) + self.tail(seq).len()
    }

    /// The bytes of result `seq` (what the agent buffers).
    #[cfg(test)]
    pub fn result(&self, seq: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.result_len(seq));
        encode_key(RESULT_SEQ, WireType::Varint, &mut v);
        encode_varint(seq, &mut v);
        v.extend_from_slice(self.tail(seq));
        v
    }

    /// An `AgentMessage` holding a `ResultBatch` of `first..first+n` with
    /// `dropped_through`, framed like the agent frames it.
    pub fn batch(&self, first: u64, n: u64, dropped_through: Option<u64>) -> Bytes {
        let record = |len: usize| 1 + encoded_len_varint(len as u64) + len;
        let mut inner: usize = (first..first + n).map(|s| record(self.result_len(s))).sum();
        if let Some(v) = dropped_through {
            inner += 1 + encoded_len_varint(v);
        }
        let mut buf = BytesMut::with_capacity(record(inner));
        encode_key(AGENT_MESSAGE_BATCH, WireType::LengthDelimited, &mut buf);
        encode_varint(inner as u64, &mut buf);
        for seq in first..first + n {
            encode_key(BATCH_RESULTS, WireType::LengthDelimited, &mut buf);
            encode_varint(self.result_len(seq) as u64, &mut buf);
            encode_key(RESULT_SEQ, WireType::Varint, &mut buf);
            encode_varint(seq, &mut buf);
            buf.put_slice(self.tail(seq));
        }
        if let Some(v) = dropped_through {
            encode_key(BATCH_DROPPED_THROUGH, WireType::Varint, &mut buf);
            encode_varint(v, &mut buf);
        }
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_agent::transport::codec;
    use outpost_proto::v1 as pb;
    use prost::Message;

    // Labels are a protobuf map (a HashMap in prost): their order varies
    // between encodings, so bytes are compared through a decode.
    #[test]
    fn results_and_batches_are_the_agents_bytes() {
        let started = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let t = Templates::new(started);
        for seq in [1u64, 49, 50, 127, 128, 1 << 40] {
            let want = convert::encode_result(&fill::synthetic(seq % VARIANTS, started), seq);
            let got = t.result(seq);
            assert_eq!(got.len(), want.len(), "seq {seq}");
            assert_eq!(t.result_len(seq), want.len());
            assert_eq!(
                pb::CheckResult::decode(got.as_slice()).unwrap(),
                pb::CheckResult::decode(want.as_slice()).unwrap()
            );
        }
        for (first, n, dropped) in [(1u64, 3u64, Some(0u64)), (120, 200, None), (7, 0, Some(6))] {
            let payloads: Vec<Vec<u8>> = (first..first + n).map(|s| t.result(s)).collect();
            let want = codec::batch(payloads.iter().map(Vec::as_slice), dropped);
            let got = t.batch(first, n, dropped);
            assert_eq!(got, want);
            let msg = pb::AgentMessage::decode(got).unwrap();
            let Some(pb::agent_message::Msg::Batch(b)) = msg.msg else {
                panic!("not a batch");
            };
            assert_eq!(b.results.len() as u64, n);
            assert_eq!(b.dropped_through_seq, dropped);
            assert!(b.results.iter().zip(first..).all(|(r, s)| r.seq == s));
        }
    }
}
