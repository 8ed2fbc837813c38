//! Property tests over everything outside input reaches in the agent:
//! the config parser, certificate DER, redirect locations, and buffered
//! payloads. They run a bounded number of cases in `scripts/test`
//! (PROPTEST_CASES, default 256) and longer with `scripts/fuzz`.
//! No input may panic; errors must be the typed, positioned kind.

use std::path::Path;

use outpost_agent::config::{self, ConfigError};
use proptest::prelude::*;

const GOOD: &str = r#"[agent]
id = "a1"
[buffer]
path = "/tmp/never-opened"
[collector]
endpoints = ["http://127.0.0.1:7400"]
[[check]]
name = "home"
interval = "30s"
timeout = "5s"
[check.page]
url = "http://127.0.0.1:8080/"
body_matches = ["Welcome \\d+"]
"#;

fn check_error(text: &str, result: Result<config::Config, ConfigError>) {
    match result {
        Ok(_) => {}
        Err(ConfigError::Invalid {
            line, column, fix, ..
        }) => {
            let lines = text.lines().count().max(1);
            assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}");
            assert!(column >= 1);
            assert!(!fix.is_empty());
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

proptest! {
    #[test]
    fn config_parser_survives_arbitrary_text(text in "\\PC{0,400}") {
        let r = config::parse(Path::new("fuzz.toml"), &text);
        check_error(&text, r);
    }

    #[test]
    fn config_parser_survives_mutations(pos in 0usize..GOOD.len(), len in 0usize..20, insert in "\\PC{0,12}") {
        let mut text = GOOD.to_string();
        let start = (0..=pos).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let mut end = (start + len).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        text.replace_range(start..end, &insert);
        let r = config::parse(Path::new("fuzz.toml"), &text);
        check_error(&text, r);
    }

    #[test]
    fn certificate_parser_survives_arbitrary_der(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = outpost_agent::tls_cert::not_after_unix(&bytes);
        let mut framed = vec![0x30, 0x82, (bytes.len() >> 8) as u8, bytes.len() as u8];
        framed.extend_from_slice(&bytes);
        let _ = outpost_agent::tls_cert::days_left(&framed);
    }

    #[test]
    fn redirect_locations_never_panic(loc in "[ -~]{0,200}") {
        let base: http::Uri = "https://portal.example:8443/a/b?c=d".parse().unwrap();
        if let Ok(v) = http::HeaderValue::from_str(&loc) {
            if let Ok(u) = outpost_agent::http::resolve_location(&base, &v) {
                prop_assert!(u.scheme().is_some());
            }
        }
    }

    #[test]
    fn json_timestamps_never_panic(text in "\\PC{0,40}", n in any::<f64>(), i in any::<i64>()) {
        use outpost_agent::checks::freshness::{timestamp, Format};
        for format in [Format::Auto, Format::Rfc3339, Format::EpochSeconds, Format::EpochMillis] {
            for v in [serde_json::json!(text.clone()), serde_json::json!(n), serde_json::json!(i), serde_json::json!(null), serde_json::json!([text.clone()])] {
                if let Some(t) = timestamp(&v, format) {
                    prop_assert!(t.is_finite());
                }
            }
        }
        let _ = outpost_agent::checks::timestamp::rfc3339(&text);
    }

    #[test]
    fn login_form_parser_survives_arbitrary_html(html in "(<form[^>]{0,40}>|<input[^>]{0,60}>|</form>|[^<]{0,20}|<[a-z!/]{0,6}){0,40}") {
        for form in outpost_agent::checks::login::form::parse(&html) {
            prop_assert!(form.fields.len() <= 4096);
        }
        let _ = outpost_agent::checks::login::form::login_form(&html);
    }

    #[test]
    fn buffered_payloads_decode_or_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = outpost_agent::transport::convert::decode_buffered(&bytes);
    }
}
