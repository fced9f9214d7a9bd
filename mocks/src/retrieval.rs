//! Token retrieval: the rules of [`crate::rules`] carried out over the
//! network, with the timeouts applied, client certificates presented, and
//! tokens cached for their validity.
//!
//! The mock Destination service and the harness's `builtin:reference` both
//! run this; so what the reference does is what the mock does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rules::cache::{cacheable_for, CacheKey};
use crate::rules::readings::ConcurrentLookups;
use crate::rules::token_request::{plan_with, with_client_assertion, KeyStoreRef, Plan, ProxyType, TokenRequest};
use crate::rules::{AuthToken, AuthenticationType, Destination, ErrorCode, Readings};

/// How the retriever reaches token services: through the gateway, trusting
/// the test CA, like any client on the Internet.
#[derive(Debug, Clone)]
pub struct Network {
    /// HTTP proxy for every request (`http://127.0.0.1:<gateway>`).
    pub proxy: String,
    /// PEM bundle of the CAs to trust.
    pub ca_pem: String,
    /// Hosts reached without the proxy (`NO_PROXY` syntax); empty: none.
    pub no_proxy: String,
    /// How `OnPremise` token services are reached; `None`: they are not
    /// (the harness's reference has no Connectivity proxy of its own).
    pub on_premise: Option<OnPremiseRoute>,
}

/// The Connectivity proxy the Destination service reaches `OnPremise`
/// token services through, and its `Proxy-Authorization` per tenant.
#[derive(Clone)]
pub struct OnPremiseRoute {
    /// `http://127.0.0.1:<connectivity proxy>`.
    pub proxy: String,
    /// A token of the connectivity binding for a tenant.
    pub proxy_token: Arc<dyn Fn(&str) -> String + Send + Sync>,
}

impl std::fmt::Debug for OnPremiseRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnPremiseRoute").field("proxy", &self.proxy).finish_non_exhaustive()
    }
}

/// A key store uploaded with a destination (`certificates` of the answer;
/// `CA-6`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Certificate {
    #[serde(rename = "Name", alias = "name")]
    pub name: String,
    #[serde(rename = "Type", alias = "type", default = "certificate_type")]
    pub kind: String,
    /// Base64 of the file.
    #[serde(rename = "Content", alias = "content")]
    pub content: String,
}

fn certificate_type() -> String {
    "CERTIFICATE".into()
}

/// The Find Destination answer (`FD-1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FindDestinationAnswer {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub owner: Option<Value>,
    pub destination_configuration: Destination,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_tokens: Option<Vec<AuthToken>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub certificates: Option<Vec<Certificate>>,
}

/// Looks up another destination by name (for `clientAssertion.destinationName`).
pub type DestinationLookup<'a> = &'a (dyn Fn(&str) -> Option<Destination> + Sync);

/// One Find Destination request.
#[derive(Clone, Copy)]
pub struct FindRequest<'a> {
    pub destination: &'a Destination,
    pub tenant: &'a str,
    /// The caller's tokens from the request headers (`X-user-token`,
    /// `X-refresh-token`, `X-subject-token`, `X-client-assertion`, …).
    pub tokens: crate::rules::RequestTokens<'a>,
    pub certificates: &'a [Certificate],
    pub lookup: Option<DestinationLookup<'a>>,
    /// The subaccount's Destination Trust, which signs the assertions of
    /// `OAuth2SAMLBearerAssertion` destinations (c69ea6a: "sign it using the
    /// subaccount trust certificate").
    pub saml_signer: Option<&'a crate::saml::SamlSigner>,
}

#[derive(Debug, Clone)]
struct Fetched {
    access_token: String,
    expires_in: Option<u64>,
    scope: Option<String>,
    /// RFC 8693 §2.2.1, passed on for `OAuth2TokenExchange` (83a3f3b).
    issued_token_type: Option<String>,
}

#[derive(Debug, Clone)]
struct Cached {
    token: Fetched,
    fetched_at: Instant,
    fresh_for: Duration,
}

