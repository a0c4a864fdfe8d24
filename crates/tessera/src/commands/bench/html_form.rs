//! A small reader of HTML forms, enough for a server's login and consent pages: each
//! `<form>`'s method and action, and the name, type and value of its `<input>` and `<button>`
//! elements, with character references decoded. It is not an HTML parser (no `<script>` or
//! `<textarea>` content, no implied end tags); it skips comments and reads attributes whether
//! quoted or not, which is what such forms need.

/// One `<form>` of a page.
#[derive(Debug, Default)]
pub(super) struct Form {
    /// Lowercase; `get` when the attribute is missing, as in HTML.
    pub method: String,
    /// As written (relative to the page's URL); empty means the page's own URL.
    pub action: String,
    pub fields: Vec<Field>,
}

/// An `<input>` or `<button>` of a form.
#[derive(Debug)]
pub(super) struct Field {
    /// `input` or `button`.
    pub element: &'static str,
    /// Lowercase `type`; `text` for an input without one, `submit` for such a button.
    pub kind: String,
    pub name: String,
    pub value: String,
}

impl Form {
    /// The field of this type, if any (e.g. the `password` input).
    pub fn field_of_kind(&self, kind: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.kind == kind)
    }

    /// Whether pressing a submit button named `name` would send `value`.
    pub fn has_submit(&self, name: &str, value: &str) -> bool {
        self.fields.iter().any(|f| f.kind == "submit" && f.name == name && f.value == value)
    }

    /// The fields a browser sends before the user types anything: hidden inputs and filled-in
    /// text inputs (not buttons, whose value is sent only for the one pressed, nor unchecked
    /// boxes, which this reader does not track).
    pub fn prefilled(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|f| f.element == "input" && !f.name.is_empty())
            .filter(|f| !matches!(f.kind.as_str(), "submit" | "button" | "checkbox" | "radio"))
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect()
    }
}

/// The forms of a page, in order.
pub(super) fn forms(html: &str) -> Vec<Form> {
    let mut out = Vec::new();
    let mut open: Option<Form> = None;
    for tag in tags(html) {
        match tag.name.as_str() {
            // A form inside a form is invalid HTML; browsers ignore the inner start tag.
            "form" if open.is_none() => {
                open = Some(Form {
                    method: tag.attr("method").unwrap_or("get").to_ascii_lowercase(),
                    action: tag.attr("action").unwrap_or_default().to_owned(),
                    fields: Vec::new(),
                });
            }
            "/form" => out.extend(open.take()),
            name @ ("input" | "button") => {
                let Some(form) = open.as_mut() else { continue };
                let element = if name == "input" { "input" } else { "button" };
                let default_kind = if element == "input" { "text" } else { "submit" };
                form.fields.push(Field {
                    element,
                    kind: tag.attr("type").unwrap_or(default_kind).to_ascii_lowercase(),
                    name: tag.attr("name").unwrap_or_default().to_owned(),
                    value: tag.attr("value").unwrap_or_default().to_owned(),
                });
            }
            _ => {}
        }
    }
    // A form left open at the end of the page still counts, as in a browser.
    out.extend(open);
    out
}

/// A start or end tag: `name` is lowercase, with a leading `/` for an end tag.
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The tags of a page, with decoded attribute values. Every delimiter looked for is ASCII, so
/// byte offsets found with `find` always fall on character boundaries.
fn tags(html: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let (slash, body) = match rest.strip_prefix('/') {
            Some(body) => ("/", body),
            None => ("", rest),
        };
        let name_len = body.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(body.len());
        if name_len == 0 {
            continue; // `<!doctype …>`, a stray `<` in text
        }
        let name = format!("{slash}{}", body[..name_len].to_ascii_lowercase());
        let (attrs, after) = attributes(&body[name_len..]);
        out.push(Tag { name, attrs });
        rest = after;
    }
    out
}

