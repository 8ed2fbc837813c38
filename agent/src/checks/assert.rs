//! JSON assertions on a check's answer: `{ pointer, op, value }` evaluated
//! on the parsed body (already bounded by `max_body_bytes`; nesting bounded
//! by `checks::json`), and an optional `value_pointer` whose number becomes
//! the result's value (an alert-queue depth, a backlog count) so it is
//! exported and charted.
//!
//! Ops: `==` `!=` (numbers, strings, booleans), `<` `<=` `>` `>=` (numbers),
//! `exists`, `matches` (regex on a string). The first failing assertion is
//! named in the error; a missing field or a string where a number is
//! expected fails with a clear error, never a panic.

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use crate::config::{ConfigError, Source};

/// Most assertions per check.
pub const MAX_ASSERTIONS: usize = 32;

/// One assertion as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssertion {
    pointer: String,
    op: String,
    value: Option<toml::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Exists,
    Matches,
}

#[derive(Debug, Clone)]
enum Expected {
    Number(f64),
    Text(String),
    Bool(bool),
    Pattern(Regex),
    Nothing,
}

/// A validated assertion.
#[derive(Debug, Clone)]
pub struct Assertion {
    pointer: String,
    op: Op,
    op_text: String,
    expected: Expected,
}

impl std::fmt::Display for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(root)"
        } else {
            &self.pointer
        };
        match &self.expected {
            Expected::Number(n) => write!(f, "{pointer} {} {n}", self.op_text),
            Expected::Text(s) => write!(f, "{pointer} {} {s:?}", self.op_text),
            Expected::Bool(b) => write!(f, "{pointer} {} {b}", self.op_text),
            Expected::Pattern(r) => write!(f, "{pointer} matches /{}/", r.as_str()),
            Expected::Nothing => write!(f, "{pointer} exists"),
        }
    }
}

/// Validates the `assert` list and `value_pointer` of a check table.
pub fn validate(
    src: &Source<'_>,
    raw: Option<Spanned<Vec<Spanned<RawAssertion>>>>,
    value_pointer: Option<&Spanned<String>>,
) -> Result<Vec<Assertion>, ConfigError> {
    if let Some(p) = value_pointer {
        if !super::json::valid_pointer(p.get_ref()) {
            return Err(src.error(
                p.span(),
                format!("`value_pointer` {:?} is not a JSON pointer", p.get_ref()),
                "write a JSON pointer such as \"/depth\" or \"/queue/0/age\"",
            ));
        }
    }
    let Some(list) = raw else {
        return Ok(Vec::new());
    };
    if list.get_ref().len() > MAX_ASSERTIONS {
        return Err(src.error(
            list.span(),
            format!("more than {MAX_ASSERTIONS} assertions"),
            "keep the assertions that tell broken data from good data",
        ));
    }
    let mut out = Vec::new();
    for a in list.into_inner() {
        let span = a.span();
        let a = a.into_inner();
        let err = |msg: String, fix: &str| src.error(span.clone(), msg, fix);
        if !super::json::valid_pointer(&a.pointer) {
            return Err(err(
                format!("assertion pointer {:?} is not a JSON pointer", a.pointer),
                "write a JSON pointer such as \"/depth\"",
            ));
        }
        let op = match a.op.as_str() {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "exists" => Op::Exists,
            "matches" => Op::Matches,
            other => {
                return Err(err(
                    format!("unknown assertion op {other:?}"),
                    "use one of == != < <= > >= exists matches",
                ))
            }
        };
        let expected = match (op, a.value) {
            (Op::Exists, None) => Expected::Nothing,
            (Op::Exists, Some(_)) => {
                return Err(err(
                    "`exists` takes no value".into(),
                    "remove `value` from this assertion",
                ))
            }
            (_, None) => {
                return Err(err(
                    format!("op {:?} needs a `value`", a.op),
                    "add value = ... to this assertion",
                ))
            }
            (Op::Matches, Some(toml::Value::String(s))) => Expected::Pattern(
                regex::RegexBuilder::new(&s)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        err(
                            format!("assertion regex is invalid: {e}"),
                            "write a valid regular expression",
                        )
                    })?,
            ),
            (Op::Matches, Some(_)) => {
                return Err(err(
                    "`matches` needs a string regex value".into(),
                    "write value = \"^ok$\"",
                ))
            }
            (Op::Lt | Op::Le | Op::Gt | Op::Ge, Some(toml::Value::Integer(i))) => {
                Expected::Number(i as f64)
            }
            (Op::Lt | Op::Le | Op::Gt | Op::Ge, Some(toml::Value::Float(f))) => Expected::Number(f),
            (Op::Lt | Op::Le | Op::Gt | Op::Ge, Some(_)) => {
                return Err(err(
                    format!("op {:?} compares numbers", a.op),
                    "write a number as the value",
                ))
            }
            (_, Some(toml::Value::Integer(i))) => Expected::Number(i as f64),
            (_, Some(toml::Value::Float(f))) => Expected::Number(f),
            (_, Some(toml::Value::String(s))) => Expected::Text(s),
            (_, Some(toml::Value::Boolean(b))) => Expected::Bool(b),
            (_, Some(_)) => {
                return Err(err(
                    "assertion values are numbers, strings or booleans".into(),
                    "write a scalar value",
                ))
            }
        };
        out.push(Assertion {
            pointer: a.pointer,
            op,
            op_text: a.op,
            expected,
        });
    }
    Ok(out)
}

