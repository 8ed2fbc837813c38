//! The agent's gRPC codec: it sends pre-encoded `AgentMessage` bytes and
//! decodes `CollectorMessage`s.
//!
//! Why not prost's codec: the buffer already holds every result as the
//! prost encoding of its wire `CheckResult`. Protobuf encodes a repeated
//! message field as one `(key, length, bytes)` record per element, so a
//! whole `AgentMessage { batch: ResultBatch { results, dropped_through } }`
//! is framed by copying the stored bytes into one buffer: no decode, no
//! re-encode, no per-result allocation, and the memory a batch costs is
//! its size on the wire. `tests` prove the framed bytes decode to exactly
//! the message prost would have built.

use bytes::{BufMut, Bytes, BytesMut};
use outpost_proto::v1 as pb;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

use crate::buffer::Entry;

/// Field numbers (see `proto/outpost.proto`).
const AGENT_MESSAGE_BATCH: u32 = 2;
const BATCH_RESULTS: u32 = 1;
const BATCH_DROPPED_THROUGH: u32 = 2;

/// Encodes a whole `AgentMessage` (hello or heartbeat) with prost.
pub fn message(msg: pb::agent_message::Msg) -> Bytes {
    Bytes::from(pb::AgentMessage { msg: Some(msg) }.encode_to_vec())
}

/// Frames buffered entries as an `AgentMessage` holding one `ResultBatch`.
pub fn batch<'a>(
    payloads: impl Iterator<Item = &'a [u8]> + Clone,
    dropped_through: Option<u64>,
) -> Bytes {
    let record = |len: usize| 1 + encoded_len_varint(len as u64) + len;
    let mut inner: usize = payloads.clone().map(|p| record(p.len())).sum();
    if let Some(v) = dropped_through {
        inner += 1 + encoded_len_varint(v);
    }
    let mut buf = BytesMut::with_capacity(record(inner));
    encode_key(AGENT_MESSAGE_BATCH, WireType::LengthDelimited, &mut buf);
    encode_varint(inner as u64, &mut buf);
    for p in payloads {
        encode_key(BATCH_RESULTS, WireType::LengthDelimited, &mut buf);
        encode_varint(p.len() as u64, &mut buf);
        buf.put_slice(p);
    }
    if let Some(v) = dropped_through {
        encode_key(BATCH_DROPPED_THROUGH, WireType::Varint, &mut buf);
        encode_varint(v, &mut buf);
    }
    buf.freeze()
}

/// Frames `entries` (see [`batch`]).
pub fn batch_of(entries: &[Entry], dropped_through: Option<u64>) -> Bytes {
    batch(entries.iter().map(|e| e.payload.as_ref()), dropped_through)
}

/// Sends `Bytes` as they are; decodes `CollectorMessage`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// The encoding half of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

/// The decoding half of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AckDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = pb::CollectorMessage;
    type Encoder = RawEncoder;
    type Decoder = AckDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> AckDecoder {
        AckDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for AckDecoder {
    type Item = pb::CollectorMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        pb::CollectorMessage::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("undecodable collector message: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(seq: u64, check: &str) -> pb::CheckResult {
        pb::CheckResult {
            seq,
            check: check.to_string(),
            kind: "page".into(),
            labels: [("module".to_string(), "portal".to_string())].into(),
            started_unix_ms: 1_700_000_000_000 + seq as i64,
            duration_us: 1234,
            phases: Some(pb::Phases {
                dns_us: Some(1),
                ..pb::Phases::default()
            }),
            outcome: pb::Outcome::Failed as i32,
            http_status: 500,
            error: "x".repeat(300),
            value: Some(0.5),
            confirmation: seq.is_multiple_of(2),
            tls_cert_days_left: None,
        }
    }

    #[test]
    fn framed_batches_decode_to_the_message_prost_builds() {
        for (n, dropped) in [
            (0usize, None),
            (1, Some(7u64)),
            (300, None),
            (3, Some(u64::MAX)),
        ] {
            let results: Vec<pb::CheckResult> =
                (0..n as u64).map(|s| result(s + 1, "home")).collect();
            let payloads: Vec<Vec<u8>> = results.iter().map(Message::encode_to_vec).collect();
            let framed = batch(payloads.iter().map(Vec::as_slice), dropped);
            let want = pb::AgentMessage {
                msg: Some(pb::agent_message::Msg::Batch(pb::ResultBatch {
                    results: results.clone(),
                    dropped_through_seq: dropped,
                })),
            };
            assert_eq!(framed.as_ref(), want.encode_to_vec().as_slice(), "n={n}");
            assert_eq!(pb::AgentMessage::decode(framed).unwrap(), want);
        }
    }
}
