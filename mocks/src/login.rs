//! The browser login of an authorization server: the authorization
//! endpoint, a login page for the configured users, the authorization codes
//! it hands out (RFC 6749 §4.1, PKCE of RFC 7636) and logout.
//!
//! One implementation for the mock UAA (`/oauth/authorize`, `/login.do`,
//! `/logout.do`: what the application router's login and central logout
//! call) and the mock IAS tenants (`/oauth2/authorize`, `/oauth2/logout`).
//! The server decides who may log in and which redirect URIs a client
//! registered; the rules of a code are `rules::authorization_code`.
//!
//! Sessions and codes are bounded in number (oldest dropped first); a code
//! is single use and dies after [`CODE_LIFETIME`](crate::rules::authorization_code::CODE_LIFETIME)
//! seconds. The page is TEST ONLY: no CSRF token, no lockout.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderMap, Response, StatusCode};

use crate::identity::OAuthClient;
use crate::rules::authorization_code::{self as rules, Challenge, Issued, Redemption};

/// Where a server mounts its login.
#[derive(Debug, Clone, Copy)]
pub struct Paths {
    pub authorize: &'static str,
    pub login: &'static str,
    pub logout: &'static str,
}

/// A code handed out, waiting for the token request.
#[derive(Debug, Clone)]
struct Code {
    realm: String,
    client_id: String,
    redirect_uri: Option<String>,
    challenge: Option<Challenge>,
    expires: i64,
    user: String,
    /// `scope` of the authorization request, if any.
    scope: Option<String>,
}

/// What a redeemed code grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub user: String,
    pub scope: Option<String>,
}

/// Why a code is not redeemed (all `invalid_grant`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("unknown or already used authorization code (RFC 6749 §4.1.2: a code is used once)")]
    Unknown,
    #[error("the code was issued by another tenant")]
    OtherRealm,
    #[error(transparent)]
    Rule(#[from] rules::RedeemError),
}

/// Sessions and codes kept at most (each).
pub const MAX_ENTRIES: usize = 10_000;
/// Longest `scope` a code remembers, bytes.
pub const MAX_SCOPE: usize = 1024;
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "IDPROP_SESSION";

#[derive(Default)]
struct Store {
    /// session id → (realm, user name)
    sessions: HashMap<String, (String, String)>,
    session_order: VecDeque<String>,
    codes: HashMap<String, Code>,
    code_order: VecDeque<String>,
}

/// A server's browser login. Cheap to clone.
#[derive(Clone)]
pub struct BrowserLogin {
    paths: Paths,
    title: &'static str,
    store: Arc<Mutex<Store>>,
}

impl std::fmt::Debug for BrowserLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserLogin").field("paths", &self.paths).finish_non_exhaustive()
    }
}

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636
/// §4.3), from its query or the login form's hidden field.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest {
    pairs: Vec<(String, String)>,
}

impl AuthorizeRequest {
    pub fn parse(query: &str) -> Self {
        Self { pairs: crate::http::decode_pairs(query.as_bytes()) }
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(self.pairs.iter()).finish()
    }

    pub fn client_id(&self) -> Option<&str> {
        self.get("client_id")
    }
}

impl BrowserLogin {
    pub fn new(paths: Paths, title: &'static str) -> Self {
        Self { paths, title, store: Default::default() }
    }

    /// The user of the request's session in `realm`, if logged in.
    pub fn session_user(&self, realm: &str, headers: &HeaderMap) -> Option<String> {
        let id = session_cookie(headers)?;
        let store = self.store.lock().expect("login store");
        store.sessions.get(&id).filter(|(r, _)| r == realm).map(|(_, u)| u.clone())
    }

