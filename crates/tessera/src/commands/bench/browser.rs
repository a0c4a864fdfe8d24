//! The browser's part of the authorization-code flow, for the `authorization-code` scenario
//! and the set-up of `refresh`: a GET of the authorization endpoint with PKCE (S256), `state`
//! and `nonce`; the login form, and the consent form when the server shows one; then the code,
//! read from the redirect to the client's redirect URI. Redirects are followed by hand because
//! that last one must not be followed (the redirect URI need not exist), and cookies live in a
//! small jar of our own.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use tessera_core::secret::{Secret, SecretHash, random_id};
use url::Url;

use super::html_form::{Form, forms};
use super::transport_kind;

/// Who signs in, where, and for which client.
pub(super) struct Browser {
    pub authorization_endpoint: Url,
    pub redirect_uri: Url,
    pub client_id: String,
    pub username: String,
    pub password: String,
    pub scope: Option<String>,
    /// Compared with the `iss` of the redirect (RFC 9207).
    pub issuer: String,
}

/// What the browser's part obtained: the code, and what the code exchange and its checks need.
pub(super) struct Authorized {
    pub code: String,
    pub code_verifier: String,
    pub nonce: String,
}

/// Pages and redirects one flow may go through before it is given up: the authorization
/// request, the login form, the consent form, and room for a few redirects between them.
const MAX_STEPS: usize = 8;

/// The next request of a flow.
enum Next {
    Get(Url),
    Post(Url, Vec<(String, String)>),
}

impl Browser {
    /// Whether an ID token must come back: the request asked for `openid`.
    pub fn asks_openid(&self) -> bool {
        self.scope.as_deref().is_some_and(|s| s.split_whitespace().any(|s| s == "openid"))
    }

