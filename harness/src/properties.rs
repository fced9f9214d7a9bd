//! Property-based conformance: generated destinations and tokens, judged
//! by what the mocks observed against the rules module as the oracle.
//!
//! Runs against any implementation through the drivers. A failure comes
//! with the seed, the shrunk minimal input as a ready-to-save scenario, and
//! the rule it broke.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use idprop_mocks::rules::client_auth::Ca4;
use idprop_mocks::rules::principal_mapping;
use idprop_mocks::rules::token_request::{plan, plan_with, Plan, TokenRequest};
use idprop_mocks::rules::token_url::UrlType;
use idprop_mocks::rules::{Destination, Readings};
use idprop_mocks::tokens::{unix_now, Forgery};
use idprop_mocks::{JournalEntry, Stack, TokenServerBehaviour};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::{json, Map, Value};

use crate::driver::{Driver, SessionEnv};
use crate::protocol::{result_of, Envelope, FindDestination, MapPrincipal, NetworkInfo, Propagation, Request};
use crate::runner::mint;
use crate::scenario::TokenSpec;

/// Host of the generated token services (and its subdomains).
pub const HOST: &str = "auth.prop.test";

/// Where the token URL puts the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlShape {
    Plain,
    HostPlaceholder,
    MidHostPlaceholder,
    PathPlaceholder,
}

/// The authentication type of a generated destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    ClientCredentials,
    /// `ProxyType: OnPremise`, the token under `SAP-Connectivity-Technical-Authentication` (`FD-2`).
    TechnicalUserPropagation,
    /// A user token exchanged by the jwt-bearer grant (`AT-1`).
    JwtBearer,
}

impl AuthKind {
    fn as_str(self) -> &'static str {
        match self {
            AuthKind::ClientCredentials => "OAuth2ClientCredentials",
            AuthKind::TechnicalUserPropagation => "OAuth2TechnicalUserPropagation",
            AuthKind::JwtBearer => "OAuth2JWTBearer",
        }
    }
}

/// How the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creds {
    Default,
    InBody(bool),
    ServiceUser { in_body: Option<bool>, user: String, password: String },
}

/// One generated token-retrieval case.
#[derive(Debug, Clone)]
pub struct RetrievalCase {
    pub tenant: String,
    pub shape: UrlShape,
    pub url_type: Option<String>,
    pub creds: Creds,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub queries: BTreeMap<String, String>,
    pub body: BTreeMap<String, String>,
    pub scope: Option<String>,
    pub client_secret: String,
    pub auth: AuthKind,
    /// `tokenServiceURL.ProxyType: Internet` set explicitly (`TU-6`).
    pub token_proxy_type: bool,
    /// `URL.headers.*` / `URL.queries.*`: for the client, never the token service (`PX-4`).
    pub url_headers: BTreeMap<String, String>,
    pub url_queries: BTreeMap<String, String>,
    /// Lookups one after the other: the second is served from the cache (`CH-1`).
    pub lookups: u8,
}

impl RetrievalCase {
    pub fn destination(&self) -> Destination {
        let url = match self.shape {
            UrlShape::Plain => format!("https://{HOST}/oauth/token"),
            UrlShape::HostPlaceholder => format!("https://{{tenant}}.{HOST}/oauth/token"),
            UrlShape::MidHostPlaceholder => format!("https://oauth.{{tenant}}.{HOST}/token"),
            UrlShape::PathPlaceholder => format!("https://{HOST}/tenant/{{tenant}}/oauth/token"),
        };
        let proxy = if self.auth == AuthKind::TechnicalUserPropagation { "OnPremise" } else { "Internet" };
        let mut d = Destination::new()
            .with("Name", "generated")
            .with("Type", "HTTP")
            .with("URL", "https://api.example.test")
            .with("ProxyType", proxy)
            .with("Authentication", self.auth.as_str())
            .with("clientId", "prop-client")
            .with("clientSecret", &self.client_secret)
            .with("tokenServiceURL", &url);
        if let Some(t) = &self.url_type {
            d = d.with("tokenServiceURLType", t);
        }
        match &self.creds {
            Creds::Default => {}
            Creds::InBody(b) => {
                d = d.with("tokenService.addClientCredentialsInBody", if *b { "true" } else { "false" })
            }
            Creds::ServiceUser { in_body, user, password } => {
                d = d.with("tokenServiceUser", user).with("tokenServicePassword", password);
                if let Some(b) = in_body {
                    d = d.with("tokenService.addClientCredentialsInBody", if *b { "true" } else { "false" });
                }
            }
        }
        if let Some(t) = &self.connect_timeout {
            d = d.with("tokenServiceURL.ConnectionTimeoutInSeconds", t);
        }
        if let Some(t) = &self.read_timeout {
            d = d.with("tokenServiceURL.SocketReadTimeoutInSeconds", t);
        }
        for (k, v) in &self.headers {
            d = d.with(&format!("tokenServiceURL.headers.{k}"), v);
        }
        for (k, v) in &self.queries {
            d = d.with(&format!("tokenServiceURL.queries.{k}"), v);
        }
        for (k, v) in &self.body {
            d = d.with(&format!("tokenService.body.{k}"), v);
        }
        if let Some(s) = &self.scope {
            d = d.with("scope", s);
        }
        if self.token_proxy_type {
            d = d.with("tokenServiceURL.ProxyType", "Internet");
        }
        for (k, v) in &self.url_headers {
            d = d.with(&format!("URL.headers.{k}"), v);
        }
        for (k, v) in &self.url_queries {
            d = d.with(&format!("URL.queries.{k}"), v);
        }
        d
    }