impl Cached {
    /// The cached token with the lifetime it has left: `expires_in` counts
    /// from the time the response is generated (83a3f3b), not from the
    /// fetch.
    fn remaining(&self) -> Fetched {
        let mut t = self.token.clone();
        t.expires_in = t.expires_in.map(|e| e.saturating_sub(self.fetched_at.elapsed().as_secs()));
        t
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Cache entries kept at most (one per tenant × destination × user ×
/// client × URL); past it, stale entries go, then every idle one.
pub const MAX_CACHED_TOKENS: usize = 10_000;

/// Makes room in a full cache: stale and empty entries go first; if that
/// is not enough, every entry not being fetched right now.
fn sweep(cache: &mut HashMap<CacheKey, Slot>) {
    cache.retain(|_, slot| match slot.try_lock() {
        Ok(c) => c.as_ref().is_some_and(|c| c.fetched_at.elapsed() < c.fresh_for),
        Err(_) => true,
    });
    if cache.len() >= MAX_CACHED_TOKENS {
        cache.retain(|_, slot| slot.try_lock().is_err());
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    connect: Duration,
    read: Duration,
    identity: Option<String>,
    trust_all: bool,
    /// Through the Connectivity proxy (`OnPremise` token services).
    via_connectivity: bool,
}

/// Fetches and caches tokens for destinations.
pub struct TokenRetriever {
    /// Replaced by [`TokenRetriever::set_network`]; the token cache stays.
    network: std::sync::RwLock<Arc<Network>>,
    readings: Readings,
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
    cache: Mutex<HashMap<CacheKey, Slot>>,
}

impl std::fmt::Debug for TokenRetriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRetriever").field("proxy", &self.network().proxy).finish_non_exhaustive()
    }
}

impl TokenRetriever {
    pub fn new(network: Network) -> Self {
        Self::with_readings(network, Readings::IDPROP)
    }

    /// A retriever taking `readings` where the pages leave a choice (`CA-4`,
    /// `CH-3` for Dedicated URLs, `CH-4`).
    pub fn with_readings(network: Network, readings: Readings) -> Self {
        Self {
            network: std::sync::RwLock::new(Arc::new(network)),
            readings,
            clients: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn network(&self) -> Arc<Network> {
        self.network.read().expect("network lock").clone()
    }

    /// Reaches token services through `network` from now on (an adapter
    /// process serving scenario after scenario, each with its own stack).
    /// The HTTP clients go (they hold the old proxy and trust); cached
    /// tokens stay until [`TokenRetriever::reset`].
    pub fn set_network(&self, network: Network) {
        *self.network.write().expect("network lock") = Arc::new(network);
        self.clients.lock().expect("clients lock").clear();
    }

    /// Forgets every cached token.
    pub fn reset(&self) {
        self.cache.lock().expect("cache lock").clear();
    }

    /// Answers Find Destination for one destination: the properties as
    /// configured, and the tokens its authentication type asks for. A
    /// failure is an `authTokens` entry with `error`; the destination is
    /// still returned (`FD-4`).
    pub async fn find_destination(&self, req: FindRequest<'_>) -> FindDestinationAnswer {
        let auth_tokens = match crate::rules::plan_for(req.destination, req.tenant, &req.tokens, &self.readings) {
            Ok(Plan::NoToken) => None,
            Ok(Plan::Static(t)) => Some(vec![t]),
            Ok(Plan::Fetch(tr)) => Some(vec![match self.token(&tr, &req, 0).await {
                Ok(f) => {
                    let mut t = AuthToken::bearer(tr.auth, &f.access_token, f.expires_in, f.scope);
                    if tr.auth == AuthenticationType::OAuth2TokenExchange {
                        // 83a3f3b: "present and required only in
                        // OAuth2TokenExchange destinations"; RFC 8693 §2.2.1
                        // makes the token service send it.
                        t.issued_token_type = Some(
                            f.issued_token_type
                                .unwrap_or_else(|| "urn:ietf:params:oauth:token-type:access_token".into()),
                        );
                    }
                    t
                }
                Err(e) => AuthToken::error(e.code, e.message),
            }]),
            Err(e) => Some(vec![AuthToken::error(e.code(), e.to_string())]),
        };
        FindDestinationAnswer {
            owner: None,
            destination_configuration: req.destination.clone(),
            auth_tokens,
            certificates: None,
        }
    }

    /// A token for `tr`: from the cache while fresh (`CH-1`, `CH-2`), else
    /// fetched, with concurrent callers for the same key waiting for one
    /// request (`CH-4`).
    async fn token(&self, tr: &TokenRequest, req: &FindRequest<'_>, depth: u8) -> Result<Fetched, RetrievalError> {
        let slot: Slot = {
            let mut cache = self.cache.lock().expect("cache lock");
            if cache.len() >= MAX_CACHED_TOKENS && !cache.contains_key(&tr.cache_key) {
                sweep(&mut cache);
            }
            cache.entry(tr.cache_key.clone()).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            if c.fetched_at.elapsed() < c.fresh_for {
                return Ok(c.remaining());
            }
        }
        *guard = None;
        if self.readings.concurrent_lookups == ConcurrentLookups::Independent {
            // Others may fetch meanwhile; the last one to finish is cached.
            drop(guard);
            let fetched = self.fetch(tr, req, depth).await?;
            if let Some(fresh_for) = cacheable_for(fetched.expires_in) {
                *slot.lock().await = Some(Cached { token: fetched.clone(), fetched_at: Instant::now(), fresh_for });
            }
            return Ok(fetched);
        }
        let fetched = self.fetch(tr, req, depth).await?;
        if let Some(fresh_for) = cacheable_for(fetched.expires_in) {
            *guard = Some(Cached { token: fetched.clone(), fetched_at: Instant::now(), fresh_for });
        }
        Ok(fetched)
    }

    fn client(&self, tr: &TokenRequest, identity: Option<String>) -> Result<reqwest::Client, String> {
        let key = ClientKey {
            connect: tr.timeouts.connect,
            read: tr.timeouts.read,
            identity,
            trust_all: tr.trust_all,
            via_connectivity: false,
        };
        self.client_for(key)
    }

    /// The keys at a destination's `x_user_token.jwks_uri` (283cd2d,
    /// e3c333f: "URI of the JSON web key set, containing the signing keys
    /// which are used to validate the JWT provided in the X-User-Token
    /// header"), fetched through the gateway like a token service
    /// ([`crate::http::get_jwks`]; five seconds).
    pub async fn fetch_jwks(&self, uri: &str) -> Result<jsonwebtoken::jwk::JwkSet, String> {
        let five = Duration::from_secs(5);
        let key = ClientKey { connect: five, read: five, identity: None, trust_all: false, via_connectivity: false };
        crate::http::get_jwks(&self.client_for(key)?, uri, five).await
    }

    fn client_for(&self, key: ClientKey) -> Result<reqwest::Client, String> {
        if let Some(c) = self.clients.lock().expect("clients lock").get(&key) {
            return Ok(c.clone());
        }
        let network = self.network();
        let mut b = reqwest::Client::builder()
            .proxy(
                reqwest::Proxy::all(&network.proxy)
                    .map_err(|e| format!("bad proxy: {e}"))?
                    .no_proxy(reqwest::NoProxy::from_string(&network.no_proxy)),
            )
            .connect_timeout(key.connect)
            .read_timeout(key.read)
            .pool_idle_timeout(Duration::from_secs(30));
        let cas = reqwest::Certificate::from_pem_bundle(network.ca_pem.as_bytes())
            .map_err(|e| format!("bad CA bundle: {e}"))?;
        b = b.tls_certs_only(cas);
        if key.trust_all {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &key.identity {
            b = b.identity(
                reqwest::Identity::from_pem(pem.as_bytes())
                    .map_err(|e| format!("key store is not a usable PEM certificate and key: {e}"))?,
            );
        }
        let c = b.build().map_err(|e| format!("cannot build HTTP client: {e}"))?;
        self.clients.lock().expect("clients lock").insert(key, c.clone());
        Ok(c)
    }

    async fn fetch(&self, tr: &TokenRequest, req: &FindRequest<'_>, depth: u8) -> Result<Fetched, RetrievalError> {
        use ErrorCode::Configuration;
        let err = RetrievalError::new;
        if tr.proxy_type == ProxyType::OnPremise {
            return self.fetch_on_premise(tr, req).await;
        }
        let identity = tr
            .key_store
            .as_ref()
            .map(|ks| key_store_pem(ks, req.certificates))
            .transpose()
            .map_err(|m| err(Configuration, m))?;
        let client = self.client(tr, identity).map_err(|m| err(Configuration, m))?;
        let mut form = tr.form.clone();
        // CA-7: a client assertion fetched through another destination.
        if let Some(name) = &tr.client_assertion_destination {
            if depth > 0 {
                return Err(err(
                    Configuration,
                    format!(
                    "clientAssertion.destinationName {name:?} itself needs a client assertion; chains are not followed"
                ),
                ));
            }
            let lookup = req.lookup.ok_or_else(|| {
                err(
                    Configuration,
                    format!("clientAssertion.destinationName {name:?}: no other destinations are known here"),
                )
            })?;
            let provider = lookup(name).ok_or_else(|| {
                err(Configuration, format!("clientAssertion.destinationName {name:?}: no such destination"))
            })?;
            let assertion_type = provider
                .get("clientAssertion.type")
                .ok_or_else(|| {
                    err(
                        Configuration,
                        format!("destination {name:?} provides client assertions but has no clientAssertion.type"),
                    )
                })?
                .to_string();
            let Plan::Fetch(ptr) = plan_with(&provider, req.tenant, None, &self.readings)
                .map_err(|e| err(e.code(), format!("client assertion destination {name:?}: {e}")))?
            else {
                return Err(err(
                    Configuration,
                    format!("client assertion destination {name:?} must be OAuth2ClientCredentials"),
                ));
            };
            if ptr.auth != AuthenticationType::OAuth2ClientCredentials {
                return Err(err(
                    Configuration,
                    format!("client assertion destination {name:?} must be OAuth2ClientCredentials"),
                ));
            }
            let assertion = Box::pin(self.token(&ptr, req, depth + 1))
                .await
                .map_err(|e| err(e.code, format!("fetching the client assertion through {name:?}: {}", e.message)))?;
            with_client_assertion(&mut form, assertion_type, assertion.access_token);
        }
        if let Some(plan) = &tr.saml {
            form.push(("assertion".into(), saml_assertion(plan, req.saml_signer).map_err(|m| err(Configuration, m))?));
        }
        post_token(client.post(&tr.url).form(&form), tr, "").await
    }
}

impl TokenRetriever {
    /// `TU-6` with `OnPremise`: the token request goes to the Connectivity
    /// proxy as plain HTTP (the Cloud Connector adds TLS towards the OAuth
    /// server), with the connectivity binding's token and the location id.
    async fn fetch_on_premise(&self, tr: &TokenRequest, req: &FindRequest<'_>) -> Result<Fetched, RetrievalError> {
        use ErrorCode::{Configuration, NotSupported};
        let err = RetrievalError::new;
        let network = self.network();
        let Some(route) = &network.on_premise else {
            return Err(err(
                NotSupported,
                format!(
                    "token service {} is to be reached with ProxyType OnPremise (through the Cloud Connector), and no Connectivity proxy is configured here",
                    tr.url
                ),
            ));
        };
        if !tr.url.starts_with("http://") {
            return Err(err(
                Configuration,
                format!(
                    "tokenServiceURL {} with ProxyType OnPremise must be http:// (the virtual host of a Cloud Connector mapping; the connector speaks HTTPS to the OAuth server)",
                    tr.url
                ),
            ));
        }
        if tr.key_store.is_some() {
            return Err(err(
                Configuration,
                "tokenService.KeyStoreLocation cannot be used with an OnPremise token service: the Connectivity proxy is plain HTTP, the Cloud Connector presents its own system certificate".into(),
            ));
        }
        let client = {
            let key = ClientKey {
                connect: tr.timeouts.connect,
                read: tr.timeouts.read,
                identity: None,
                trust_all: false,
                via_connectivity: true,
            };
            let mut clients = self.clients.lock().expect("clients lock");
            match clients.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let c = reqwest::Client::builder()
                        .proxy(
                            reqwest::Proxy::http(&route.proxy)
                                .map_err(|e| err(Configuration, format!("bad proxy: {e}")))?,
                        )
                        .connect_timeout(key.connect)
                        .read_timeout(key.read)
                        .build()
                        .map_err(|e| err(Configuration, format!("cannot build HTTP client: {e}")))?;
                    clients.insert(key, c.clone());
                    c
                }
            }
        };
        let mut rb = client
            .post(&tr.url)
            .form(&tr.form)
            .header("Proxy-Authorization", format!("Bearer {}", (route.proxy_token)(req.tenant)));
        if let Some(l) = &tr.location_id {
            rb = rb.header("SAP-Connectivity-SCC-Location_ID", l.as_str());
        }
        post_token(rb, tr, " (OnPremise, through the Cloud Connector)").await
    }
}

/// Sends a token request (`tr`'s headers and Basic credentials added) and
/// reads the token from the answer; `via` says how it travelled, for errors.
async fn post_token(rb: reqwest::RequestBuilder, tr: &TokenRequest, via: &str) -> Result<Fetched, RetrievalError> {
    let mut rb = rb;
    for (k, v) in &tr.headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    if let Some((u, p)) = &tr.basic {
        rb = rb.basic_auth(u, Some(p));
    }
    let resp = rb.send().await.map_err(|e| describe_error(&e, tr))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| describe_error(&e, tr))?;
    if !status.is_success() {
        return Err(RetrievalError::new(
            ErrorCode::HttpStatus,
            format!("token service {}{via} answered HTTP {}: {}", tr.url, status.as_u16(), excerpt(&body)),
        ));
    }
    parse_token_response(&body).map_err(|e| {
        RetrievalError::new(
            ErrorCode::BadResponse,
            format!("token service {} answered HTTP {} with {e}", tr.url, status.as_u16()),
        )
    })
}

/// Why no token could be fetched: the `authTokens[].error` text (its
/// `Display`) and its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RetrievalError {
    pub code: ErrorCode,
    pub message: String,
}

impl RetrievalError {
    fn new(code: ErrorCode, message: String) -> Self {
        Self { code, message }
    }
}

fn describe_error(e: &reqwest::Error, tr: &TokenRequest) -> RetrievalError {
    let code = if e.is_timeout() {
        ErrorCode::Timeout
    } else if e.is_connect() {
        ErrorCode::ConnectFailed
    } else {
        ErrorCode::Other
    };
    RetrievalError::new(code, describe_error_text(e, tr))
}

fn describe_error_text(e: &reqwest::Error, tr: &TokenRequest) -> String {
    let secs = |d: Duration| d.as_secs_f64();
    if e.is_timeout() && e.is_connect() {
        format!(
            "could not connect to token service {} within the connect timeout of {} s (tokenServiceURL.ConnectionTimeoutInSeconds)",
            tr.url,
            secs(tr.timeouts.connect)
        )
    } else if e.is_timeout() {
        format!(
            "token service {} did not answer within the read timeout of {} s (tokenServiceURL.SocketReadTimeoutInSeconds)",
            tr.url,
            secs(tr.timeouts.read)
        )
    } else if e.is_connect() {
        format!("could not connect to token service {}: {}", tr.url, source_chain(e))
    } else {
        format!("token request to {} failed: {}", tr.url, source_chain(e))
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn excerpt(body: &str) -> String {
    let t: String = body.chars().take(300).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

/// Reads a token endpoint's answer: `access_token` required; `expires_in`
/// as a number or a numeric string (facts (j)17).
fn parse_token_response(body: &str) -> Result<Fetched, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("a body that is not JSON ({e}): {}", excerpt(body)))?;
    let access_token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("no access_token in its answer: {}", excerpt(body)))?
        .to_string();
    let expires_in = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let scope = v.get("scope").and_then(Value::as_str).map(str::to_string);
    let issued_token_type = v.get("issued_token_type").and_then(Value::as_str).map(str::to_string);
    Ok(Fetched { access_token, expires_in, scope, issued_token_type })
}

/// The PEM identity of the key store `ks` names (`CA-6`).
/// `SB-2`: the assertion of an `OAuth2SAMLBearerAssertion` destination,
/// signed with the subaccount's Destination Trust and encoded as the
/// destination says. Valid for ten minutes (a choice: the pages give no
/// lifetime; RFC 7522 §3 item 4 asks only for an expiry).
fn saml_assertion(
    plan: &crate::rules::token_request::SamlPlan,
    signer: Option<&crate::saml::SamlSigner>,
) -> Result<String, String> {
    use base64::Engine;
    let signer = signer.ok_or("OAuth2SAMLBearerAssertion: this subaccount has no Destination Trust to sign with")?;
    let now = crate::tokens::unix_now() as i64;
    let assertion = crate::saml::Assertion {
        issuer: plan.issuer.clone(),
        name_id: plan.name_id.clone(),
        name_id_format: plan.name_id_format.clone(),
        name_qualifier: plan.name_qualifier.clone(),
        audiences: vec![plan.audience.clone()],
        recipient: plan.recipient.clone(),
        issue_instant: now,
        not_on_or_after: now + 600,
        authn_context_class_ref: Some(plan.authn_context_class_ref.clone()),
        attributes: plan.attributes.clone(),
    };
    let xml = signer.sign(&assertion, plan.include_certificate).map_err(|e| e.to_string())?;
    Ok(match plan.encoding {
        crate::rules::token_request::SamlEncoding::Base64Url => crate::saml::encode(&xml),
        crate::rules::token_request::SamlEncoding::Base64 => {
            base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
        }
    })
}

fn key_store_pem(ks: &KeyStoreRef, certificates: &[Certificate]) -> Result<String, String> {
    let cert = certificates.iter().find(|c| c.name == ks.location).ok_or_else(|| {
        format!("tokenService.KeyStoreLocation names {:?}, but no such certificate is uploaded", ks.location)
    })?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cert.content.trim())
        .map_err(|_| format!("certificate {:?}: Content is not base64", ks.location))?;
    let lower = ks.location.to_ascii_lowercase();
    // A Java KeyStore (magic 0xFEEDFEED).
    if lower.ends_with(".jks") || raw.starts_with(&[0xfe, 0xed, 0xfe, 0xed]) {
        return jks_pem(&raw, ks);
    }
    // PKCS#12 (binary DER): "Requires the tokenService.KeyStorePassword property" (2c162aa).
    if lower.ends_with(".p12") || lower.ends_with(".pfx") || raw.first() == Some(&0x30) {
        return pkcs12_pem(&raw, ks);
    }
    let pem = String::from_utf8(raw).map_err(|_| format!("certificate {:?} is not PEM text", ks.location))?;
    if !pem.contains("PRIVATE KEY-----") || !pem.contains("BEGIN CERTIFICATE") {
        return Err(format!("certificate {:?} must hold a certificate and its private key (PEM)", ks.location));
    }
    Ok(pem)
}

