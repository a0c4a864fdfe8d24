//! The user's part of a sign-in at Tessera, done with plain HTTP requests: the authorization
//! URL, the login form (hidden fields kept, credentials filled), the consent form if shown,
//! then the redirect to the client, which is not followed but returned.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "correct horse battery";

/// Follows `authorize_url` through sign-in and consent; returns the callback URL's query.
pub async fn sign_in(authorize_url: &str, redirect_uri: &str) -> String {
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut next = (url::Url::parse(authorize_url).unwrap(), None::<Vec<(String, String)>>);
    for _ in 0..8 {
        let (url, form) = next.clone();
        let mut request = match &form {
            None => http.get(url.clone()),
            Some(fields) => http.post(url.clone()).form(fields),
        };
        let jar: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !jar.is_empty() {
            request = request.header(COOKIE, jar.join("; "));
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            cookies.insert(name.trim().to_owned(), value.to_owned());
        }
        if let Some(location) = response.headers().get(LOCATION) {
            let target = url.join(location.to_str().unwrap()).unwrap();
            if target.as_str().starts_with(redirect_uri) {
                return target.query().unwrap_or_default().to_owned();
            }
            next = (target, None);
            continue;
        }
        let status = response.status();
        let html = response.text().await.unwrap();
        assert!(status.is_success(), "{status}: {html}");
        let action = attribute(html.split("<form").nth(1).expect("a form"), "action").unwrap();
        let mut fields: Vec<(String, String)> = html
            .split("<input")
            .skip(1)
            .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
            .map(|tag| {
                (attribute(tag, "name").unwrap(), attribute(tag, "value").unwrap_or_default())
            })
            .collect();
        if html.contains("name=\"password\"") {
            // Tessera's form says `username`; oidc-provider's development form says `login`.
            let name = if html.contains("name=\"login\"") { "login" } else { "username" };
            fields.push((name.into(), USERNAME.into()));
            fields.push(("password".into(), PASSWORD.into()));
        } else {
            fields.push(("decision".into(), "approve".into()));
        }
        next = (url.join(&action).unwrap(), Some(fields));
    }
    panic!("no redirect to the client after 8 steps");
}

/// The value of `name="…"` in the start of a tag, with HTML character references decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let tag = &tag[..tag.find('>')?];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(decode(&tag[start..end]))
}

fn decode(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find(';') else { break };
        let entity = &rest[at + 1..at + end];
        let c = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        out.push(c.unwrap_or('?'));
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    out
}
