//! `builtin:reference`: the reference implementation of every role, on the
//! same code as the mocks ([`idprop_mocks::rules`], [`TokenRetriever`]) —
//! and the mutants: the reference with exactly one [`Deviation`] from one
//! rule, to prove the suite can fail.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use idprop_mocks::retrieval::{Certificate, FindRequest, Network, TokenRetriever};
use idprop_mocks::rules::principal::UserType;
use idprop_mocks::rules::principal_mapping;
use idprop_mocks::rules::token_validation::{self, TrustedIssuer};
use idprop_mocks::rules::{Destination, Readings};
use serde_json::{json, Map, Value};

use crate::consumer::Consumer;
use crate::protocol::SessionEnv;
use crate::protocol::{
    id_of, not_ok, ok, Envelope, FindDestination, MapPrincipal, MappingResult, Propagation, Request,
};
use idprop_mocks::rules::{client_auth, prefixes, timeouts};

/// One deliberate departure from one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deviation {
    /// `TU-4`: a `Common` URL without `{tenant}` never gets the subdomain.
    CommonWithoutSubdomain,
    /// `TU-2`/`TU-3`: the `{tenant}` placeholder is left in the URL.
    PlaceholderNotReplaced,
    /// `CA-1`: client credentials always go in HTTP Basic.
    CredentialsAlwaysBasic,
    /// `CA-3`/`CA-4`: `tokenServiceUser`/`tokenServicePassword` ignored.
    TokenServiceUserIgnored,
    /// `TO-2`/`TO-4`: out-of-range timeouts clamped to the maximum, not 10 s.
    TimeoutsClampedToMax,
    /// `CH-1`: no token cache.
    NoCache,
    /// `CH-2`: cached tokens served past their expiry.
    CachePastExpiry,
    /// `CH-3`: one cache entry per destination, whatever the tenant.
    CacheSharedAcrossTenants,
    /// `FD-2`: technical user tokens under `Authorization`.
    WrongHeaderKey,
    /// `PX-1`..`PX-3`: prefixed properties sent with their prefix.
    PrefixesNotStripped,
    /// `CA-9`: `scope` not sent.
    ScopeDropped,
    /// `PP-2`: `email` ranks before `user_name`.
    EmailBeforeUserName,
    /// `PP-2`: `sub` is never used.
    SubNeverUsed,
    /// `SP-2`: pattern variables are not substituted.
    PatternNotSubstituted,
    /// `TV-3`: expired tokens accepted.
    ExpiredAccepted,
    /// `TV-2`: `alg: none` accepted.
    AlgNoneAccepted,
    /// `TV-2`: HS256 accepted.
    Hs256Accepted,
    /// `TV-1`: any issuer accepted when a key verifies.
    AnyIssuerAccepted,
    /// `TU-1`: an explicitly `Dedicated` URL gets the subdomain inserted.
    DedicatedGetsSubdomain,
    /// `TU-3`: a `{tenant}` placeholder in the path is left as it is.
    PathPlaceholderNotReplaced,
    /// `CA-2`: `addClientCredentialsInBody: false` ignored (credentials in the body).
    BasicFlagIgnored,
    /// `CA-6`: `tokenService.KeyStoreLocation` ignored (no client certificate).
    KeyStoreIgnored,
    /// `CA-7`: `clientAssertion.destinationName` ignored.
    ClientAssertionIgnored,
    /// `TO-1`: the connect timeout is ignored (the default 10 s).
    ConnectTimeoutIgnored,
    /// `TO-3`: the read timeout is ignored (the default 10 s).
    ReadTimeoutIgnored,
    /// `PX-2`: `tokenServiceURL.queries.*` not sent.
    QueriesDropped,
    /// `PX-3`: `tokenService.body.*` not sent.
    BodyParametersDropped,
    /// `PX-4`: `URL.headers.*` also sent to the token service.
    UrlHeadersToTokenService,
    /// `AT-1`: a jwt-bearer destination fetches a client-credentials token instead.
    UserTokenNotExchanged,
    /// `AT-2`: the destination's `User` is ignored (no password grant is made).
    PasswordWithoutUser,
    /// `FD-4`: a failed entry keeps `type: Bearer`.
    ErrorEntryTyped,
    /// `FD-5`: technical user propagation served for `ProxyType: Internet`.
    TechnicalOverInternet,
    /// `TV-2`: RS256 signatures are not verified.
    SignatureNotChecked,
    /// `TV-3`: `nbf` is not checked.
    NotBeforeIgnored,
    /// `TV-4`: a token without principal claims is accepted as `anonymous`.
    NoPrincipalAccepted,
    /// `SP-4`: claim values are put into the subject unescaped.
    ValuesNotEscaped,
    /// `PP-3`: technical users are named by `azp` first.
    TechnicalAzpFirst,
}