    /// `GET <authorize>`: checks the client and its redirect URI (a bad one
    /// gets a page, never a redirect, §4.1.2.1), then the request (errors go
    /// back to the client, §4.1.2.1), then logs the browser in or hands out
    /// a code.
    /// `client` finds a client of the realm by id.
    pub fn authorize(
        &self,
        realm: &str,
        query: &str,
        client: impl Fn(&str) -> Option<OAuthClient>,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let req = &AuthorizeRequest::parse(query);
        let Some(client_id) = req.client_id() else {
            return page(StatusCode::BAD_REQUEST, self.title, "client_id is missing (RFC 6749 §4.1.1)", None);
        };
        let Some(client) = client(client_id) else {
            return page(StatusCode::BAD_REQUEST, self.title, &format!("unknown client {client_id:?}"), None);
        };
        let redirect = match req.get("redirect_uri") {
            Some(r) if client.may_redirect_to(r) => r.to_string(),
            Some(r) => {
                let why = format!(
                    "redirect_uri {r:?} is not registered for client {client_id:?} (RFC 6749 §4.1.2.1); registered: {}",
                    client.redirect_uris.join(", ")
                );
                return page(StatusCode::BAD_REQUEST, self.title, &why, None);
            }
            None => {
                return page(
                    StatusCode::BAD_REQUEST,
                    self.title,
                    "redirect_uri is required by this server (RFC 6749 §3.1.2.3 lets it insist)",
                    None,
                )
            }
        };
        let state = req.get("state");
        if req.get("response_type") != Some("code") {
            return redirect_error(&redirect, "unsupported_response_type", "only response_type=code", state);
        }
        // What a code keeps stays small: 10,000 codes at most, each bounded.
        if req.get("scope").is_some_and(|sc| sc.len() > MAX_SCOPE) {
            return redirect_error(&redirect, "invalid_scope", "scope is longer than 1 KiB", state);
        }
        let challenge =
            match rules::challenge(req.get("code_challenge"), req.get("code_challenge_method"), client.pkce.into()) {
                Ok(c) => c,
                Err(e) => return redirect_error(&redirect, "invalid_request", &e.to_string(), state),
            };
        let Some(user) = self.session_user(realm, headers) else {
            return self.login_page(StatusCode::OK, req, None);
        };
        let code = crate::tokens::random_hex(20);
        self.store.lock().expect("login store").put_code(
            code.clone(),
            Code {
                realm: realm.to_string(),
                client_id: client_id.to_string(),
                redirect_uri: Some(redirect.clone()),
                challenge,
                expires: crate::tokens::unix_now() as i64 + rules::CODE_LIFETIME,
                user,
                scope: req.get("scope").map(str::to_string),
            },
        );
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = state {
            params.push(("state", s));
        }
        found(&with_query(&redirect, &params), None)
    }

    /// `POST <login>`: `username`, `password` and the authorization request
    /// in `request`. `check` names the user the credentials prove, if any.
    /// Success starts a session and goes back to the authorization endpoint.
    pub fn login(
        &self,
        realm: &str,
        form: &[(String, String)],
        check: impl Fn(&str, &str) -> Option<String>,
    ) -> Response<Body> {
        let get = |k: &str| form.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
        let req = AuthorizeRequest::parse(get("request"));
        let Some(user) = check(get("username"), get("password")) else {
            return self.login_page(StatusCode::UNAUTHORIZED, &req, Some("Wrong user name or password."));
        };
        let id = crate::tokens::random_hex(20);
        self.store.lock().expect("login store").put_session(id.clone(), realm.to_string(), user);
        let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Lax");
        found(&format!("{}?{}", self.paths.authorize, req.query()), Some(cookie))
    }