    /// The tenant of the call: a jwt-bearer case is made for `mytenant`,
    /// whose UAA minted the user token (`TU-5`).
    fn call_tenant(&self) -> &str {
        if self.auth == AuthKind::JwtBearer {
            "mytenant"
        } else {
            &self.tenant
        }
    }
}

fn tenant() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]"
}

fn timeout() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        2 => (1u32..=60).prop_map(|n| Some(n.to_string())),
        1 => (61u32..100_000).prop_map(|n| Some(n.to_string())),
        1 => prop::sample::select(vec!["0", "-5", "abc", "2.5", " 7 ", "", "+3", "99999999999999999999"]).prop_map(|s| Some(s.to_string())),
    ]
}

/// Generated token-retrieval cases.
pub fn retrieval_cases() -> impl Strategy<Value = RetrievalCase> {
    let shape_and_type = prop_oneof![
        Just((UrlShape::Plain, None)),
        Just((UrlShape::Plain, Some("Dedicated".to_string()))),
        Just((UrlShape::Plain, Some("Common".to_string()))),
        Just((UrlShape::Plain, Some("common".to_string()))),
        Just((UrlShape::HostPlaceholder, Some("Common".to_string()))),
        Just((UrlShape::MidHostPlaceholder, Some("Common".to_string()))),
        Just((UrlShape::PathPlaceholder, Some("Common".to_string()))),
    ];
    let creds = prop_oneof![
        Just(Creds::Default),
        any::<bool>().prop_map(Creds::InBody),
        (prop::option::of(any::<bool>()), "[a-zA-Z0-9!._-]{1,12}", "[ -~]{0,12}")
            .prop_map(|(in_body, user, password)| Creds::ServiceUser { in_body, user, password }),
    ];
    let header_key = "X-[A-Za-z0-9-]{1,12}";
    let header_val = "([!-~]([ -~]{0,16}[!-~])?)?";
    let awkward = "[a-zA-Z0-9 _.~%&=+/:äß-]{1,10}";
    (
        tenant(),
        shape_and_type,
        creds,
        timeout(),
        timeout(),
        prop::collection::btree_map(header_key, header_val, 0..3),
        prop::collection::btree_map(awkward, awkward, 0..3),
        prop::collection::btree_map("[a-z][a-z0-9_]{0,10}", awkward, 0..3),
        prop::option::of("[a-z][a-z:. ]{0,18}[a-z]"),
        "[ -~]{0,16}",
        (
            prop_oneof![
                3 => Just(AuthKind::ClientCredentials),
                1 => Just(AuthKind::TechnicalUserPropagation),
                1 => Just(AuthKind::JwtBearer),
            ],
            any::<bool>(),
            prop::collection::btree_map("U-[A-Za-z0-9]{1,8}", "[a-z0-9]{1,8}", 0..2),
            prop::collection::btree_map("u[a-z0-9]{1,8}", "[a-z0-9]{1,8}", 0..2),
            prop_oneof![3 => Just(1u8), 1 => Just(2u8)],
        ),
    )
        .prop_map(
            |(
                tenant,
                (shape, url_type),
                creds,
                connect_timeout,
                read_timeout,
                headers,
                queries,
                body,
                scope,
                client_secret,
                (auth, token_proxy_type, url_headers, url_queries, lookups),
            )| {
                // Header names are case-insensitive: keep one spelling per name.
                let mut seen = std::collections::HashSet::new();
                let headers = headers.into_iter().filter(|(k, _)| seen.insert(k.to_ascii_lowercase())).collect();
                RetrievalCase {
                    tenant,
                    shape,
                    url_type,
                    creds,
                    connect_timeout,
                    read_timeout,
                    headers,
                    queries,
                    body,
                    scope,
                    client_secret,
                    auth,
                    token_proxy_type,
                    url_headers,
                    url_queries,
                    lookups,
                }
            },
        )
}

