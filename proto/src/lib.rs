//! `outpost-proto`: the `outpost.v1` wire schema, and the Prometheus
//! remote-write messages the collector sends; nothing else.
//!
//! The schema lives in `proto/outpost.proto` (read its header for the
//! evolution rules); the Rust code is generated at build time by
//! `tonic-prost-build` and never edited by hand. Only this crate, the agent's
//! `transport` module and the collector's `ingest` module name these types;
//! everything else works on domain types and converts at exactly one seam on
//! each side.

#![allow(clippy::doc_markdown, missing_docs)]

/// Generated messages and the `Ingest` service for package `outpost.v1`.
pub mod v1 {
    tonic::include_proto!("outpost.v1");
}

/// Prometheus remote-write 1.0 messages (`prometheus_remote.proto`).
pub mod prometheus {
    tonic::include_proto!("prometheus");
}
