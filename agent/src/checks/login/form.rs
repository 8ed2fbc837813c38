//! A small, tolerant parser of HTML forms: `<form>` tags with their
//! `<input>`, `<button>`, `<textarea>` and `<select>` fields, enough to
//! fill in a provider's login or consent page the way a browser would.
//!
//! It is not an HTML parser: it scans for tags, skips comments, scripts
//! and styles, reads attributes (quoted or not) and decodes the common
//! character references. Anything it does not understand is skipped.
//!
//! Invariants: never panics on any input (fuzzed in the tests); bounded
//! output — at most [`MAX_FORMS`] forms of [`MAX_FIELDS`] fields, attribute
//! values cut at [`MAX_VALUE`] bytes; runs in time linear in the input.

/// Most forms read from one page.
pub const MAX_FORMS: usize = 32;
/// Most fields read per form.
pub const MAX_FIELDS: usize = 256;
/// Longest attribute value kept (longer ones are cut).
pub const MAX_VALUE: usize = 8192;

/// One input of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// Lower-case `type` (`text` when absent; `button` for `<button>`
    /// submit buttons is `submit`).
    pub kind: String,
    pub value: String,
    /// For checkboxes and radios.
    pub checked: bool,
    /// The element's text, for `<button>` (trimmed, cut at 64 bytes).
    pub label: String,
}

impl Field {
    fn is_submit(&self) -> bool {
        self.kind == "submit" || self.kind == "image"
    }
}

/// One `<form>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Form {
    /// The raw `action` (resolve it against the page URL); `None` = the
    /// page itself.
    pub action: Option<String>,
    /// Lower-case method; `get` when absent.
    pub method: String,
    pub fields: Vec<Field>,
}

impl Form {
    /// Whether the form has a password input.
    pub fn has_password(&self) -> bool {
        self.fields.iter().any(|f| f.kind == "password")
    }

    /// The name of the password input.
    pub fn password_field(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.kind == "password" && !f.name.is_empty())
            .map(|f| f.name.as_str())
    }

    /// The user name input: the last text-like input before the password,
    /// else the first text-like input.
    pub fn username_field(&self) -> Option<&str> {
        let text_like =
            |f: &&Field| matches!(f.kind.as_str(), "text" | "email" | "tel") && !f.name.is_empty();
        let pw = self.fields.iter().position(|f| f.kind == "password");
        let before = pw.and_then(|i| self.fields[..i].iter().rev().find(text_like));
        before
            .or_else(|| self.fields.iter().find(text_like))
            .map(|f| f.name.as_str())
    }

    /// The pairs a browser would submit, with `fill` overriding (or adding)
    /// values by name and `button` (a submit button's name) pressed; when
    /// `button` is `None`, the first submit button that does not look like
    /// a refusal is pressed, if it has a name.
    pub fn submission(&self, fill: &[(&str, &str)], button: Option<&str>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for f in &self.fields {
            if f.name.is_empty() || f.is_submit() {
                continue;
            }
            match f.kind.as_str() {
                "button" | "reset" | "file" => continue,
                "checkbox" | "radio" if !f.checked => continue,
                _ => {}
            }
            out.push((f.name.clone(), f.value.clone()));
        }
        let pressed = match button {
            Some(name) => self.fields.iter().find(|f| f.is_submit() && f.name == name),
            None => self
                .fields
                .iter()
                .find(|f| f.is_submit() && !looks_like_refusal(f)),
        };
        if let Some(b) = pressed.filter(|b| !b.name.is_empty()) {
            out.push((b.name.clone(), b.value.clone()));
        }
        for (k, v) in fill {
            match out.iter_mut().find(|(name, _)| name == k) {
                Some(slot) => slot.1 = (*v).to_string(),
                None => out.push(((*k).to_string(), (*v).to_string())),
            }
        }
        out
    }
}

fn looks_like_refusal(f: &Field) -> bool {
    let words = ["deny", "cancel", "reject", "abort", "decline", "no"];
    [&f.value, &f.label, &f.name].iter().any(|t| {
        let t = t.to_ascii_lowercase();
        words
            .iter()
            .any(|w| t == *w || t.starts_with(&format!("{w} ")))
    })
}

/// The first form with a password input.
pub fn login_form(html: &str) -> Option<Form> {
    parse(html).into_iter().find(Form::has_password)
}