/// One generated principal-mapping case.
#[derive(Debug, Clone)]
pub struct MappingCase {
    /// Principal and extra claims of the token.
    pub claims: BTreeMap<String, String>,
    pub technical: bool,
    pub pattern: String,
    pub forgery: Option<Forgery>,
    /// Issued by a trusted tenant (else by `stranger`, whom nobody trusts).
    pub trusted: bool,
}

/// Generated principal-mapping cases.
pub fn mapping_cases() -> impl Strategy<Value = MappingCase> {
    let value = prop_oneof![
        3 => "[a-zA-Z0-9@._-]{1,16}".sboxed(),
        1 => "[ -~]{1,16}".sboxed(),
        1 => "\\PC{1,8}".sboxed(),
        // Re-expansion and injection: a value is never a pattern (SP-4).
        1 => prop::sample::select(vec!["${email}", "${name}", "a,O=evil", "x+OU=y", "#lead", " pad "])
            .prop_map(str::to_string)
            .sboxed(),
    ];
    // Each principal claim present with probability 0.35: small subsets,
    // `sub` alone included, come up often.
    let principal_claims = prop::collection::vec(prop::bool::weighted(0.35), 5).prop_map(|keep| {
        ["user_name", "email", "mail", "user_uuid", "sub"]
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
    });
    let patterns = prop::sample::select(vec![
        "CN=${name}",
        "CN=${name},O=ACME",
        "CN=${name},OU=${email},O=Org",
        "CN=${mail}",
        "EMAIL=${email},CN=${name},C=DE",
        "CN=${user_uuid},L=Walldorf,ST=BW",
        "CN=${name},OU=${department}",
    ]);
    let forgery = prop_oneof![
        2 => Just(None),
        1 => prop::sample::select(vec![Forgery::AlgNone, Forgery::Hs256WithPublicKey, Forgery::WrongKey, Forgery::Expired, Forgery::NotYetValid, Forgery::UnknownKid]).prop_map(Some),
    ];
    let trusted = prop::bool::weighted(0.9);
    let technical = prop::bool::weighted(0.25);
    (
        principal_claims,
        prop::collection::vec(value.clone(), 5),
        prop::option::of(value),
        technical,
        patterns,
        forgery,
        trusted,
    )
        .prop_map(|(names, values, department, technical, pattern, forgery, trusted)| {
            let mut claims: BTreeMap<String, String> =
                names.iter().zip(values).map(|(n, v)| (n.to_string(), v)).collect();
            if let Some(d) = department {
                claims.insert("department".into(), d);
            }
            if technical {
                claims.insert("client_id".into(), "prop-client".into());
                claims.insert("azp".into(), "prop-azp".into());
            }
            MappingCase { claims, technical, pattern: pattern.to_string(), forgery, trusted }
        })
}

impl MappingCase {
    fn token_spec(&self) -> TokenSpec {
        let now = unix_now();
        let mut only: Map<String, Value> = self.claims.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        only.insert("exp".into(), json!(now + 3600));
        only.insert("iat".into(), json!(now));
        if self.technical {
            only.insert("grant_type".into(), json!("client_credentials"));
        }
        let tenant = (!self.trusted).then(|| "stranger".to_string());
        TokenSpec { only_claims: Some(only), forge: self.forgery, tenant, ..Default::default() }
    }
}

/// A property that broke.
#[derive(Debug, Clone)]
pub struct PropertyFailure {
    pub rule: String,
    pub message: String,
    /// The shrunk input as a scenario file.
    pub scenario_yaml: String,
}

/// The outcome of one property.
#[derive(Debug, Clone)]
pub struct PropertyOutcome {
    pub name: &'static str,
    pub role: &'static str,
    pub cases: u32,
    pub seed: u64,
    /// `None`: passed. `Some(Err)`: the implementation does not play the role.
    pub failure: Option<PropertyFailure>,
    pub skipped: Option<String>,
    pub duration_ms: u64,
}

/// A case failed: which rule, what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct Broken {
    pub rule: String,
    pub message: String,
}

fn broken(rule: &str, message: String) -> Broken {
    Broken { rule: rule.to_string(), message }
}

/// Why a case could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum CaseError {
    /// The implementation does not play the property's role.
    #[error("{0}")]
    RoleNotPlayed(String),
    /// The harness could not set the case up or talk to the implementation.
    #[error("{0}")]
    Harness(String),
}

impl From<String> for CaseError {
    fn from(e: String) -> Self {
        CaseError::Harness(e)
    }
}

