//! Scriptable OAuth2 token servers: the seed's
//! `http://authserver.example.com/oauth/token`, under a `.test` host name,
//! behaving however a test says.
//!
//! A token server answers `POST` on any path (token endpoints live at many
//! paths: `/oauth/token`, `/oauth2/apitoken/v1`, `/tenant/{t}/oauth/token`),
//! and also under every subdomain of its host (the `Common` URL type puts the
//! tenant there).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, Response, StatusCode};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::{decode_pairs, oauth_error, parse_basic, request_host, BufferedBody, CloseConnection, Note};
use crate::uaa::ClientAuthMethod;

/// A scripted error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScriptedError {
    pub status: u16,
    #[serde(default)]
    pub body: String,
}

/// What a token server does with the next requests. Every field has a
/// harmless default: a default server accepts any client, any way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct TokenServerBehaviour {
    /// Where client credentials are accepted.
    pub client_auth: ClientAuthMethod,
    /// The only client accepted (any when absent).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Headers that must be present with these values.
    pub required_headers: BTreeMap<String, String>,
    /// Query parameters that must be present with these values.
    pub required_query: BTreeMap<String, String>,
    /// Form fields that must be present with these values.
    pub required_form: BTreeMap<String, String>,
    /// `expires_in` of issued tokens, seconds.
    pub expires_in: u64,
    /// Send `expires_in` as a JSON string ("3600") instead of a number.
    pub expires_in_as_string: bool,
    /// Wait this long before answering (read-timeout tests).
    pub delay_ms: u64,
    /// The gateway waits this long before confirming a `CONNECT` to this
    /// host (connect-timeout tests).
    pub connect_delay_ms: u64,
    /// What a well-formed request gets: a token unless scripted otherwise.
    pub answer: Answer,
    /// Validate saml2-bearer assertions (RFC 7522) instead of accepting any.
    pub saml: Option<SamlValidation>,
}

/// How a token server validates SAML 2.0 bearer assertions: the identity
/// providers it trusts (their certificates) and the audiences it answers
/// to; the `Recipient` must be the URL the request came to (`SB-1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SamlValidation {
    pub trusted: Vec<crate::saml::TrustedSamlIdp>,
    /// Audiences accepted beside the token endpoint URL.
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// What a token server answers a well-formed request: one of these, never
/// two at once.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A token (`access_token`, `token_type`, `expires_in`).
    #[default]
    Token,
    /// This error status and body instead of a token.
    Error(ScriptedError),
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// The connection closed without an answer.
    CloseConnection,
    /// The status line, headers and half the body, then the connection dropped.
    DropMidAnswer,
}

impl Default for TokenServerBehaviour {
    fn default() -> Self {
        Self {
            client_auth: ClientAuthMethod::Either,
            client_id: None,
            client_secret: None,
            required_headers: BTreeMap::new(),
            required_query: BTreeMap::new(),
            required_form: BTreeMap::new(),
            expires_in: 3600,
            expires_in_as_string: false,
            delay_ms: 0,
            connect_delay_ms: 0,
            answer: Answer::Token,
            saml: None,
        }
    }
}

impl TokenServerBehaviour {
    /// Accepts only this client.
    pub fn client(mut self, id: &str, secret: &str) -> Self {
        self.client_id = Some(id.into());
        self.client_secret = Some(secret.into());
        self
    }
    pub fn client_auth(mut self, m: ClientAuthMethod) -> Self {
        self.client_auth = m;
        self
    }
    pub fn require_header(mut self, k: &str, v: &str) -> Self {
        self.required_headers.insert(k.to_ascii_lowercase(), v.into());
        self
    }
    pub fn require_query(mut self, k: &str, v: &str) -> Self {
        self.required_query.insert(k.into(), v.into());
        self
    }
    pub fn require_form(mut self, k: &str, v: &str) -> Self {
        self.required_form.insert(k.into(), v.into());
        self
    }
    pub fn expires_in(mut self, secs: u64) -> Self {
        self.expires_in = secs;
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay_ms = d.as_millis() as u64;
        self
    }
    pub fn connect_delay(mut self, d: Duration) -> Self {
        self.connect_delay_ms = d.as_millis() as u64;
        self
    }
    pub fn error(mut self, status: u16, body: &str) -> Self {
        self.answer = Answer::Error(ScriptedError { status, body: body.into() });
        self
    }
    pub fn malformed_json(mut self) -> Self {
        self.answer = Answer::MalformedJson;
        self
    }
    pub fn close_connection(mut self) -> Self {
        self.answer = Answer::CloseConnection;
        self
    }
    pub fn drop_mid_answer(mut self) -> Self {
        self.answer = Answer::DropMidAnswer;
        self
    }
    /// Validates saml2-bearer assertions: signed by one of `trusted`, for
    /// one of `audiences` (or the token endpoint URL).
    pub fn validate_saml(mut self, trusted: Vec<crate::saml::TrustedSamlIdp>, audiences: &[&str]) -> Self {
        self.saml = Some(SamlValidation { trusted, audiences: audiences.iter().map(|a| a.to_string()).collect() });
        self
    }
}