    /// `GET <logout>`: ends the session; goes to `redirect` (UAA) or
    /// `post_logout_redirect_uri` (OIDC) only if the `client_id`'s client
    /// registered it (no open redirect), else a page says so.
    pub fn logout(
        &self,
        headers: &HeaderMap,
        query: &str,
        client: impl Fn(&str) -> Option<OAuthClient>,
    ) -> Response<Body> {
        if let Some(id) = session_cookie(headers) {
            let mut store = self.store.lock().expect("login store");
            store.sessions.remove(&id);
            store.session_order.retain(|s| *s != id);
        }
        let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0");
        let q = AuthorizeRequest::parse(query);
        let allowed = |r: &str| q.client_id().and_then(&client).is_some_and(|c| c.may_redirect_to(r));
        match q.get("redirect").or_else(|| q.get("post_logout_redirect_uri")) {
            Some(r) if allowed(r) => found(r, Some(clear)),
            Some(r) => {
                let mut resp = page(
                    StatusCode::OK,
                    self.title,
                    &format!("Logged out. Not redirected to {r:?}: no client registered it."),
                    None,
                );
                resp.headers_mut().append(header::SET_COOKIE, clear.parse().expect("cookie value"));
                resp
            }
            None => {
                let mut resp = page(StatusCode::OK, self.title, "Logged out.", None);
                resp.headers_mut().append(header::SET_COOKIE, clear.parse().expect("cookie value"));
                resp
            }
        }
    }

    /// Redeems `code` for the token request `r` (once: a code presented is
    /// gone, whatever the outcome).
    pub fn redeem(&self, realm: &str, code: &str, r: &Redemption<'_>) -> Result<Granted, CodeError> {
        let c = {
            let mut store = self.store.lock().expect("login store");
            let c = store.codes.remove(code).ok_or(CodeError::Unknown)?;
            store.code_order.retain(|x| x != code);
            c
        };
        if c.realm != realm {
            return Err(CodeError::OtherRealm);
        }
        let issued = Issued {
            client_id: &c.client_id,
            redirect_uri: c.redirect_uri.as_deref(),
            challenge: c.challenge.as_ref(),
            expires: c.expires,
        };
        rules::redeem(&issued, r)?;
        Ok(Granted { user: c.user, scope: c.scope })
    }

    fn login_page(&self, status: StatusCode, req: &AuthorizeRequest, error: Option<&str>) -> Response<Body> {
        let form = format!(
            r#"<form method="post" action="{action}">
<input type="hidden" name="request" value="{request}">
<label>User name <input name="username" id="username" autocomplete="username" autofocus></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button type="submit" id="login">Log on</button>
</form>"#,
            action = self.paths.login,
            request = escape(&req.query()),
        );
        page(status, self.title, error.unwrap_or("Log on with a configured user (TEST ONLY)."), Some(&form))
    }
}

impl Store {
    fn put_code(&mut self, id: String, code: Code) {
        if self.codes.len() >= MAX_ENTRIES {
            if let Some(old) = self.code_order.pop_front() {
                self.codes.remove(&old);
            }
        }
        self.code_order.push_back(id.clone());
        self.codes.insert(id, code);
    }

    fn put_session(&mut self, id: String, realm: String, user: String) {
        if self.sessions.len() >= MAX_ENTRIES {
            if let Some(old) = self.session_order.pop_front() {
                self.sessions.remove(&old);
            }
        }
        self.session_order.push_back(id.clone());
        self.sessions.insert(id, (realm, user));
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// `uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let q = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{q}")
}

/// RFC 6749 §4.1.2.1: an error of a request whose redirect URI is good
/// goes back to the client.
fn redirect_error(redirect: &str, error: &str, description: &str, state: Option<&str>) -> Response<Body> {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    found(&with_query(redirect, &params), None)
}

fn found(location: &str, cookie: Option<String>) -> Response<Body> {
    let mut b = Response::builder().status(StatusCode::FOUND).header(header::LOCATION, location);
    if let Some(c) = cookie {
        b = b.header(header::SET_COOKIE, c);
    }
    b.body(Body::empty()).unwrap_or_else(|_| {
        crate::http::error_response(StatusCode::BAD_REQUEST, "redirect target is not a valid header value")
    })
}

fn page(status: StatusCode, title: &str, message: &str, form: Option<&str>) -> Response<Body> {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1><p id=\"message\">{m}</p>{f}</body></html>",
        t = escape(title),
        m = escape(message),
        f = form.unwrap_or(""),
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(html))
        .expect("static response")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