impl From<crate::driver::DriverError> for CaseError {
    fn from(e: crate::driver::DriverError) -> Self {
        CaseError::Harness(e.to_string())
    }
}

/// Starts a stack and a session, checks the role; runs `f` with them.
async fn with_session<F, Fut>(driver: &dyn Driver, role: &str, f: F) -> Result<Option<Broken>, CaseError>
where
    F: FnOnce(Stack, Box<dyn crate::driver::Session>, NetworkInfo) -> Fut,
    Fut: std::future::Future<Output = (Box<dyn crate::driver::Session>, Result<(), Broken>)>,
{
    let stack = Stack::builder()
        .token_server(HOST, TokenServerBehaviour::default())
        .start()
        .await
        .map_err(|e| format!("stack did not start: {e}"))?;
    let network = crate::session::network_of(&stack);
    let env = SessionEnv { network: network.clone(), vcap_services: None };
    let session = match crate::session::open(driver, &env, role, std::time::Duration::from_secs(15)).await {
        Ok(o) => o.session,
        Err(crate::session::OpenError::RoleNotPlayed { hello, .. }) => {
            return Err(CaseError::RoleNotPlayed(format!("{} does not play {role}", hello.name)))
        }
        Err(e) => return Err(CaseError::Harness(e.to_string())),
    };
    let (session, r) = f(stack, session, network).await;
    let end = session.close().await;
    if let Some(p) = end.problem {
        return Ok(Some(broken("FD-1", format!("adapter: {p}"))));
    }
    Ok(r.err())
}

async fn send_one(session: &mut Box<dyn crate::driver::Session>, req: Value) -> Result<Value, Broken> {
    let a = session.send(vec![req.clone()], false, std::time::Duration::from_secs(20)).await.remove(0);
    a.and_then(|a| result_of(&req, &a)).map_err(|e| broken("FD-1", format!("protocol: {e}")))
}

/// The readings a correct implementation may take where the pages leave a
/// choice that shows on the wire: `CA-4` and an absent `tokenServiceURLType`.
fn retrieval_readings() -> Vec<Readings> {
    let mut out = Vec::new();
    for ca4 in [Ca4::BasicAndBody, Ca4::BasicAlone] {
        for absent_url_type in [UrlType::Dedicated, UrlType::Common] {
            out.push(Readings { ca4, absent_url_type, ..Readings::IDPROP });
        }
    }
    out
}

