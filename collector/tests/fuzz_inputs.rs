//! Property tests over what agents and operators can send the collector:
//! arbitrary protobuf bytes through decode + validation, arbitrary
//! well-formed messages against the bounds, the config parser, and the
//! metrics exposition's escaping. Bounded cases in `scripts/test`
//! (PROPTEST_CASES), longer with `scripts/fuzz`.

use std::path::Path;

use outpost_collector::ingest::convert;
use outpost_proto::v1 as pb;
use proptest::prelude::*;
use prost::Message;

fn arb_result() -> impl Strategy<Value = pb::CheckResult> {
    (
        any::<u64>(),
        "\\PC{0,80}",
        "\\PC{0,40}",
        proptest::collection::hash_map("\\PC{0,10}", "\\PC{0,200}", 0..40),
        any::<i32>(),
        "\\PC{0,2000}",
        proptest::option::of(any::<f64>()),
        any::<u32>(),
    )
        .prop_map(
            |(seq, check, kind, labels, outcome, error, value, status)| pb::CheckResult {
                seq,
                check,
                kind,
                labels,
                outcome,
                error,
                value,
                http_status: status,
                ..Default::default()
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_bytes_decode_and_validate_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(msg) = pb::AgentMessage::decode(bytes.as_slice()) {
            match msg.msg {
                Some(pb::agent_message::Msg::Hello(h)) => { let _ = convert::hello(h); }
                Some(pb::agent_message::Msg::Batch(b)) => { let _ = convert::batch(b); }
                Some(pb::agent_message::Msg::Heartbeat(h)) => { let _ = convert::footprint(h.footprint); }
                None => {}
            }
        }
    }

    #[test]
    fn arbitrary_rehearsal_reports_validate_and_fold_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        use outpost_collector::rehearsal::{Book, RehearsalConfig};
        if let Ok(r) = pb::RehearsalReport::decode(bytes.as_slice()) {
            if let Ok(report) = outpost_collector::ingest::rehearsal::report(r) {
                prop_assert!(report.round >= 1 && report.results.len() <= outpost_collector::rehearsal::MAX_RESULTS_PER_REPORT);
                let mut book = Book::default();
                let (_, rec, _) = book.apply(&report, &RehearsalConfig::default(), 1);
                prop_assert!(rec.elapsed_ms().is_none_or(|e| e >= 0));
                let _ = rec.json(2, 3_600_000);
            }
        }
    }

    #[test]
    fn accepted_batches_respect_every_bound(results in proptest::collection::vec(arb_result(), 0..20), dropped_through_seq in proptest::option::of(any::<u64>())) {
        if let Ok(batch) = convert::batch(pb::ResultBatch { results, dropped_through_seq }) {
            let mut prev = 0;
            for r in &batch.results {
                prop_assert!(r.seq > prev);
                prev = r.seq;
                prop_assert!(convert::valid_id(&r.check));
                prop_assert!(r.labels.len() <= convert::MAX_LABELS);
                prop_assert!(r.labels.iter().all(|(k, v)| k.len() <= convert::MAX_LABEL_LEN && v.len() <= convert::MAX_LABEL_LEN));
                prop_assert!(r.error.len() <= convert::MAX_ERROR_LEN);
                prop_assert!(r.value.is_none_or(f64::is_finite));
            }
        }
    }

    #[test]
    fn remote_write_bodies_round_trip(results in proptest::collection::vec(arb_result(), 0..10), ext in "\\PC{0,20}") {
        use outpost_collector::remote_write::encode::{body, write_request, Item};
        if let Ok(batch) = convert::batch(pb::ResultBatch { results, dropped_through_seq: None }) {
            let items: Vec<Item> = batch.results.into_iter().map(|record| Item { agent: "a1".into(), record }).collect();
            let external = std::collections::BTreeMap::from([("collector".to_string(), ext)]);
            let req = write_request(&items, &external);
            let bytes = body(&req).unwrap();
            let raw = snap::raw::Decoder::new().decompress_vec(&bytes).unwrap();
            prop_assert_eq!(outpost_proto::prometheus::WriteRequest::decode(raw.as_slice()).unwrap(), req);
        }
    }

    #[test]
    fn webhook_signatures_are_stable_hex(secret in "\\PC{0,40}", ts in any::<i64>(), body in proptest::collection::vec(any::<u8>(), 0..500)) {
        use outpost_collector::config::evaluation::Secret;
        let s1 = outpost_collector::notify::webhook::signature(&Secret::new(secret.clone()), ts, &body);
        let s2 = outpost_collector::notify::webhook::signature(&Secret::new(secret), ts, &body);
        prop_assert_eq!(&s1, &s2);
        prop_assert!(s1.len() >= 64);
    }

    #[test]
    fn collector_config_parser_survives_arbitrary_text(text in "\\PC{0,300}") {
        match outpost_collector::config::parse(Path::new("fuzz.toml"), &text) {
            Ok(_) | Err(outpost_collector::config::ConfigError::Invalid { .. }) => {}
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
}
