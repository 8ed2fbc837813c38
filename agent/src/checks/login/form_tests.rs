//! Tests of the form parser, including a fuzz loop.

use super::*;

const KEYCLOAK_LIKE: &str = r#"<html><head><script>var x = "<form>";</script></head><body>
<form id="search" method="get" action="/search"><input type="search" name="q"></form>
<!-- <form action="/fake"><input type=password name=fake></form> -->
<form id="kc-form-login" onsubmit="return true;" action="https://id.example/login-actions/authenticate?session_code=a&amp;execution=b" method="POST">
<input type="hidden" name="csrf_token" value="t&#x2F;k&quot;">
<input tabindex=1 id=username name=username type=text autofocus>
<input id="password" name="password" type="password" autocomplete="off">
<input type="checkbox" name="rememberMe"> <input type="checkbox" name="terms" checked>
<select name="lang"><option value="en">English</option><option value="de" selected>Deutsch</option></select>
<button type="submit" name="login" value="Sign in">Sign <b>in</b></button>
</form></body></html>"#;

#[test]
fn finds_the_login_form_not_the_search_form() {
    let forms = parse(KEYCLOAK_LIKE);
    assert_eq!(forms.len(), 2, "{forms:?}");
    let f = login_form(KEYCLOAK_LIKE).unwrap();
    assert_eq!(f.method, "post");
    assert_eq!(
        f.action.as_deref(),
        Some("https://id.example/login-actions/authenticate?session_code=a&execution=b")
    );
    assert_eq!(f.username_field(), Some("username"));
    assert_eq!(f.password_field(), Some("password"));
    let sub = f.submission(&[("username", "alice"), ("password", "pw")], None);
    let get = |k: &str| sub.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("csrf_token"), Some("t/k\""));
    assert_eq!(get("username"), Some("alice"));
    assert_eq!(get("password"), Some("pw"));
    assert_eq!(get("login"), Some("Sign in"));
    assert_eq!(get("terms"), Some(""));
    assert_eq!(get("rememberMe"), None);
    assert_eq!(get("lang"), Some("de"));
}

#[test]
fn consent_buttons_prefer_approval() {
    let html = r#"<form method=post action=consent><input type=hidden name=t value=1>
<button type=submit name=decision value=deny>Deny</button>
<button type=submit name=decision value=approve>Approve</button></form>"#;
    let f = &parse(html)[0];
    assert!(!f.has_password());
    let sub = f.submission(&[], None);
    assert!(
        sub.contains(&("decision".into(), "approve".into())),
        "{sub:?}"
    );
}

#[test]
fn unclosed_and_broken_markup_is_tolerated() {
    assert!(parse("<form action='x'><input name=a value='unterminated").len() == 1);
    assert!(parse("<<<>>></form><input><form").len() == 1);
    assert_eq!(
        decode_entities("a &amp b &#99999999; &#x41;"),
        "a &amp b &#99999999; A"
    );
}

/// xorshift64*: a deterministic pseudo-random source for fuzzing.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn fuzz_random_markup_never_panics_and_stays_bounded() {
    let pieces = [
        "<form",
        "</form>",
        "<input",
        "<button",
        "</button>",
        "<select",
        "<option",
        "selected",
        "</select>",
        "<textarea",
        "</textarea",
        "<script>",
        "</script",
        "<!--",
        "-->",
        " name=",
        " type=password",
        " value=\"",
        "'",
        "\"",
        "=",
        ">",
        "<",
        "/",
        "&amp;",
        "&#x",
        "&#",
        ";",
        "é",
        "日本",
        "\u{0}",
        " ",
        "a",
        "action=",
        "method=post",
        "checked",
    ];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..3000 {
        let n = (rng(&mut seed) % 80) as usize;
        let mut doc = String::new();
        for _ in 0..n {
            doc.push_str(pieces[(rng(&mut seed) % pieces.len() as u64) as usize]);
        }
        // Also cut at random byte offsets (may split a char: from_utf8_lossy).
        let cut = (rng(&mut seed) as usize) % (doc.len() + 1);
        let doc = String::from_utf8_lossy(&doc.as_bytes()[..cut]).into_owned();
        let forms = parse(&doc);
        assert!(forms.len() <= MAX_FORMS);
        for f in &forms {
            assert!(f.fields.len() <= MAX_FIELDS);
            let _ = f.submission(&[("u", "v")], None);
            let _ = f.username_field();
        }
    }
}

#[test]
fn many_forms_and_fields_are_capped() {
    let doc = "<form><input name=a>".repeat(100) + &"<input name=b>".repeat(1000);
    let forms = parse(&doc);
    assert_eq!(forms.len(), MAX_FORMS);
    let big = format!("<form>{}", "<input name=x>".repeat(1000));
    assert_eq!(parse(&big)[0].fields.len(), MAX_FIELDS);
}