/// Reads attributes up to the tag's closing `>`; returns them and the text after the tag.
fn attributes(mut s: &str) -> (Vec<(String, String)>, &str) {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if s.is_empty() {
            return (attrs, s);
        }
        if let Some(after) = s.strip_prefix('>') {
            return (attrs, after);
        }
        let name_len = s
            .find(|c: char| c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/'))
            .unwrap_or(s.len());
        if name_len == 0 {
            s = &s[1..]; // a stray `=`: skip it rather than loop on it
            continue;
        }
        let name = s[..name_len].to_ascii_lowercase();
        s = s[name_len..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let mut value = String::new();
        if let Some(after_equals) = s.strip_prefix('=') {
            s = after_equals.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let quote = s.chars().next().filter(|c| matches!(c, '"' | '\''));
            let raw = match quote {
                Some(q) => {
                    let inner = &s[1..];
                    let end = inner.find(q).unwrap_or(inner.len());
                    s = inner.get(end + 1..).unwrap_or("");
                    &inner[..end]
                }
                None => {
                    let end =
                        s.find(|c: char| c.is_ascii_whitespace() || c == '>').unwrap_or(s.len());
                    let raw = &s[..end];
                    s = &s[end..];
                    raw
                }
            };
            value = decode_references(raw);
        }
        attrs.push((name, value));
    }
}

/// Decodes character references: the numeric ones (`&#38;`, `&#x26;`) and the named ones that
/// escaping libraries write (`&amp;` `&lt;` `&gt;` `&quot;` `&apos;`). Anything else stays as is.
fn decode_references(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest[1..]
            .find(';')
            .filter(|&len| len <= 10)
            .and_then(|len| reference(&rest[1..1 + len]).map(|c| (c, len + 2)));
        match decoded {
            Some((c, consumed)) => {
                out.push(c);
                rest = &rest[consumed..];
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

fn reference(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of Tessera's login page, with an escaped query string carried through.
    const LOGIN: &str = r#"<!doctype html><main><!-- <form action="/nope"> -->
<form method="post" action="/login">
  <input type="hidden" name="csrf_token" value="abc_-123">
  <input type="hidden" name="request" value="response_type=code&#38;client_id=web&amp;state=a%2Fb&#x3D;">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" required autofocus value="">
  <input id="password" name=password type='password' required>
  <button type="submit">Sign in</button>
</form></main>"#;

    #[test]
    fn reads_a_login_form_with_hidden_fields_and_references() {
        let forms = forms(LOGIN);
        assert_eq!(forms.len(), 1, "the commented-out form is not a form");
        let form = &forms[0];
        assert_eq!((form.method.as_str(), form.action.as_str()), ("post", "/login"));
        assert_eq!(form.field_of_kind("password").map(|f| f.name.as_str()), Some("password"));
        let prefilled = form.prefilled();
        let pairs: Vec<(&str, &str)> =
            prefilled.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("csrf_token", "abc_-123"),
                ("request", "response_type=code&client_id=web&state=a%2Fb="),
                ("username", ""),
                ("password", ""),
            ]
        );
    }

    #[test]
    fn reads_the_buttons_of_a_consent_form() {
        let html = r#"<form method="post" action="/consent" class="actions">
  <input type="hidden" name="csrf_token" value="t">
  <button type="submit" name="decision" value="deny" class="secondary">Deny</button>
  <button type="submit" name="decision" value="approve">Allow</button>
</form>"#;
        let forms = forms(html);
        assert!(forms[0].has_submit("decision", "approve"));
        assert!(!forms[0].has_submit("decision", "maybe"));
        assert_eq!(forms[0].prefilled(), [("csrf_token".to_owned(), "t".to_owned())]);
    }

    #[test]
    fn odd_markup_neither_panics_nor_loops() {
        for html in ["<", "<form", "<form action=", "<input value='x", "<a =>", "&#xZZ; &", "<!--"]
        {
            let _ = forms(html);
        }
        assert_eq!(decode_references("a &unknown; &#65; &#x1F600; &"), "a &unknown; A 😀 &");
        let form = &forms("<form><input name=a value=b/></form>")[0];
        assert_eq!(form.method, "get");
        assert_eq!(form.fields[0].value, "b/");
    }
}