fn short(v: &Value) -> String {
    crate::result::short_error(&v.to_string())
        .chars()
        .take(48)
        .collect()
}

impl Assertion {
    /// `Ok` when it holds; else the error naming it.
    pub fn check(&self, doc: &Value) -> Result<(), String> {
        let got = match doc.pointer(&self.pointer) {
            Some(v) => v,
            None => {
                return Err(format!(
                    "assertion {self} failed: {} is missing",
                    if self.pointer.is_empty() {
                        "(root)"
                    } else {
                        &self.pointer
                    }
                ))
            }
        };
        let holds = match (&self.expected, self.op) {
            (Expected::Nothing, _) => true,
            (Expected::Pattern(r), _) => match got.as_str() {
                Some(s) => r.is_match(s),
                None => {
                    return Err(format!(
                        "assertion {self} failed: expected a string, got {}",
                        super::json::kind_of(got)
                    ))
                }
            },
            (Expected::Number(n), op) => match got.as_f64() {
                Some(g) => match op {
                    Op::Eq => g == *n,
                    Op::Ne => g != *n,
                    Op::Lt => g < *n,
                    Op::Le => g <= *n,
                    Op::Gt => g > *n,
                    Op::Ge => g >= *n,
                    Op::Exists | Op::Matches => true,
                },
                None => {
                    return Err(format!(
                        "assertion {self} failed: expected a number, got {} {}",
                        super::json::kind_of(got),
                        short(got)
                    ))
                }
            },
            (Expected::Text(s), op) => {
                let eq = got.as_str() == Some(s.as_str());
                if op == Op::Eq {
                    eq
                } else {
                    !eq
                }
            }
            (Expected::Bool(b), op) => {
                let eq = got.as_bool() == Some(*b);
                if op == Op::Eq {
                    eq
                } else {
                    !eq
                }
            }
        };
        if holds {
            Ok(())
        } else {
            Err(format!("assertion {self} failed: got {}", short(got)))
        }
    }
}