/// The private key and certificate chain of a Java KeyStore, as the PEM
/// identity the HTTP client presents. One password opens the store and the
/// key, as `tokenService.KeyStorePassword` is the only one a destination has.
fn jks_pem(raw: &[u8], ks: &KeyStoreRef) -> Result<String, String> {
    let name = &ks.location;
    let password = ks
        .password
        .as_deref()
        .ok_or_else(|| format!("certificate {name:?} is a JKS key store and needs tokenService.KeyStorePassword"))?;
    let mut store = jks::KeyStore::new();
    store
        .load(raw, password.as_bytes())
        .map_err(|e| format!("certificate {name:?}: not a JKS key store this password opens ({e})"))?;
    let alias = store
        .aliases()
        .into_iter()
        .find(|a| store.is_private_key_entry(a))
        .ok_or_else(|| format!("certificate {name:?}: the key store holds no private key"))?;
    let entry = store
        .get_private_key_entry(&alias, password.as_bytes())
        .map_err(|e| format!("certificate {name:?}: the private key does not open with this password ({e})"))?;
    identity_pem(name, entry.certificate_chain.iter().map(|c| c.content.as_slice()), &entry.private_key)
}

/// The private key and certificate chain of a PKCS#12 key store, as the
/// PEM identity the HTTP client presents.
fn pkcs12_pem(raw: &[u8], ks: &KeyStoreRef) -> Result<String, String> {
    let name = &ks.location;
    let password = ks.password.as_deref().ok_or_else(|| {
        format!("certificate {name:?} is a PKCS#12 key store and needs tokenService.KeyStorePassword")
    })?;
    let store = p12_keystore::KeyStore::from_pkcs12(raw, password)
        .map_err(|e| format!("certificate {name:?}: not a PKCS#12 key store this password opens ({e})"))?;
    let (_, chain) =
        store.private_key_chain().ok_or_else(|| format!("certificate {name:?}: the key store holds no private key"))?;
    identity_pem(name, chain.chain().iter().map(|c| c.as_der()), chain.key())
}

