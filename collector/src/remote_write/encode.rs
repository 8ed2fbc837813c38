//! Durable results → Prometheus remote-write 1.0 request bodies
//! (protobuf `WriteRequest`, snappy block-compressed). Pure: no I/O.
//!
//! Each result becomes samples at its *produced* time (`started_unix_ms`),
//! so results that arrive hours late from an offline site carry their
//! original timestamps (a default Prometheus refuses those as out of
//! order/bounds unless `out_of_order_time_window` is set; see README).

use std::collections::BTreeMap;

use outpost_proto::prometheus as pb;
use prost::Message;

use crate::model::{Outcome, ResultRecord};

/// One result of one agent, ready to encode.
#[derive(Debug, Clone)]
pub struct Item {
    pub agent: String,
    pub record: ResultRecord,
}

/// Samples one result turns into (success, duration, and value if any).
pub fn samples_of(item: &Item) -> usize {
    2 + usize::from(item.record.value.is_some())
}

fn series(
    name: &str,
    base: &[(&str, &str)],
    external: &BTreeMap<String, String>,
    value: f64,
    ts: i64,
) -> pb::TimeSeries {
    let mut labels: Vec<pb::Label> = Vec::with_capacity(base.len() + external.len() + 1);
    labels.push(pb::Label {
        name: "__name__".into(),
        value: name.into(),
    });
    for (k, v) in external {
        labels.push(pb::Label {
            name: k.clone(),
            value: v.clone(),
        });
    }
    for (k, v) in base {
        if !v.is_empty() {
            labels.push(pb::Label {
                name: (*k).into(),
                value: (*v).into(),
            });
        }
    }
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels.dedup_by(|a, b| a.name == b.name);
    pb::TimeSeries {
        labels,
        samples: vec![pb::Sample {
            value,
            timestamp: ts,
        }],
    }
}

/// The `WriteRequest` for `items`.
pub fn write_request(items: &[Item], external: &BTreeMap<String, String>) -> pb::WriteRequest {
    let mut timeseries = Vec::with_capacity(items.len() * 3);
    for item in items {
        let r = &item.record;
        let module = r.labels.get("module").map_or("", String::as_str);
        let objective = r.labels.get("objective").map_or("", String::as_str);
        let base = [
            ("agent", item.agent.as_str()),
            ("check", r.check.as_str()),
            ("kind", r.kind.as_str()),
            ("module", module),
            ("objective", objective),
        ];
        let ts = r.started_unix_ms;
        let ok = f64::from(u8::from(r.outcome == Outcome::Ok));
        timeseries.push(series("outpost_probe_success", &base, external, ok, ts));
        timeseries.push(series(
            "outpost_probe_duration_seconds",
            &base,
            external,
            r.duration_us as f64 / 1e6,
            ts,
        ));
        if let Some(v) = r.value {
            timeseries.push(series("outpost_probe_value", &base, external, v, ts));
        }
    }
    pb::WriteRequest { timeseries }
}

/// Protobuf-encodes and snappy-compresses a request body.
pub fn body(req: &pb::WriteRequest) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Phases;

    fn item(value: Option<f64>) -> Item {
        Item {
            agent: "a1".into(),
            record: ResultRecord {
                seq: 1,
                check: "home".into(),
                kind: "page".into(),
                labels: BTreeMap::from([("module".to_string(), "home".to_string())]),
                started_unix_ms: 1_700_000_000_000,
                duration_us: 250_000,
                phases: Phases::default(),
                outcome: Outcome::Ok,
                http_status: Some(200),
                error: String::new(),
                value,
                confirmation: false,
                tls_cert_days_left: None,
                received_unix_ms: 1_700_000_100_000,
            },
        }
    }

    #[test]
    fn series_carry_sorted_labels_and_the_produced_timestamp() {
        let external = BTreeMap::from([("collector".to_string(), "c1".to_string())]);
        let req = write_request(&[item(Some(3.0))], &external);
        assert_eq!(req.timeseries.len(), samples_of(&item(Some(3.0))));
        for ts in &req.timeseries {
            let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted);
            assert!(names.contains(&"collector"));
            assert!(!names.contains(&"objective"), "empty labels are omitted");
            assert_eq!(ts.samples[0].timestamp, 1_700_000_000_000);
        }
        assert_eq!(req.timeseries[1].samples[0].value, 0.25);
    }

    #[test]
    fn body_round_trips_through_snappy_and_protobuf() {
        let req = write_request(&[item(None)], &BTreeMap::new());
        let bytes = body(&req).unwrap();
        let raw = snap::raw::Decoder::new().decompress_vec(&bytes).unwrap();
        assert_eq!(pb::WriteRequest::decode(raw.as_slice()).unwrap(), req);
    }
}