/// Checks one token-retrieval case against the oracle.
async fn check_retrieval(driver: &dyn Driver, case: &RetrievalCase) -> Result<Option<Broken>, CaseError> {
    let d = case.destination();
    let tenant = case.call_tenant().to_string();
    let case = case.clone();
    with_session(driver, "token-retrieval", |stack, mut session, network| async move {
        let user_token = (case.auth == AuthKind::JwtBearer).then(|| mint(&stack, &TokenSpec::default()));
        let mut expected = Vec::new();
        for r in retrieval_readings() {
            match plan_with(&d, &tenant, user_token.as_deref(), &r) {
                Ok(Plan::Fetch(tr)) => expected.push(tr),
                other => {
                    let e = format!("generator produced a case the oracle does not fetch for: {other:?}");
                    return (session, Err(broken("FD-1", e)));
                }
            }
        }
        let destination = match d.to_json() {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        let req = Request::FindDestination(FindDestination {
            tenant: tenant.clone(),
            user_token: user_token.clone(),
            destination,
            certificates: vec![],
            related_destinations: None,
            network: network.clone(),
        });
        let r = async {
            let mut answers = Vec::new();
            for n in 0..case.lookups {
                answers.push(send_one(&mut session, Envelope::new(2 + u64::from(n), req.clone()).to_value()).await?);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            let seen = stack.journal().of("token-server");
            judge_retrieval(&d, &expected, &answers, &seen)
        }
        .await;
        (session, r)
    })
    .await
}

/// `(k, v)` pairs compared as a set, values trimmed, blank ones dropped: no
/// page says whether a blank property is absent or an empty value, nor
/// whether values are trimmed — both readings pass.
fn lenient(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> =
        pairs.iter().filter(|(_, v)| !v.trim().is_empty()).map(|(k, v)| (k.clone(), v.trim().to_string())).collect();
    v.sort();
    v
}

/// What the token server saw against what the rules say it should have:
/// the observed request must match the oracle under one of the readings.
/// A mismatch is reported against the first (idprop's) reading.
pub fn judge_retrieval(
    d: &Destination,
    expected: &[TokenRequest],
    answers: &[Value],
    seen: &[JournalEntry],
) -> Result<(), Broken> {
    let mut first_miss = None;
    for tr in expected {
        match judge_request(d, tr, answers, seen) {
            Ok(()) => return judge_answers(d, answers),
            Err(b) => {
                first_miss.get_or_insert(b);
            }
        }
    }
    Err(first_miss.unwrap_or_else(|| broken("FD-1", "no oracle plan".into())))
}

fn judge_request(
    d: &Destination,
    expected: &TokenRequest,
    answers: &[Value],
    seen: &[JournalEntry],
) -> Result<(), Broken> {
    let url = url::Url::parse(&expected.url).map_err(|e| broken("TU-1", format!("oracle URL: {e}")))?;
    // Which URL rule a wrong target breaks.
    let raw = d.get("tokenServiceURL").unwrap_or("");
    let common = d.get("tokenServiceURLType").is_some_and(|t| t.eq_ignore_ascii_case("common"));
    let url_rule = match (common, raw.find("{tenant}")) {
        (false, _) => "TU-1",
        (true, None) => "TU-4",
        (true, Some(i)) if raw[i..].contains('/') && raw[..i].matches('/').count() > 2 => "TU-3",
        (true, Some(_)) => "TU-2",
    };
    // Which credential rule a wrong placement breaks.
    let in_body = !d.get("tokenService.addClientCredentialsInBody").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let cred_rule = match (d.get("tokenServiceUser").is_some(), in_body) {
        (true, false) => "CA-3",
        (true, true) => "CA-4",
        (false, false) => "CA-2",
        (false, true) => "CA-1",
    };
    let Some(e) = seen.first() else {
        let err = answers.first().and_then(|a| a.pointer("/authTokens/0/error")).and_then(Value::as_str).unwrap_or("");
        return Err(broken(
            url_rule,
            format!("no token request reached a token server (expected {}); authTokens error: {err:?}", expected.url),
        ));
    };
    if seen.len() != 1 {
        return Err(broken("CH-1", format!("{} token requests for {} lookup(s)", seen.len(), answers.len())));
    }
    let host = url.host_str().unwrap_or_default();
    if e.host != host || e.path != url.path() {
        return Err(broken(
            url_rule,
            format!("token request went to {}{} — expected {host}{}", e.host, e.path, url.path()),
        ));
    }
    let want_q: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let (want_q, got_q) = (lenient(&want_q), lenient(&e.query));
    if want_q != got_q {
        let rule =
            if got_q.iter().any(|(k, _)| d.0.contains_key(&format!("URL.queries.{k}"))) { "PX-4" } else { "PX-2" };
        return Err(broken(rule, format!("query {got_q:?} — expected {want_q:?}")));
    }
    for (k, v) in &expected.headers {
        if e.header(k).map(str::trim) != Some(v.trim()) {
            return Err(broken("PX-1", format!("header {k}: {:?} — expected {v:?}", e.header(k))));
        }
    }
    if let Some((k, _)) = e.headers.iter().find(|(k, _)| k.starts_with("tokenserviceurl.")) {
        return Err(broken("PX-1", format!("header {k} still carries the prefix")));
    }
    if let Some((k, _)) = e.headers.iter().find(|(k, _)| k.starts_with("u-")) {
        return Err(broken("PX-4", format!("URL.headers.{k} reached the token service")));
    }
    let trim = |b: Option<(String, String)>| b.map(|(u, p)| (u.trim().to_string(), p.trim().to_string()));
    let basic = trim(e.basic_credentials());
    if basic != trim(expected.basic.clone()) {
        return Err(broken(cred_rule, format!("Basic {basic:?} — expected {:?}", expected.basic)));
    }
    let (want_f, got_f) = (lenient(&expected.form), lenient(&e.form));
    if want_f != got_f {
        let differs = |k: &str| want_f.iter().filter(|(f, _)| f == k).ne(got_f.iter().filter(|(f, _)| f == k));
        let rule = if differs("client_id") || differs("client_secret") {
            cred_rule
        } else if differs("scope") {
            "CA-9"
        } else if differs("grant_type") || differs("assertion") {
            if expected.auth == idprop_mocks::rules::AuthenticationType::OAuth2JWTBearer {
                "AT-1"
            } else {
                "CA-8"
            }
        } else {
            "PX-3"
        };
        return Err(broken(rule, format!("form {got_f:?} — expected {want_f:?}")));
    }
    Ok(())
}

/// The answers themselves: a token under the right header key, the same
/// token from the cache, `URL.*` returned for the client.
fn judge_answers(d: &Destination, answers: &[Value]) -> Result<(), Broken> {
    let technical = d.get("Authentication") == Some("OAuth2TechnicalUserPropagation");
    let (key, rule) =
        if technical { ("SAP-Connectivity-Technical-Authentication", "FD-2") } else { ("Authorization", "FD-3") };
    let mut values = Vec::new();
    for a in answers {
        let t = a.pointer("/authTokens/0").cloned().unwrap_or(Value::Null);
        if t.get("error").and_then(Value::as_str).is_some_and(|x| !x.is_empty())
            || t.pointer("/http_header/key").and_then(Value::as_str) != Some(key)
        {
            return Err(broken(rule, format!("authTokens[0] = {t}")));
        }
        values.push(t.get("value").and_then(Value::as_str).unwrap_or("").to_string());
        for (k, v) in d.0.iter().filter(|(k, _)| k.starts_with("URL.")) {
            if a.pointer("/destinationConfiguration").and_then(|c| c.get(k)).and_then(Value::as_str) != Some(v) {
                return Err(broken("PX-4", format!("destinationConfiguration.{k} is not {v:?} as configured")));
            }
        }
    }
    if values.windows(2).any(|w| w[0] != w[1]) {
        return Err(broken("CH-1", "the second lookup returned another token than the cached one".into()));
    }
    Ok(())
}

/// Checks one principal-mapping case against the oracle.
async fn check_mapping(driver: &dyn Driver, case: &MappingCase) -> Result<Option<Broken>, CaseError> {
    let spec = case.token_spec();
    let pattern = case.pattern.clone();
    let forged = case.forgery;
    let trusted = case.trusted;
    let technical = case.technical;
    with_session(driver, "principal-mapping", |stack, mut session, network| async move {
        let token = mint(&stack, &spec);
        let tenants: Vec<String> = stack.uaa().config().tenants.iter().map(|t| t.subdomain.clone()).collect();
        // A technical user's token comes in the technical header: the header
        // decides the user type (protocol v1.1 `propagation`).
        let req = Envelope::new(
            2,
            Request::MapPrincipal(MapPrincipal {
                token: token.clone(),
                trust: crate::runner::trust_of(&stack, &tenants),
                subject_pattern: pattern.clone(),
                now: unix_now() as i64,
                propagation: technical.then_some(Propagation::Technical),
                network: network.clone(),
            }),
        )
        .to_value();
        let r = async {
            let answer = send_one(&mut session, req).await?;
            let claims = idprop_mocks::tokens::peek_claims(&token).unwrap_or_default();
            judge_mapping(&claims, &pattern, forged, trusted, technical, &answer)
        }
        .await;
        (session, r)
    })
    .await
}

/// The answer to `map_principal` against the rules. Where the pages leave a
/// choice (a pattern variable the token lacks, `${mail}` without a `mail`
/// claim), either answer passes; subjects are compared as parsed DNs
/// (RFC 4514: any escaping of the same values).
pub fn judge_mapping(
    claims: &Map<String, Value>,
    pattern: &str,
    forged: Option<Forgery>,
    trusted: bool,
    technical: bool,
    answer: &Value,
) -> Result<(), Broken> {
    use idprop_mocks::rules::principal::UserType;
    let accepted = answer.get("accepted").and_then(Value::as_bool);
    // A `kid` naming no key, on a token the issuer's real key signed: RFC
    // 7515 makes `kid` a hint, so refusing and verifying with the issuer's
    // keys are both readings; an acceptance is judged like any other.
    let forged = forged.filter(|f| !(*f == Forgery::UnknownKid && accepted == Some(true)));
    if forged == Some(Forgery::UnknownKid) {
        return Ok(());
    }
    if let Some(f) = forged {
        let rule = match f {
            Forgery::Expired | Forgery::NotYetValid => "TV-3",
            _ => "TV-2",
        };
        return match accepted {
            Some(false) => Ok(()),
            _ => Err(broken(rule, format!("a {f:?} token was accepted: {answer}"))),
        };
    }
    if !trusted {
        return match accepted {
            Some(false) => Ok(()),
            _ => Err(broken("TV-1", format!("a token of an untrusted issuer was accepted: {answer}"))),
        };
    }
    let user_type = if technical { UserType::Technical } else { UserType::Business };
    let mail_fallback = pattern.contains("${mail}") && !claims.contains_key("mail");
    let rules = principal_mapping::single(pattern);
    match principal_mapping::map_claims_with(claims, &rules, &Readings::IDPROP, Some(user_type)) {
        Ok(m) => {
            let rule = if user_type == UserType::Technical { "PP-3" } else { "PP-2" };
            if accepted == Some(false) && mail_fallback {
                return Ok(()); // `${mail}` without `mail`: refusing is a reading too.
            }
            if accepted != Some(true) {
                return Err(broken(rule, format!("refused, expected {} ({}): {answer}", m.subject, m.principal)));
            }
            let p = answer.get("principal").and_then(Value::as_str).unwrap_or("");
            if p != m.principal {
                return Err(broken(rule, format!("principal {p:?} — expected {:?}", m.principal)));
            }
            if mail_fallback {
                return Ok(());
            }
            let s = answer.get("subject").and_then(Value::as_str).unwrap_or("");
            if !idprop_mocks::rules::dn::same_name(s, &m.subject).unwrap_or(false) {
                let rule = if s.contains("${") && !m.subject.contains("${") { "SP-2" } else { "SP-4" };
                return Err(broken(rule, format!("subject {s:?} — expected the same name as {:?}", m.subject)));
            }
            Ok(())
        }
        // TV-4: no principal claim, no identity to propagate.
        Err(r) if r.code == "no_principal" => match accepted {
            Some(false) => Ok(()),
            _ => Err(broken("TV-4", format!("accepted, expected a refusal ({}): {answer}", r.reason))),
        },
        // A pattern variable the token lacks: the pages do not say.
        Err(_) => Ok(()),
    }
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 200, ..Config::default() };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs one property on its own thread and runtime (the proptest runner is
/// synchronous).
fn run_property<S, F>(
    name: &'static str,
    role: &'static str,
    cases: u32,
    seed: u64,
    strategy: S,
    check: F,
    to_yaml: fn(&S::Value, &str) -> String,
) -> PropertyOutcome
where
    S: Strategy + Send + 'static,
    S::Value: Clone + std::fmt::Debug,
    F: Fn(&tokio::runtime::Runtime, &S::Value) -> Result<Option<Broken>, CaseError> + Send + 'static,
{
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut runner = runner(cases, seed);
    let last_rule = std::sync::Mutex::new(Broken::default());
    let skipped = std::sync::Mutex::new(None::<String>);
    let result = runner.run(&strategy, |case| match check(&rt, &case) {
        Ok(None) => Ok(()),
        Ok(Some(b)) => {
            let msg = b.message.clone();
            *last_rule.lock().expect("lock") = b;
            Err(TestCaseError::fail(msg))
        }
        Err(CaseError::RoleNotPlayed(why)) => {
            *skipped.lock().expect("lock") = Some(why);
            Err(TestCaseError::reject("role not played"))
        }
        Err(CaseError::Harness(e)) => Err(TestCaseError::fail(format!("harness: {e}"))),
    });
    let skipped = skipped.into_inner().expect("lock");
    let failure = match (result, &skipped) {
        (_, Some(_)) => None,
        (Ok(()), _) => None,
        (Err(TestError::Fail(reason, minimal)), _) => {
            // The last failing run is the minimal one.
            let Broken { rule, message: msg } = last_rule.into_inner().expect("lock");
            Some(PropertyFailure {
                scenario_yaml: to_yaml(&minimal, &rule),
                rule,
                message: if msg.is_empty() { reason.to_string() } else { msg },
            })
        }
        (Err(TestError::Abort(reason)), _) => Some(PropertyFailure {
            rule: String::new(),
            message: format!("aborted: {reason}"),
            scenario_yaml: String::new(),
        }),
    };
    PropertyOutcome { name, role, cases, seed, failure, skipped, duration_ms: started.elapsed().as_millis() as u64 }
}

fn retrieval_yaml(case: &RetrievalCase, rule: &str) -> String {
    let d = case.destination();
    let jwt = case.auth == AuthKind::JwtBearer;
    let expected = match plan(&d, case.call_tenant(), jwt.then_some("(user token)")) {
        Ok(Plan::Fetch(mut tr)) => {
            // The assertion is the minted user token: not known here.
            tr.form.retain(|(k, _)| k != "assertion");
            tr
        }
        _ => return String::new(),
    };
    let url = url::Url::parse(&expected.url).expect("oracle URL parses");
    let mut first = Map::new();
    first.insert("host".into(), json!(url.host_str()));
    first.insert("path".into(), json!(url.path()));
    let q: BTreeMap<String, String> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if !q.is_empty() {
        first.insert("query".into(), json!(q));
    }
    let h: BTreeMap<String, String> = expected.headers.iter().cloned().collect();
    if !h.is_empty() {
        first.insert("headers".into(), json!(h));
    }
    first.insert("form".into(), json!(expected.form.iter().cloned().collect::<BTreeMap<String, String>>()));
    first.insert(
        "basic".into(),
        json!(expected.basic.as_ref().map(|(u, p)| format!("{u}:{p}")).unwrap_or("none".into())),
    );
    let rule = if rule.is_empty() { "TU-1" } else { rule };
    let scenario = json!({
        "id": format!("property-counterexample-{}", rule.to_ascii_lowercase()),
        "title": "Shrunk counterexample of the token-retrieval property",
        "role": "token-retrieval",
        "tags": ["property-counterexample"],
        "rules": [rule],
        "given": {"token_servers": [{"host": HOST}]},
        "when": [{"find_destination": {
            "tenant": case.call_tenant(),
            "destination": d.to_json(),
            "user_token": if jwt { json!({"user": "alice"}) } else { Value::Null },
            "repeat": case.lookups,
        }}],
        "then": [{"rule": rule, "requests": {"component": "token-server", "count": 1, "first": first}}],
    });
    idprop_mocks::yaml::to_string(&scenario)
}

fn mapping_yaml(case: &MappingCase, rule: &str) -> String {
    let spec = case.token_spec();
    let rule = if rule.is_empty() { "PP-2" } else { rule };
    let mut only = spec.only_claims.clone().unwrap_or_default();
    only.remove("iat");
    only.insert("exp".into(), json!(4_102_444_800u64));
    let mut token = json!({"only_claims": only, "tenant": if case.trusted { "mytenant" } else { "stranger" }});
    if let Some(f) = case.forgery {
        token["forge"] = json!(f);
    }
    let mut claims = spec.only_claims.clone().unwrap_or_default();
    claims.insert("iss".into(), json!("(issuer)"));
    let check = match (
        case.forgery.filter(|_| case.trusted),
        principal_mapping::map_claims(&claims, &principal_mapping::single(&case.pattern)),
    ) {
        (None, Ok(m)) if case.trusted => json!({"accepted": true, "principal": m.principal, "subject_dn": m.subject}),
        _ => json!({"accepted": false}),
    };
    let scenario = json!({
        "id": format!("property-counterexample-{}", rule.to_ascii_lowercase()),
        "title": "Shrunk counterexample of the principal-mapping property",
        "role": "principal-mapping",
        "tags": ["property-counterexample"],
        "rules": [rule],
        "when": [{"map_principal": {
            "token": token,
            "subject_pattern": case.pattern,
            "propagation": if case.technical { json!("technical") } else { Value::Null },
        }}],
        "then": [{"rule": rule, "mapping": check}],
    });
    idprop_mocks::yaml::to_string(&scenario)
}

/// Runs both properties against `driver`.
pub fn run_all(driver: Arc<dyn Driver>, cases: u32, seed: u64) -> Vec<PropertyOutcome> {
    run_roles(driver, cases, seed, &["token-retrieval", "principal-mapping"])
}

/// Runs the properties of `roles` against `driver`, each on its own thread.
pub fn run_roles(driver: Arc<dyn Driver>, cases: u32, seed: u64, roles: &[&str]) -> Vec<PropertyOutcome> {
    let mut threads = Vec::new();
    if roles.contains(&"token-retrieval") {
        let d = driver.clone();
        threads.push(std::thread::spawn(move || {
            run_property(
                "token-retrieval: generated destinations",
                "token-retrieval",
                cases,
                seed,
                retrieval_cases(),
                move |rt, c| rt.block_on(check_retrieval(d.as_ref(), c)),
                retrieval_yaml,
            )
        }));
    }
    if roles.contains(&"principal-mapping") {
        let d = driver;
        threads.push(std::thread::spawn(move || {
            run_property(
                "principal-mapping: generated claims and patterns",
                "principal-mapping",
                cases,
                seed,
                mapping_cases(),
                move |rt, c| rt.block_on(check_mapping(d.as_ref(), c)),
                mapping_yaml,
            )
        }));
    }
    threads.into_iter().map(|t| t.join().expect("property thread")).collect()
}

/// The report of a property run.
pub fn report(outcomes: &[PropertyOutcome], implementation: &str) -> String {
    let mut out = String::new();
    for o in outcomes {
        match (&o.skipped, &o.failure) {
            (Some(s), _) => out.push_str(&format!("skip {} — {s}\n", o.name)),
            (None, None) => {
                out.push_str(&format!("ok   {} — {} cases, seed {}, {} ms\n", o.name, o.cases, o.seed, o.duration_ms))
            }
            (None, Some(f)) => {
                out.push_str(&format!("FAIL {} — seed {} ({} ms)\n", o.name, o.seed, o.duration_ms));
                out.push_str(&format!("  [{}] {}\n", f.rule, crate::report::rule_text(&f.rule)));
                out.push_str(&format!("  minimal failing input: {}\n", f.message));
                out.push_str(&format!(
                    "  reproduce: idprop run --properties --seed {} --impl '{implementation}'\n",
                    o.seed
                ));
                out.push_str("  as a scenario (save under scenarios/):\n");
                for l in f.scenario_yaml.lines() {
                    out.push_str(&format!("    {l}\n"));
                }
            }
        }
    }
    out
}