impl Deviation {
    pub const ALL: [Deviation; 37] = [
        Deviation::CommonWithoutSubdomain,
        Deviation::PlaceholderNotReplaced,
        Deviation::CredentialsAlwaysBasic,
        Deviation::TokenServiceUserIgnored,
        Deviation::TimeoutsClampedToMax,
        Deviation::NoCache,
        Deviation::CachePastExpiry,
        Deviation::CacheSharedAcrossTenants,
        Deviation::WrongHeaderKey,
        Deviation::PrefixesNotStripped,
        Deviation::ScopeDropped,
        Deviation::EmailBeforeUserName,
        Deviation::SubNeverUsed,
        Deviation::PatternNotSubstituted,
        Deviation::ExpiredAccepted,
        Deviation::AlgNoneAccepted,
        Deviation::Hs256Accepted,
        Deviation::AnyIssuerAccepted,
        Deviation::DedicatedGetsSubdomain,
        Deviation::PathPlaceholderNotReplaced,
        Deviation::BasicFlagIgnored,
        Deviation::KeyStoreIgnored,
        Deviation::ClientAssertionIgnored,
        Deviation::ConnectTimeoutIgnored,
        Deviation::ReadTimeoutIgnored,
        Deviation::QueriesDropped,
        Deviation::BodyParametersDropped,
        Deviation::UrlHeadersToTokenService,
        Deviation::UserTokenNotExchanged,
        Deviation::PasswordWithoutUser,
        Deviation::ErrorEntryTyped,
        Deviation::TechnicalOverInternet,
        Deviation::SignatureNotChecked,
        Deviation::NotBeforeIgnored,
        Deviation::NoPrincipalAccepted,
        Deviation::ValuesNotEscaped,
        Deviation::TechnicalAzpFirst,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Deviation::CommonWithoutSubdomain => "common-without-subdomain",
            Deviation::PlaceholderNotReplaced => "placeholder-not-replaced",
            Deviation::CredentialsAlwaysBasic => "credentials-always-basic",
            Deviation::TokenServiceUserIgnored => "token-service-user-ignored",
            Deviation::TimeoutsClampedToMax => "timeouts-clamped-to-max",
            Deviation::NoCache => "no-cache",
            Deviation::CachePastExpiry => "cache-past-expiry",
            Deviation::CacheSharedAcrossTenants => "cache-shared-across-tenants",
            Deviation::WrongHeaderKey => "wrong-header-key",
            Deviation::PrefixesNotStripped => "prefixes-not-stripped",
            Deviation::ScopeDropped => "scope-dropped",
            Deviation::EmailBeforeUserName => "email-before-user-name",
            Deviation::SubNeverUsed => "sub-never-used",
            Deviation::PatternNotSubstituted => "pattern-not-substituted",
            Deviation::ExpiredAccepted => "expired-accepted",
            Deviation::AlgNoneAccepted => "alg-none-accepted",
            Deviation::Hs256Accepted => "hs256-accepted",
            Deviation::AnyIssuerAccepted => "any-issuer-accepted",
            Deviation::DedicatedGetsSubdomain => "dedicated-gets-subdomain",
            Deviation::PathPlaceholderNotReplaced => "path-placeholder-not-replaced",
            Deviation::BasicFlagIgnored => "basic-flag-ignored",
            Deviation::KeyStoreIgnored => "key-store-ignored",
            Deviation::ClientAssertionIgnored => "client-assertion-ignored",
            Deviation::ConnectTimeoutIgnored => "connect-timeout-ignored",
            Deviation::ReadTimeoutIgnored => "read-timeout-ignored",
            Deviation::QueriesDropped => "queries-dropped",
            Deviation::BodyParametersDropped => "body-parameters-dropped",
            Deviation::UrlHeadersToTokenService => "url-headers-to-token-service",
            Deviation::UserTokenNotExchanged => "user-token-not-exchanged",
            Deviation::PasswordWithoutUser => "password-without-user",
            Deviation::ErrorEntryTyped => "error-entry-typed",
            Deviation::TechnicalOverInternet => "technical-over-internet",
            Deviation::SignatureNotChecked => "signature-not-checked",
            Deviation::NotBeforeIgnored => "not-before-ignored",
            Deviation::NoPrincipalAccepted => "no-principal-accepted",
            Deviation::ValuesNotEscaped => "values-not-escaped",
            Deviation::TechnicalAzpFirst => "technical-azp-first",
        }
    }

    /// The rule the deviation breaks.
    pub fn rule(self) -> &'static str {
        match self {
            Deviation::CommonWithoutSubdomain => "TU-4",
            Deviation::PlaceholderNotReplaced => "TU-2",
            Deviation::CredentialsAlwaysBasic => "CA-1",
            Deviation::TokenServiceUserIgnored => "CA-3",
            Deviation::TimeoutsClampedToMax => "TO-4",
            Deviation::NoCache => "CH-1",
            Deviation::CachePastExpiry => "CH-2",
            Deviation::CacheSharedAcrossTenants => "CH-3",
            Deviation::WrongHeaderKey => "FD-2",
            Deviation::PrefixesNotStripped => "PX-1",
            Deviation::ScopeDropped => "CA-9",
            Deviation::EmailBeforeUserName => "PP-2",
            Deviation::SubNeverUsed => "PP-2",
            Deviation::PatternNotSubstituted => "SP-2",
            Deviation::ExpiredAccepted => "TV-3",
            Deviation::AlgNoneAccepted => "TV-2",
            Deviation::Hs256Accepted => "TV-2",
            Deviation::AnyIssuerAccepted => "TV-1",
            Deviation::DedicatedGetsSubdomain => "TU-1",
            Deviation::PathPlaceholderNotReplaced => "TU-3",
            Deviation::BasicFlagIgnored => "CA-2",
            Deviation::KeyStoreIgnored => "CA-6",
            Deviation::ClientAssertionIgnored => "CA-7",
            Deviation::ConnectTimeoutIgnored => "TO-1",
            Deviation::ReadTimeoutIgnored => "TO-3",
            Deviation::QueriesDropped => "PX-2",
            Deviation::BodyParametersDropped => "PX-3",
            Deviation::UrlHeadersToTokenService => "PX-4",
            Deviation::UserTokenNotExchanged => "AT-1",
            Deviation::PasswordWithoutUser => "AT-2",
            Deviation::ErrorEntryTyped => "FD-4",
            Deviation::TechnicalOverInternet => "FD-5",
            Deviation::SignatureNotChecked => "TV-2",
            Deviation::NotBeforeIgnored => "TV-3",
            Deviation::NoPrincipalAccepted => "TV-4",
            Deviation::ValuesNotEscaped => "SP-4",
            Deviation::TechnicalAzpFirst => "PP-3",
        }
    }

    pub fn parse(name: &str) -> Option<Deviation> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }
}