/// A scriptable token server. Clones share behaviour and counters.
#[derive(Clone, Debug)]
pub struct TokenServer {
    host: String,
    behaviour: Arc<RwLock<TokenServerBehaviour>>,
    issued: Arc<AtomicU64>,
    connect_delay_ms: Arc<AtomicU64>,
}

impl TokenServer {
    /// A server answering for `host` (and its subdomains).
    pub fn new(host: &str, behaviour: TokenServerBehaviour) -> Self {
        Self {
            host: host.to_ascii_lowercase(),
            connect_delay_ms: Arc::new(AtomicU64::new(behaviour.connect_delay_ms)),
            behaviour: Arc::new(RwLock::new(behaviour)),
            issued: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `https://<host>/oauth/token`.
    pub fn url(&self) -> String {
        format!("https://{}/oauth/token", self.host)
    }

    /// Replaces the behaviour for the next requests.
    pub fn set_behaviour(&self, b: TokenServerBehaviour) {
        self.connect_delay_ms.store(b.connect_delay_ms, Ordering::Relaxed);
        *self.behaviour.write().expect("behaviour lock") = b;
    }

    /// Shared with the gateway's route, which delays `CONNECT` by it.
    pub fn connect_delay_handle(&self) -> Arc<AtomicU64> {
        self.connect_delay_ms.clone()
    }

    pub fn behaviour(&self) -> TokenServerBehaviour {
        self.behaviour.read().expect("behaviour lock").clone()
    }

    /// How many tokens it has issued.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }
}

async fn handle(State(ts): State<TokenServer>, req: Request) -> Response<Body> {
    let b = ts.behaviour();
    if b.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(b.delay_ms)).await;
    }
    if b.answer == Answer::CloseConnection {
        let mut r = Response::new(Body::empty());
        r.extensions_mut().insert(CloseConnection);
        r.extensions_mut().insert(Note("scripted: connection closed without answer".into()));
        return r;
    }
    if req.method() != Method::POST {
        return oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "token requests must be POST");
    }
    let body = req.extensions().get::<BufferedBody>().map(|b| b.0.clone()).unwrap_or_default();
    let query = req.uri().query().map(|q| decode_pairs(q.as_bytes())).unwrap_or_default();
    let form = decode_pairs(&body);
    let get = |list: &[(String, String)], k: &str| list.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let param = |k: &str| get(&form, k).or_else(|| get(&query, k));

    for (k, v) in &b.required_headers {
        let got = req.headers().get(k.as_str()).and_then(|h| h.to_str().ok());
        if got != Some(v.as_str()) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("required header {k}: {v} missing (got {got:?})"),
            );
        }
    }
    for (k, v) in &b.required_query {
        if get(&query, k).as_deref() != Some(v.as_str()) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("required query parameter {k}={v} missing"),
            );
        }
    }
    for (k, v) in &b.required_form {
        if get(&form, k).as_deref() != Some(v.as_str()) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("required form field {k}={v} missing"),
            );
        }
    }

    let basic = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(parse_basic);
    let in_body = get(&form, "client_id").map(|id| (id, get(&form, "client_secret").unwrap_or_default()));
    let presented = match b.client_auth {
        ClientAuthMethod::Basic => basic.clone(),
        ClientAuthMethod::Body => in_body.clone(),
        ClientAuthMethod::Either => basic.clone().or(in_body.clone()),
    };
    let Some((id, secret)) = presented else {
        let why = match (b.client_auth, basic.is_some(), in_body.is_some()) {
            (ClientAuthMethod::Basic, _, true) => {
                "credentials only accepted in the Authorization header (Basic), found them in the body"
            }
            (ClientAuthMethod::Body, true, _) => "credentials only accepted in the body, found HTTP Basic",
            (ClientAuthMethod::Basic, _, _) => "no HTTP Basic client authentication",
            (ClientAuthMethod::Body, _, _) => "no client_id/client_secret in the body",
            _ => "no client authentication",
        };
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    };
    if let Some(want) = &b.client_id {
        if &id != want || Some(&secret) != b.client_secret.as_ref() {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                &format!("bad client credentials for {id:?}"),
            );
        }
    }
    let Some(grant) = param("grant_type") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "missing grant_type");
    };
    if let Answer::Error(e) = &b.answer {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(e.body.clone()))
            .expect("valid response");
        r.extensions_mut().insert(Note(format!("scripted error {}", e.status)));
        return r;
    }
    if b.answer == Answer::MalformedJson {
        let mut r = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"access_token\": \"unterminated"))
            .expect("valid response");
        r.extensions_mut().insert(Note("scripted: malformed JSON".into()));
        return r;
    }
    let host = request_host(req.uri(), req.headers()).unwrap_or_default();
    if let (Some(v), crate::rules::saml_bearer::GRANT_TYPE) = (&b.saml, grant.as_str()) {
        let url = format!("https://{host}{}", req.uri().path());
        if let Err(reason) = check_saml(v, param("assertion").as_deref(), &url) {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &format!("assertion rejected: {reason}"));
        }
    }
    let n = ts.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("ts.{}.{}.{}", host, n, crate::tokens::random_hex(8));
    let expires_in = if b.expires_in_as_string { json!(b.expires_in.to_string()) } else { json!(b.expires_in) };
    let mut body = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "grant_type": grant,
        "client_id": id,
    });
    if let Some(scope) = param("scope") {
        body["scope"] = json!(scope);
    }
    // RFC 8693 §2.2.1: "issued_token_type REQUIRED" in a token-exchange answer.
    if grant == crate::rules::token_request::TOKEN_EXCHANGE_GRANT {
        body["issued_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
    }
    if b.answer == Answer::DropMidAnswer {
        let text = body.to_string();
        let half = text.as_bytes()[..text.len() / 2].to_vec();
        // The half is flushed before the failure, so the client has the
        // head and part of the body when the connection goes.
        let chunks = futures::stream::unfold(0u8, move |step| {
            let half = half.clone();
            async move {
                match step {
                    0 => Some((Ok(bytes::Bytes::from(half)), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Some((Err(std::io::Error::other("scripted: connection dropped mid-answer")), 2))
                    }
                    _ => None,
                }
            }
        });
        let mut r = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, text.len())
            .body(Body::from_stream(chunks))
            .expect("valid response");
        r.extensions_mut().insert(Note("scripted: dropped mid-answer".into()));
        return r;
    }
    crate::http::json_response(StatusCode::OK, &body)
}

/// `SB-1` at a token server: the assertion verifies with a trusted
/// certificate and passes RFC 7522 §3 for `token_url`.
fn check_saml(v: &SamlValidation, assertion: Option<&str>, token_url: &str) -> Result<(), String> {
    let xml = crate::saml::decode(assertion.ok_or("no assertion parameter")?).map_err(|e| e.to_string())?;
    let (facts, _) = crate::saml::verify(&xml, &v.trusted).map_err(|e| e.to_string())?;
    let mut audiences = v.audiences.clone();
    audiences.push(token_url.to_string());
    let expected = crate::rules::saml_bearer::Expected {
        audiences: &audiences,
        token_endpoint: token_url,
        now: crate::tokens::unix_now() as i64,
        skew: 60,
    };
    crate::rules::saml_bearer::check(&facts, &expected).map_err(|e| e.to_string())
}