/// A certificate chain (DER, leaf first) and its PKCS#8 key as the PEM
/// identity the HTTP client presents.
fn identity_pem<'a>(name: &str, chain: impl Iterator<Item = &'a [u8]>, key: &[u8]) -> Result<String, String> {
    let mut out = String::new();
    for der in chain {
        out.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())));
    }
    if out.is_empty() {
        return Err(format!("certificate {name:?}: the key store's private key has no certificate"));
    }
    out.push_str(&pem::encode(&pem::Pem::new("PRIVATE KEY", key.to_vec())));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> CacheKey {
        CacheKey {
            tenant: "t".into(),
            destination: "d".into(),
            user: format!("u{i}"),
            client_id: "c".into(),
            token_url: "https://x.test".into(),
            properties: 0,
        }
    }

    fn cached(fresh: bool) -> Slot {
        let token = Fetched { access_token: "a".into(), expires_in: Some(60), scope: None, issued_token_type: None };
        let fresh_for = if fresh { Duration::from_secs(60) } else { Duration::ZERO };
        Arc::new(tokio::sync::Mutex::new(Some(Cached { token, fetched_at: Instant::now(), fresh_for })))
    }

    /// A full cache drops stale entries first, then idle fresh ones, never
    /// one being fetched: memory stays bounded however many users come.
    #[test]
    fn a_full_cache_is_swept() {
        let mut cache: HashMap<CacheKey, Slot> = (0..MAX_CACHED_TOKENS).map(|i| (key(i), cached(i % 2 == 0))).collect();
        sweep(&mut cache);
        assert_eq!(cache.len(), MAX_CACHED_TOKENS / 2, "stale entries go, fresh ones stay");
        let busy = cached(true);
        let _held = busy.try_lock().unwrap();
        let mut full: HashMap<CacheKey, Slot> = (0..MAX_CACHED_TOKENS).map(|i| (key(i), cached(true))).collect();
        full.insert(key(usize::MAX), busy.clone());
        sweep(&mut full);
        assert_eq!(full.len(), 1, "only the entry being fetched stays");
    }
}