/// Every form of `html`, in document order.
pub fn parse(html: &str) -> Vec<Form> {
    let mut forms: Vec<Form> = Vec::new();
    let mut open: Option<Form> = None;
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(off) = html.get(i..).and_then(|s| s.find('<')) {
        let start = i + off;
        let rest = &html[start..];
        if rest.starts_with("<!--") {
            i = match rest.find("-->") {
                Some(e) => start + e + 3,
                None => break,
            };
            continue;
        }
        let (closing, name_start) = if rest.as_bytes().get(1) == Some(&b'/') {
            (true, start + 2)
        } else {
            (false, start + 1)
        };
        let mut j = name_start;
        while j < bytes.len() && bytes[j].is_ascii_alphanumeric() {
            j += 1;
        }
        let name = html[name_start..j].to_ascii_lowercase();
        if name.is_empty() {
            i = start + 1;
            continue;
        }
        let (attrs, end) = attributes(html, j);
        i = end;
        match (closing, name.as_str()) {
            (false, "script" | "style") => {
                let close = format!("</{name}");
                i = match find_ci(html, end, html.len(), &close) {
                    Some(e) => e,
                    None => break,
                };
            }
            (false, "form") => {
                if let Some(f) = open.take() {
                    push_form(&mut forms, f);
                }
                open = Some(Form {
                    action: attr(&attrs, "action").filter(|a| !a.trim().is_empty()),
                    method: attr(&attrs, "method")
                        .map(|m| m.to_ascii_lowercase())
                        .unwrap_or_else(|| "get".to_string()),
                    fields: Vec::new(),
                });
            }
            (true, "form") => {
                if let Some(f) = open.take() {
                    push_form(&mut forms, f);
                }
            }
            (false, "input" | "button" | "textarea" | "select") => {
                let Some(form) = open.as_mut() else { continue };
                if form.fields.len() >= MAX_FIELDS {
                    continue;
                }
                let kind = match name.as_str() {
                    "input" => attr(&attrs, "type")
                        .map(|t| t.to_ascii_lowercase())
                        .unwrap_or_else(|| "text".into()),
                    "button" => attr(&attrs, "type")
                        .map(|t| t.to_ascii_lowercase())
                        .unwrap_or_else(|| "submit".into()),
                    other => other.to_string(),
                };
                let (value, label) = match name.as_str() {
                    "button" => (
                        attr(&attrs, "value").unwrap_or_default(),
                        inner_text(html, end, "</button"),
                    ),
                    "textarea" => (inner_text(html, end, "</textarea"), String::new()),
                    "select" => (selected_option(html, end), String::new()),
                    _ => (attr(&attrs, "value").unwrap_or_default(), String::new()),
                };
                form.fields.push(Field {
                    name: attr(&attrs, "name").unwrap_or_default(),
                    kind,
                    value,
                    checked: attrs.iter().any(|(k, _)| k == "checked"),
                    label,
                });
            }
            _ => {}
        }
        if forms.len() >= MAX_FORMS {
            break;
        }
    }
    if let Some(f) = open.take() {
        push_form(&mut forms, f);
    }
    forms
}

fn push_form(forms: &mut Vec<Form>, f: Form) {
    if forms.len() < MAX_FORMS {
        forms.push(f);
    }
}

fn attr(attrs: &[(String, String)], name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Case-insensitive ASCII search of `needle` in `hay[from..to]`.
fn find_ci(hay: &str, from: usize, to: usize, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    let to = to.min(h.len());
    if n.is_empty() || from + n.len() > to {
        return None;
    }
    (from..=to - n.len()).find(|&p| h[p..p + n.len()].eq_ignore_ascii_case(n))
}

/// Decoded text from `from` up to `close` (bounded), trimmed.
fn inner_text(html: &str, from: usize, close: &str) -> String {
    let limit = (from + MAX_VALUE).min(html.len());
    let end = find_ci(html, from, limit, close).unwrap_or(limit);
    let raw = floor_slice(html, from, end);
    let text = strip_tags(raw);
    let mut t = decode_entities(text.trim());
    if t.len() > 64 {
        let mut cut = 64;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
    }
    t
}

/// The value of the selected (else the first) `<option>` of a select.
fn selected_option(html: &str, from: usize) -> String {
    let limit = (from + 16 * 1024).min(html.len());
    let end = find_ci(html, from, limit, "</select").unwrap_or(limit);
    let body = floor_slice(html, from, end);
    let mut first = None;
    let mut k = 0;
    while let Some(off) = find_ci(body, k, body.len(), "<option") {
        let (attrs, e) = attributes(body, off + 7);
        let value = attr(&attrs, "value").unwrap_or_default();
        if attrs.iter().any(|(n, _)| n == "selected") {
            return value;
        }
        first.get_or_insert(value);
        k = e.max(off + 1);
    }
    first.unwrap_or_default()
}

/// `html[from..end]` with `end` moved back to a char boundary.
fn floor_slice(html: &str, from: usize, end: usize) -> &str {
    let mut end = end.min(html.len());
    while end > from && !html.is_char_boundary(end) {
        end -= 1;
    }
    html.get(from..end).unwrap_or("")
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Reads attributes from `i` (just after the tag name) to the closing `>`.
/// Returns them (lower-case names, decoded values) and the index after `>`.
fn attributes(html: &str, mut i: usize) -> (Vec<(String, String)>, usize) {
    let b = html.as_bytes();
    let mut out = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return (out, b.len());
        }
        if b[i] == b'>' {
            return (out, i + 1);
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        // `ns..i` ends at ASCII bytes or the end: char boundaries.
        let name = html.get(ns..i).unwrap_or("").to_ascii_lowercase();
        if name.is_empty() {
            i += 1;
            continue;
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                let ve = b[vs..]
                    .iter()
                    .position(|&c| c == q)
                    .map_or(b.len(), |p| vs + p);
                value = decode_entities(floor_slice(html, vs, ve.min(vs + MAX_VALUE)));
                i = (ve + 1).min(b.len());
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(floor_slice(html, vs, i.min(vs + MAX_VALUE)));
            }
        }
        if out.len() < 64 {
            out.push((name, value));
        }
    }
}

/// Decodes `&amp; &lt; &gt; &quot; &apos; &#39; &#NN; &#xHH;`; anything
/// else stays as written.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end = rest.bytes().take(12).position(|b| b == b';');
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let num = ent.strip_prefix('#')?;
                    let n = match num.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(n)
                }
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "form_tests.rs"]
mod tests;