    /// Runs the browser's part of one flow with `jar`'s cookies (empty for a new browser; a
    /// signed-in session skips the login form). Errors are kinds, as for every request.
    pub async fn authorize(
        &self,
        http: &reqwest::Client,
        jar: &mut CookieJar,
    ) -> Result<Authorized, String> {
        let code_verifier = Secret::generate().expose().to_owned();
        let challenge = URL_SAFE_NO_PAD.encode(SecretHash::of(code_verifier.as_bytes()).as_bytes());
        let (state, nonce) = (random_id::<16>(), random_id::<16>());
        let mut next = Next::Get(self.authorization_url(&challenge, &state, &nonce));
        let mut credentials_sent = false;
        for _ in 0..MAX_STEPS {
            let (page_url, request) = match next {
                Next::Get(url) => (url.clone(), http.get(url)),
                Next::Post(url, fields) => (url.clone(), http.post(url).form(&fields)),
            };
            let request = match jar.header() {
                Some(cookies) => request.header(COOKIE, cookies),
                None => request,
            };
            let response = request.send().await.map_err(|e| transport_kind(&e))?;
            let status = response.status();
            jar.absorb(response.headers());
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or("redirect_without_location")?;
                let target = page_url.join(location).map_err(|_| "invalid_location")?;
                if self.is_redirect_uri(&target) {
                    let code = self.read_callback(&target, &state)?;
                    return Ok(Authorized { code, code_verifier, nonce });
                }
                // The jar is for one origin; a login hosted elsewhere is out of scope.
                if target.origin() != page_url.origin() {
                    return Err("redirect_to_another_origin".into());
                }
                next = Next::Get(target);
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let kind = if credentials_sent { "login_throttled" } else { "http_429" };
                return Err(kind.into());
            }
            let page = response.text().await.map_err(|e| transport_kind(&e))?;
            let forms = forms(&page);
            if let Some(form) = forms.iter().find(|f| f.field_of_kind("password").is_some()) {
                // The login form again after the credentials went: they were refused.
                if credentials_sent {
                    return Err("login_refused".into());
                }
                credentials_sent = true;
                next = self.sign_in(form, &page_url)?;
            } else if let Some(form) = forms.iter().find(|f| f.has_submit("decision", "approve")) {
                let mut fields = form.prefilled();
                fields.push(("decision".into(), "approve".into()));
                next = submit(form, &page_url, fields)?;
            } else if status.is_success() {
                return Err("page_without_known_form".into());
            } else {
                return Err(format!("http_{}", status.as_u16()));
            }
        }
        Err("too_many_steps".into())
    }

    /// The authorization request (PKCE S256, `state`). `nonce` goes only with `openid`: it is
    /// an OpenID Connect parameter (OIDC Core §3.1.2.1), bound to the ID token, and a server may
    /// refuse it in a plain OAuth request (node-oidc-provider does, with invalid_request).
    fn authorization_url(&self, challenge: &str, state: &str, nonce: &str) -> Url {
        let mut url = self.authorization_endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", self.redirect_uri.as_str())
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", state);
            if self.asks_openid() {
                query.append_pair("nonce", nonce);
            }
            if let Some(scope) = &self.scope {
                query.append_pair("scope", scope);
            }
        }
        url
    }

    /// Fills in the login form: the password input, and the username in the input named
    /// `username` (else the first text or email input).
    fn sign_in(&self, form: &Form, page_url: &Url) -> Result<Next, String> {
        let password_field = form.field_of_kind("password").map(|f| f.name.clone());
        let username_field = form
            .fields
            .iter()
            .find(|f| f.name == "username")
            .or_else(|| form.fields.iter().find(|f| matches!(f.kind.as_str(), "text" | "email")))
            .map(|f| f.name.clone());
        let (Some(username_field), Some(password_field)) = (username_field, password_field) else {
            return Err("login_form_without_username".into());
        };
        let mut fields = form.prefilled();
        fields.retain(|(name, _)| *name != username_field && *name != password_field);
        fields.push((username_field, self.username.clone()));
        fields.push((password_field, self.password.clone()));
        submit(form, page_url, fields)
    }

    /// Whether `target` is the redirect URI (scheme, host, port and path; the query may differ).
    fn is_redirect_uri(&self, target: &Url) -> bool {
        let r = &self.redirect_uri;
        target.scheme() == r.scheme()
            && target.host_str() == r.host_str()
            && target.port_or_known_default() == r.port_or_known_default()
            && target.path() == r.path()
    }

    /// The code of the redirect to the client, once `state` and `iss` are the expected ones.
    fn read_callback(&self, target: &Url, state: &str) -> Result<String, String> {
        let param =
            |name: &str| target.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned());
        let returned_state = param("state");
        if returned_state.as_deref().is_some_and(|s| s != state) {
            return Err("state_mismatch".into());
        }
        if param("iss").is_some_and(|iss| iss != self.issuer) {
            return Err("iss_mismatch".into());
        }
        // An error is worth naming even if a careless server left out `state`; a code is not
        // taken without it.
        if let Some(error) = param("error") {
            return Err(error.chars().take(64).collect());
        }
        if returned_state.is_none() {
            return Err("state_mismatch".into());
        }
        param("code").filter(|c| !c.is_empty()).ok_or_else(|| "no_code".into())
    }
}

/// The request that submits `form` with `fields`.
fn submit(form: &Form, page_url: &Url, fields: Vec<(String, String)>) -> Result<Next, String> {
    let mut action = page_url.join(&form.action).map_err(|_| "invalid_form_action")?;
    if form.method == "post" {
        return Ok(Next::Post(action, fields));
    }
    action.query_pairs_mut().clear().extend_pairs(fields);
    Ok(Next::Get(action))
}

/// The cookies of one browser, for one origin: the flow never follows a redirect to another
/// one. `Path`, `Domain`, `Secure` and `SameSite` are not looked at, as every request goes to
/// that origin; a `Max-Age` of zero or less deletes, as the server does to sign out.
#[derive(Clone, Default)]
pub(super) struct CookieJar(Vec<(String, String)>);