type MutantCache = HashMap<String, (Instant, Option<Duration>, Value)>;

/// The reference implementation, optionally with one deviation.
pub struct Reference {
    retriever: TokenRetriever,
    consumer: std::sync::RwLock<std::sync::Arc<Consumer>>,
    /// The network the retriever and the consumer use now; a request naming
    /// another (an adapter process serving a new scenario) moves them.
    network: Mutex<crate::protocol::NetworkInfo>,
    /// `reset` keeps the token cache: a deliberately broken adapter, for
    /// showing what a harness catches (`idprop adapter --leak-cache-on-reset`).
    leak_on_reset: bool,
    deviation: Option<Deviation>,
    /// [`Readings::IDPROP`], or [`Readings::ALTERNATIVE`] for
    /// `builtin:reference/alt`, which also words every reason differently.
    readings: Readings,
    /// The broken caches of the cache mutants.
    mutant_cache: Mutex<MutantCache>,
}

impl Reference {
    pub fn new(env: &SessionEnv, deviation: Option<Deviation>, readings: Readings) -> Result<Self, String> {
        let network = Self::network_of(&env.network)?;
        Ok(Self {
            retriever: TokenRetriever::with_readings(network.clone(), readings),
            consumer: std::sync::RwLock::new(std::sync::Arc::new(Consumer::new(&network, env.vcap_services.clone())?)),
            network: Mutex::new(env.network.clone()),
            leak_on_reset: false,
            deviation,
            readings,
            mutant_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The same, but `reset` keeps the token cache: deliberately broken.
    pub fn leaking_cache_on_reset(mut self) -> Self {
        self.leak_on_reset = true;
        self
    }

    fn network_of(n: &crate::protocol::NetworkInfo) -> Result<Network, String> {
        let ca_pem = std::fs::read_to_string(&n.ca_file).map_err(|e| format!("reading {}: {e}", n.ca_file))?;
        Ok(Network { proxy: n.proxy.clone(), ca_pem, no_proxy: n.no_proxy.clone(), on_premise: None })
    }

    fn current_consumer(&self) -> std::sync::Arc<Consumer> {
        self.consumer.read().expect("consumer lock").clone()
    }

    /// Moves to the network a request names, if it names another one.
    fn follow(&self, req: &Value) -> Result<(), String> {
        let Some(n) =
            req.get("network").and_then(|n| serde_json::from_value::<crate::protocol::NetworkInfo>(n.clone()).ok())
        else {
            return Ok(());
        };
        let mut current = self.network.lock().expect("network lock");
        if *current == n {
            return Ok(());
        }
        let network = Self::network_of(&n)?;
        let vcap = self.consumer.read().expect("consumer lock").vcap();
        *self.consumer.write().expect("consumer lock") = std::sync::Arc::new(Consumer::new(&network, vcap)?);
        self.retriever.set_network(network);
        *current = n;
        Ok(())
    }

    fn is_alt(&self) -> bool {
        self.readings == Readings::ALTERNATIVE
    }

    /// The alternative reference words every reason its own way: no check
    /// may depend on wording.
    fn word(&self, code: &str, text: String) -> String {
        if self.is_alt() {
            format!("rejected [{code}]")
        } else {
            text
        }
    }

    fn is(&self, d: Deviation) -> bool {
        self.deviation == Some(d)
    }

    /// Answers one protocol message.
    pub async fn handle(&self, req: &Value) -> Value {
        let id = id_of(req);
        if let Err(e) = self.follow(req) {
            return not_ok(id, "internal", &e);
        }
        let envelope: Envelope = match serde_json::from_value(req.clone()) {
            Ok(e) => e,
            Err(e) => {
                let op = req.get("op").and_then(Value::as_str);
                return match op {
                    Some(o) if !["hello", "reset", "find_destination", "map_principal", "call"].contains(&o) => {
                        not_ok(id, "unsupported", &format!("unknown op {o:?}"))
                    }
                    None => not_ok(id, "bad_request", "no op"),
                    Some(o) => not_ok(id, "bad_request", &format!("{o}: {e}")),
                };
            }
        };
        match envelope.request {
            Request::Hello { .. } => ok(
                id,
                json!({
                    "name": match (self.deviation, self.is_alt()) {
                        (Some(d), _) => format!("idprop-mutant/{}", d.name()),
                        (None, false) => "idprop-reference".to_string(),
                        (None, true) => "idprop-reference-alt".to_string(),
                    },
                    "version": env!("CARGO_PKG_VERSION"),
                    "roles": ["token-retrieval", "principal-mapping", "consumer"],
                    // It takes the network from each request and empties
                    // its caches on reset (v1.2).
                    "reusable": true,
                }),
            ),
            Request::Reset => {
                if !self.leak_on_reset {
                    self.retriever.reset();
                    self.mutant_cache.lock().expect("cache lock").clear();
                }
                ok(id, json!({}))
            }
            Request::FindDestination(f) => match self.find_destination(&f).await {
                Ok(r) => ok(id, r),
                Err(e) => not_ok(id, "bad_request", &e),
            },
            Request::MapPrincipal(m) => match self.map_principal(&m) {
                Ok(r) => ok(id, serde_json::to_value(r).expect("result serialises")),
                Err(e) => not_ok(id, "bad_request", &e),
            },
            Request::Call(c) => match self.current_consumer().call(&c).await {
                Ok(r) => ok(id, r),
                Err(e) => not_ok(id, "bad_request", &e),
            },
        }
    }

    async fn find_destination(&self, req: &FindDestination) -> Result<Value, String> {
        let mut d = Destination::from_json(&Value::Object(req.destination.clone()))
            .ok_or("destination is not an object of strings")?;
        let tenant = req.tenant.clone();
        let user_token = req.user_token.clone();
        let certificates: Vec<Certificate> = req.certificates.clone();
        let related: HashMap<String, Destination> = req
            .related_destinations
            .iter()
            .flatten()
            .filter_map(|(k, v)| Destination::from_json(v).map(|d| (k.clone(), d)))
            .collect();
        let lookup = move |name: &str| related.get(name).cloned();
        self.deviate_destination(&mut d);
        let cache_key = match self.deviation {
            Some(Deviation::CachePastExpiry) => {
                Some(format!("{tenant}|{}|{}", d.name(), user_token.as_deref().unwrap_or("")))
            }
            Some(Deviation::CacheSharedAcrossTenants) => Some(d.name().to_string()),
            _ => None,
        };
        if let Some(k) = &cache_key {
            if let Some((at, life, v)) = self.mutant_cache.lock().expect("cache lock").get(k) {
                let fresh = match (self.deviation, life) {
                    (Some(Deviation::CachePastExpiry), _) => true,
                    (_, Some(l)) => at.elapsed() < *l,
                    _ => false,
                };
                if fresh {
                    return Ok(v.clone());
                }
            }
        }
        if self.is(Deviation::NoCache) {
            self.retriever.reset();
        }
        let answer = self
            .retriever
            .find_destination(FindRequest {
                destination: &d,
                tenant: &tenant,
                tokens: request_tokens(user_token.as_deref(), req.headers.as_ref()),
                certificates: &certificates,
                lookup: Some(&lookup),
                // An implementation has no subaccount key to sign SAML
                // assertions with: that is the Destination service's.
                saml_signer: None,
            })
            .await;
        let mut v = serde_json::to_value(&answer).map_err(|e| e.to_string())?;
        // Protocol v1.1: the kind of each failure beside its text.
        for (i, t) in answer.auth_tokens.iter().flatten().enumerate() {
            if let (Some(code), Some(entry)) = (t.error_code, v.pointer_mut(&format!("/authTokens/{i}"))) {
                entry["error_code"] = json!(code.as_str());
                if self.is_alt() {
                    entry["error"] = json!(format!("no token could be obtained ({})", code.as_str()));
                }
            }
        }
        if self.is(Deviation::WrongHeaderKey) {
            if let Some(h) = v.pointer_mut("/authTokens/0/http_header/key") {
                *h = json!("Authorization");
            }
        }
        if self.is(Deviation::ErrorEntryTyped) && v.pointer("/authTokens/0/error").is_some() {
            v["authTokens"][0]["type"] = json!("Bearer");
        }
        if let Some(k) = cache_key {
            let life = v
                .pointer("/authTokens/0/expires_in")
                .and_then(Value::as_str)
                .and_then(|e| e.parse::<u64>().ok())
                .and_then(|e| idprop_mocks::rules::cache::cacheable_for(Some(e)));
            if v.pointer("/authTokens/0/error").is_none() {
                self.mutant_cache.lock().expect("cache lock").insert(k, (Instant::now(), life, v.clone()));
            }
        }
        Ok(v)
    }

    /// Input-side deviations: the destination is rewritten so that the
    /// shared rules produce the broken request.
    fn deviate_destination(&self, d: &mut Destination) {
        let Some(dev) = self.deviation else { return };
        let props = &mut d.0;
        match dev {
            Deviation::CommonWithoutSubdomain => {
                let common = props.get("tokenServiceURLType").is_some_and(|t| t.eq_ignore_ascii_case("common"));
                let placeholder = props.get("tokenServiceURL").is_some_and(|u| u.contains("{tenant}"));
                if common && !placeholder {
                    props.insert("tokenServiceURLType".into(), "Dedicated".into());
                }
            }
            Deviation::PlaceholderNotReplaced
                if props.get("tokenServiceURL").is_some_and(|u| u.contains("{tenant}")) =>
            {
                props.insert("tokenServiceURLType".into(), "Dedicated".into());
            }
            Deviation::CredentialsAlwaysBasic => {
                props.remove("tokenServiceUser");
                props.remove("tokenServicePassword");
                props.insert(client_auth::IN_BODY_PROPERTY.into(), "false".into());
            }
            Deviation::TokenServiceUserIgnored => {
                props.remove("tokenServiceUser");
                props.remove("tokenServicePassword");
            }
            Deviation::TimeoutsClampedToMax => {
                for (k, max) in [
                    (timeouts::CONNECT_PROPERTY, timeouts::MAX_CONNECT_SECS),
                    (timeouts::READ_PROPERTY, timeouts::MAX_READ_SECS),
                ] {
                    if let Some(v) = props.get(k).and_then(|v| v.trim().parse::<i64>().ok()) {
                        if v > max {
                            props.insert(k.into(), max.to_string());
                        }
                    }
                }
            }
            Deviation::PrefixesNotStripped => {
                let keys: Vec<String> = props.keys().cloned().collect();
                for k in keys {
                    for p in [prefixes::TOKEN_HEADERS, prefixes::TOKEN_QUERIES, prefixes::TOKEN_BODY] {
                        if k.starts_with(p) {
                            let v = props.remove(&k).unwrap_or_default();
                            props.insert(format!("{p}{k}"), v);
                        }
                    }
                }
            }
            Deviation::ScopeDropped => {
                props.remove("scope");
            }
            Deviation::DedicatedGetsSubdomain => {
                let dedicated = props.get("tokenServiceURLType").is_some_and(|t| t.eq_ignore_ascii_case("dedicated"));
                if dedicated && !props.get("tokenServiceURL").is_some_and(|u| u.contains("{tenant}")) {
                    props.insert("tokenServiceURLType".into(), "Common".into());
                }
            }
            Deviation::PathPlaceholderNotReplaced => {
                let in_path = props.get("tokenServiceURL").is_some_and(|u| {
                    let after_scheme = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
                    after_scheme.split_once('/').is_some_and(|(_, path)| path.contains("{tenant}"))
                });
                if in_path {
                    props.insert("tokenServiceURLType".into(), "Dedicated".into());
                }
            }
            Deviation::BasicFlagIgnored => {
                props.remove(client_auth::IN_BODY_PROPERTY);
            }
            Deviation::KeyStoreIgnored => {
                props.remove("tokenService.KeyStoreLocation");
            }
            Deviation::ClientAssertionIgnored => {
                props.remove("clientAssertion.destinationName");
            }
            Deviation::ConnectTimeoutIgnored => {
                props.remove(timeouts::CONNECT_PROPERTY);
            }
            Deviation::ReadTimeoutIgnored => {
                props.remove(timeouts::READ_PROPERTY);
            }
            Deviation::QueriesDropped => props.retain(|k, _| !k.starts_with(prefixes::TOKEN_QUERIES)),
            Deviation::BodyParametersDropped => props.retain(|k, _| !k.starts_with(prefixes::TOKEN_BODY)),
            Deviation::UrlHeadersToTokenService => {
                let url_headers: Vec<(String, String)> = props
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix(prefixes::URL_HEADERS).map(|h| (h.to_string(), v.clone())))
                    .collect();
                for (h, v) in url_headers {
                    props.insert(format!("tokenServiceURL.headers.{h}"), v);
                }
            }
            Deviation::UserTokenNotExchanged => {
                let user_based = props
                    .get("Authentication")
                    .is_some_and(|a| a == "OAuth2JWTBearer" || a == "OAuth2UserTokenExchange");
                if user_based {
                    props.insert("Authentication".into(), "OAuth2ClientCredentials".into());
                }
            }
            Deviation::PasswordWithoutUser if props.get("Authentication").is_some_and(|a| a == "OAuth2Password") => {
                props.insert("User".into(), String::new());
            }
            Deviation::TechnicalOverInternet
                if props.get("Authentication").is_some_and(|a| a == "OAuth2TechnicalUserPropagation") =>
            {
                props.insert("ProxyType".into(), "OnPremise".into());
            }
            _ => {}
        }
    }

    fn map_principal(&self, req: &MapPrincipal) -> Result<MappingResult, String> {
        let token = req.token.as_str();
        let pattern = req.subject_pattern.as_str();
        let now = req.now;
        let mut trust = Vec::new();
        for t in &req.trust {
            let jwks = serde_json::from_value(t.jwks.clone().unwrap_or(json!({"keys": []})))
                .map_err(|e| format!("trust jwks: {e}"))?;
            trust.push(TrustedIssuer { issuer: t.issuer.clone(), jwks, jwks_uri: t.jwks_uri.clone() });
        }
        let refused = |code: &str, reason: String| MappingResult {
            accepted: false,
            reason: Some(reason),
            reason_code: Some(code.to_string()),
            ..Default::default()
        };
        let claims = match self.validate(token, &trust, now) {
            Ok(c) => c,
            Err(r) => return Ok(refused(r.code(), self.word(r.code(), r.to_string()))),
        };
        let mut claims = claims;
        if self.is(Deviation::EmailBeforeUserName) && claims.contains_key("email") {
            claims.remove("user_name");
        }
        if self.is(Deviation::SubNeverUsed) {
            claims.remove("sub");
        }
        // The header decides the user type; without the v1.1 field the
        // readings do (`rules::readings`).
        let user_type = match req.propagation {
            Some(Propagation::Technical) => UserType::Technical,
            Some(Propagation::Principal) => UserType::Business,
            None => self.readings.unknown_header.user_type(&claims),
        };
        if self.is(Deviation::TechnicalAzpFirst) && user_type == UserType::Technical {
            if let Some(azp) = claims.get("azp").cloned() {
                claims.insert("client_id".into(), azp);
            }
        }
        match principal_mapping::map_claims_with(
            &claims,
            &principal_mapping::single(pattern),
            &self.readings,
            Some(user_type),
        ) {
            Ok(m) => {
                let subject = match self.deviation {
                    Some(Deviation::PatternNotSubstituted) => pattern.to_string(),
                    Some(Deviation::ValuesNotEscaped) => {
                        m.attributes.iter().map(|(a, v)| format!("{a}={v}")).collect::<Vec<_>>().join(",")
                    }
                    _ => m.subject,
                };
                Ok(MappingResult {
                    accepted: true,
                    principal: Some(m.principal),
                    subject: Some(subject),
                    ..Default::default()
                })
            }
            Err(r) if r.code == "no_principal" && self.is(Deviation::NoPrincipalAccepted) => Ok(MappingResult {
                accepted: true,
                principal: Some("anonymous".into()),
                subject: Some("CN=anonymous".into()),
                ..Default::default()
            }),
            Err(r) => Ok(refused(r.code, self.word(r.code, r.reason))),
        }
    }

    /// Token validation, with the validation mutants' holes.
    fn validate(
        &self,
        token: &str,
        trust: &[TrustedIssuer],
        now: i64,
    ) -> Result<Map<String, Value>, token_validation::Rejection> {
        let malformed = || token_validation::Rejection::Malformed("malformed".into());
        let header = token.split('.').next().and_then(|h| token_validation::decode_segment(h, "header").ok());
        let alg = header.as_ref().and_then(|h| h.get("alg")).and_then(Value::as_str).unwrap_or("").to_string();
        let peek = idprop_mocks::tokens::peek_claims(token);
        match self.deviation {
            Some(Deviation::AlgNoneAccepted) if alg.eq_ignore_ascii_case("none") => return peek.ok_or_else(malformed),
            Some(Deviation::Hs256Accepted) if alg == "HS256" => return peek.ok_or_else(malformed),
            _ => {}
        }
        let mut now = now;
        if self.is(Deviation::ExpiredAccepted) {
            if let Some(exp) = peek.as_ref().and_then(|c| c.get("exp")).and_then(Value::as_i64) {
                now = now.min(exp - 1);
            }
        }
        let mut trust = trust.to_vec();
        if self.is(Deviation::AnyIssuerAccepted) {
            if let Some(iss) = peek.as_ref().and_then(|c| c.get("iss")).and_then(Value::as_str) {
                let keys: Vec<_> = trust.iter().flat_map(|t| t.jwks.keys.clone()).collect();
                trust.push(TrustedIssuer {
                    issuer: iss.to_string(),
                    jwks: token_validation::JwkSet { keys },
                    jwks_uri: None,
                });
            }
        }
        match token_validation::validate_with(token, &trust, now, &self.readings.validation) {
            Err(token_validation::Rejection::BadSignature) if self.is(Deviation::SignatureNotChecked) => {
                peek.ok_or_else(malformed)
            }
            Err(token_validation::Rejection::NotYetValid) if self.is(Deviation::NotBeforeIgnored) => {
                peek.ok_or_else(malformed)
            }
            r => r.map(|v| v.claims),
        }
    }
}

/// The caller's tokens of a `find_destination` (v1.1 `headers`, names
/// case-insensitive), as the Destination service reads them from its request.
fn request_tokens<'a>(
    user_token: Option<&'a str>,
    headers: Option<&'a std::collections::BTreeMap<String, String>>,
) -> idprop_mocks::rules::RequestTokens<'a> {
    idprop_mocks::rules::RequestTokens::from_headers(user_token, |n| {
        headers.and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str()))
    })
}
