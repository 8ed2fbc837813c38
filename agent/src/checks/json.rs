//! JSON answers of targets: parsing with bounds and a short error.
//!
//! The body is already bounded by the HTTP client (`max_body_bytes`);
//! `serde_json` bounds nesting depth (128), so a hostile document cannot
//! exhaust the stack. Errors give the position, never the content.

use serde_json::Value;

/// Parses a JSON document.
pub fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "invalid JSON ({} bytes; {} at line {} column {})",
            body.len(),
            match e.classify() {
                serde_json::error::Category::Eof => "ends early",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "unexpected data",
                serde_json::error::Category::Io => "read error",
            },
            e.line(),
            e.column()
        )
    })
}

/// What a JSON value is, for errors ("a string", "an array", ...).
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Validates a JSON pointer (RFC 6901): empty or starting with `/`.
pub fn valid_pointer(p: &str) -> bool {
    p.is_empty() || p.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_short_and_positioned() {
        let e = parse(br#"{"status": "ready", "rows": 42, "devices": [{"id"#).unwrap_err();
        assert!(e.contains("ends early"), "{e}");
        let deep = "[".repeat(10_000);
        let e = parse(deep.as_bytes()).unwrap_err();
        assert!(e.len() < 120, "{e}");
        assert_eq!(
            parse(b"{\"a\":[1]}").unwrap().pointer("/a/0"),
            Some(&Value::from(1))
        );
    }
}