impl CookieJar {
    /// Takes in a response's `Set-Cookie` headers.
    fn absorb(&mut self, headers: &HeaderMap) {
        for line in headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let mut parts = line.split(';');
            let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let expired = parts.filter_map(|a| a.split_once('=')).any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("max-age")
                    && v.trim().parse::<i64>().is_ok_and(|age| age <= 0)
            });
            self.0.retain(|(n, _)| n != name);
            if !expired && !value.is_empty() {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    /// The `Cookie` header to send, if there is any cookie.
    fn header(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        Some(pairs.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn the_jar_keeps_replaces_and_deletes_cookies() {
        let mut jar = CookieJar::default();
        assert_eq!(jar.header(), None);
        let mut headers = HeaderMap::new();
        let set = |v: &'static str| HeaderValue::from_static(v);
        headers.append(SET_COOKIE, set("csrf=a; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict"));
        headers.append(SET_COOKIE, set("session=s1; Path=/; HttpOnly"));
        jar.absorb(&headers);
        assert_eq!(jar.header().as_deref(), Some("csrf=a; session=s1"));
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, set("session=s2; Path=/"));
        headers.append(SET_COOKIE, set("csrf=; Path=/; Max-Age=0"));
        jar.absorb(&headers);
        assert_eq!(jar.header().as_deref(), Some("session=s2"));
    }

    fn browser() -> Browser {
        Browser {
            authorization_endpoint: Url::parse("https://id.example/authorize").unwrap(),
            redirect_uri: Url::parse("https://app.example/cb").unwrap(),
            client_id: "web".into(),
            username: "alice".into(),
            password: "pw".into(),
            scope: Some("openid profile".into()),
            issuer: "https://id.example".into(),
        }
    }

    #[test]
    fn the_callback_gives_the_code_only_with_our_state_and_issuer() {
        let b = browser();
        let url = |q: &str| Url::parse(&format!("https://app.example/cb?{q}")).unwrap();
        let iss = "iss=https%3A%2F%2Fid.example";
        assert_eq!(b.read_callback(&url(&format!("code=c&state=s&{iss}")), "s"), Ok("c".into()));
        assert_eq!(b.read_callback(&url("code=c&state=s"), "s"), Ok("c".into()));
        assert_eq!(b.read_callback(&url("code=c&state=t"), "s"), Err("state_mismatch".into()));
        assert_eq!(b.read_callback(&url("code=c"), "s"), Err("state_mismatch".into()));
        let wrong_iss = "code=c&state=s&iss=https%3A%2F%2Fevil.example";
        assert_eq!(b.read_callback(&url(wrong_iss), "s"), Err("iss_mismatch".into()));
        let denied = format!("error=access_denied&state=s&{iss}");
        assert_eq!(b.read_callback(&url(&denied), "s"), Err("access_denied".into()));
        assert!(b.is_redirect_uri(&url("x=1")));
        assert!(!b.is_redirect_uri(&Url::parse("https://app.example/cb2").unwrap()));
        assert!(b.asks_openid());
    }

    /// OIDC Core §3.1.2.1: `nonce` is a parameter of OpenID Connect requests (scope `openid`);
    /// a plain OAuth 2.0 request (RFC 6749 §4.1.1) goes without it.
    #[test]
    fn the_nonce_goes_only_with_openid() {
        let params = |b: &Browser| -> Vec<(String, String)> {
            b.authorization_url("ch", "st", "no").query_pairs().into_owned().collect()
        };
        let has = |p: &[(String, String)], name: &str, value: &str| {
            p.iter().any(|(n, v)| n == name && v == value)
        };
        let oidc = params(&browser());
        assert!(has(&oidc, "nonce", "no"));
        assert!(has(&oidc, "scope", "openid profile"));
        assert!(has(&oidc, "state", "st") && has(&oidc, "code_challenge", "ch"));
        assert!(has(&oidc, "code_challenge_method", "S256"));
        let oauth = params(&Browser { scope: Some("bench:read".into()), ..browser() });
        assert!(!oauth.iter().any(|(n, _)| n == "nonce"));
        assert!(has(&oauth, "scope", "bench:read") && has(&oauth, "state", "st"));
        let unscoped = params(&Browser { scope: None, ..browser() });
        assert!(!unscoped.iter().any(|(n, _)| n == "nonce" || n == "scope"));
    }

    #[test]
    fn the_login_form_gets_the_credentials_and_keeps_its_hidden_fields() {
        let page = Url::parse("https://id.example/authorize?x=1").unwrap();
        let html = r#"<form method="post" action="/login"><input type="hidden" name="csrf_token"
            value="t"><input name="username" value="hint"><input type="password" name="password">
            </form>"#;
        let Next::Post(url, fields) = browser().sign_in(&forms(html)[0], &page).unwrap() else {
            panic!("a POST form")
        };
        assert_eq!(url.as_str(), "https://id.example/login");
        let expected = [("csrf_token", "t"), ("username", "alice"), ("password", "pw")];
        let fields: Vec<(&str, &str)> =
            fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(fields, expected);
    }
}