/// Parses `body` and runs every assertion; returns the `value_pointer`
/// number if one is configured.
pub fn judge(
    body: &[u8],
    asserts: &[Assertion],
    value_pointer: Option<&str>,
) -> Result<Option<f64>, String> {
    let doc = super::json::parse(body)?;
    for a in asserts {
        a.check(&doc)?;
    }
    match value_pointer {
        None => Ok(None),
        Some(p) => match doc.pointer(p) {
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                format!(
                    "value_pointer {p} is {} {}, not a number",
                    super::json::kind_of(v),
                    short(v)
                )
            }),
            None => Err(format!("value_pointer {p} is missing")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Vec<Assertion>, ConfigError> {
        #[derive(Deserialize)]
        struct W {
            assert: Option<Spanned<Vec<Spanned<RawAssertion>>>>,
        }
        let w: W = toml::from_str(text).unwrap();
        validate(
            &Source {
                path: Path::new("t.toml"),
                text,
            },
            w.assert,
            None,
        )
    }

    #[test]
    fn queue_depth_over_limit_names_the_assertion() {
        let a = parse(r#"assert = [ { pointer = "/depth", op = "<=", value = 500 }, { pointer = "/oldest_age_seconds", op = "<=", value = 300 } ]"#).unwrap();
        assert_eq!(
            judge(
                br#"{"depth": 12, "oldest_age_seconds": 30}"#,
                &a,
                Some("/depth")
            )
            .unwrap(),
            Some(12.0)
        );
        let e = judge(br#"{"depth": 812, "oldest_age_seconds": 30}"#, &a, None).unwrap_err();
        assert_eq!(e, "assertion /depth <= 500 failed: got 812");
        let e = judge(br#"{"depth": 1, "oldest_age_seconds": 3000}"#, &a, None).unwrap_err();
        assert!(
            e.starts_with("assertion /oldest_age_seconds <= 300 failed"),
            "{e}"
        );
    }

    #[test]
    fn malformed_missing_and_mistyped_data_fail_clearly() {
        let a = parse(r#"assert = [ { pointer = "/depth", op = "<", value = 5 } ]"#).unwrap();
        assert!(judge(b"{not json", &a, None)
            .unwrap_err()
            .contains("invalid JSON"));
        assert!(judge(br#"{"other": 1}"#, &a, None)
            .unwrap_err()
            .contains("/depth is missing"));
        let e = judge(br#"{"depth": "7"}"#, &a, None).unwrap_err();
        assert!(e.contains("expected a number, got a string"), "{e}");
        assert!(judge(br#"{"depth": 1}"#, &[], Some("/nope"))
            .unwrap_err()
            .contains("missing"));
    }

    #[test]
    fn every_op_works() {
        let a = parse(
            r#"assert = [
                { pointer = "/s", op = "==", value = "ok" },
                { pointer = "/s", op = "!=", value = "down" },
                { pointer = "/b", op = "==", value = true },
                { pointer = "/n", op = ">", value = 1.5 },
                { pointer = "/n", op = ">=", value = 2 },
                { pointer = "/n", op = "!=", value = 3 },
                { pointer = "/a/0", op = "exists" },
                { pointer = "/s", op = "matches", value = "^o" },
            ]"#,
        )
        .unwrap();
        assert_eq!(
            judge(br#"{"s":"ok","b":true,"n":2,"a":[0]}"#, &a, None),
            Ok(None)
        );
        assert!(judge(br#"{"s":"ok","b":false,"n":2,"a":[0]}"#, &a, None)
            .unwrap_err()
            .contains("/b == true"));
    }

    #[test]
    fn bad_assertions_are_config_errors() {
        for text in [
            r#"assert = [ { pointer = "depth", op = "<", value = 5 } ]"#,
            r#"assert = [ { pointer = "/d", op = "~", value = 5 } ]"#,
            r#"assert = [ { pointer = "/d", op = "<", value = "5" } ]"#,
            r#"assert = [ { pointer = "/d", op = "==" } ]"#,
            r#"assert = [ { pointer = "/d", op = "matches", value = "(" } ]"#,
            r#"assert = [ { pointer = "/d", op = "exists", value = 1 } ]"#,
        ] {
            assert!(
                matches!(parse(text), Err(ConfigError::Invalid { line: 1, .. })),
                "{text}"
            );
        }
    }
}
