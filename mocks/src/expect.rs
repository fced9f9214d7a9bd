//! What a request must look like, and expectations on the journal that a
//! [`Stack`](crate::Stack) verifies when it is dropped — wiremock-rs's
//! `expect(...)`, for the whole identity landscape.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use idprop_mocks::{expect::request, Stack};
//!
//! let stack = Stack::start().await?;
//! // Verified when the last clone of `stack` is dropped (or by `verify()`).
//! stack
//!     .expect(request().host("mytenant.authentication.eu10.idp.test").path("/oauth/token").basic_user("sb-idprop-app!t1"))
//!     .times(1)
//!     .named("one client-credentials token");
//! stack
//!     .http_client()
//!     .post(format!("{}/oauth/token", stack.uaa_url("mytenant")))
//!     .basic_auth("sb-idprop-app!t1", Some("app-secret"))
//!     .form(&[("grant_type", "client_credentials")])
//!     .send()
//!     .await?;
//! stack.verify()?;
//! # Ok(()) }
//! ```
//!
//! The same [`RequestMatcher`] is the `first`/`last`/`each` of the harness's
//! `requests` checks, so a scenario and a Rust test say the same thing the
//! same way. When an expectation is not met, the report names the journal
//! entry that came closest and what differed in it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::journal::JournalEntry;

/// One way a request differs from a matcher: what was wanted, what came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub expected: String,
    pub observed: String,
}

/// What one observed request must look like (every field optional; names
/// of headers any case).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RequestMatcher {
    /// The mock that saw it: `uaa`, `token-server`, `destination`,
    /// `connectivity-proxy`, `backend`, `api`, `gateway` (expectations only;
    /// a scenario's `requests` check selects it beside the matcher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub tls: Option<bool>,
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    #[serde(default)]
    pub form_absent: Vec<String>,
    /// Header values (names any case).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers whose value starts with the given text.
    #[serde(default)]
    pub header_prefixes: BTreeMap<String, String>,
    #[serde(default)]
    pub headers_absent: Vec<String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub query_absent: Vec<String>,
    /// HTTP Basic credentials `user:password`; `none` for no Basic header.
    #[serde(default)]
    pub basic: Option<String>,
    /// HTTP Basic with this user, whatever the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_user: Option<String>,
    /// RFC 4514 subject of the TLS client certificate; `none` for none.
    #[serde(default)]
    pub client_cert_subject: Option<String>,
    /// RFC 4514 issuer of the TLS client certificate.
    #[serde(default)]
    pub client_cert_issuer: Option<String>,
    /// RFC 4514 subject of the certificate in the `SSL_CLIENT_CERT` header
    /// (what a Cloud Connector propagates); `none` for no (or an empty) header.
    #[serde(default)]
    pub ssl_client_cert_subject: Option<String>,
    /// RFC 4514 issuer of the certificate in `SSL_CLIENT_CERT`.
    #[serde(default)]
    pub ssl_client_cert_issuer: Option<String>,
    /// Claims the JWT in `Authorization: Bearer …` must carry.
    #[serde(default)]
    pub bearer_claims: Map<String, Value>,
    /// Status the mock answered.
    #[serde(default)]
    pub status: Option<u16>,
}

/// A matcher that matches every request; narrow it with the builder methods.
pub fn request() -> RequestMatcher {
    RequestMatcher::default()
}

impl RequestMatcher {
    pub fn component(mut self, c: &str) -> Self {
        self.component = Some(c.into());
        self
    }
    pub fn host(mut self, h: &str) -> Self {
        self.host = Some(h.into());
        self
    }
    pub fn path(mut self, p: &str) -> Self {
        self.path = Some(p.into());
        self
    }
    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.into());
        self
    }
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = Some(tls);
        self
    }
    pub fn form(mut self, k: &str, v: &str) -> Self {
        self.form.insert(k.into(), v.into());
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.insert(k.into(), v.into());
        self
    }
    pub fn header_prefix(mut self, k: &str, v: &str) -> Self {
        self.header_prefixes.insert(k.into(), v.into());
        self
    }
    pub fn without_header(mut self, k: &str) -> Self {
        self.headers_absent.push(k.into());
        self
    }
    pub fn query(mut self, k: &str, v: &str) -> Self {
        self.query.insert(k.into(), v.into());
        self
    }
    /// HTTP Basic with exactly this user and password.
    pub fn basic(mut self, user: &str, password: &str) -> Self {
        self.basic = Some(format!("{user}:{password}"));
        self
    }
    /// HTTP Basic with this user, whatever the password.
    pub fn basic_user(mut self, user: &str) -> Self {
        self.basic_user = Some(user.into());
        self
    }
    pub fn client_cert_subject(mut self, dn: &str) -> Self {
        self.client_cert_subject = Some(dn.into());
        self
    }
    pub fn ssl_client_cert_subject(mut self, dn: &str) -> Self {
        self.ssl_client_cert_subject = Some(dn.into());
        self
    }
    pub fn bearer_claim(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.bearer_claims.insert(k.into(), v.into());
        self
    }
    pub fn status(mut self, s: u16) -> Self {
        self.status = Some(s);
        self
    }

    /// Whether `e` is such a request.
    pub fn matches(&self, e: &JournalEntry) -> bool {
        self.differences(e).is_empty()
    }

    /// Every way `e` differs from this matcher, in the order the fields are
    /// listed (empty: it matches).
    pub fn differences(&self, e: &JournalEntry) -> Vec<Difference> {
        let mut out = Vec::new();
        let mut diff = |expected: String, observed: String| out.push(Difference { expected, observed });
        let ci = |what: &str, want: &Option<String>, got: &str, diff: &mut dyn FnMut(String, String)| {
            if let Some(w) = want {
                if !w.eq_ignore_ascii_case(got) {
                    diff(format!("{what} {w:?}"), format!("{got:?}"));
                }
            }
        };
        ci("component", &self.component, e.component.as_str(), &mut diff);
        ci("host", &self.host, &e.host, &mut diff);
        if let Some(p) = &self.path {
            if p != &e.path {
                diff(format!("path {p:?}"), format!("{:?}", e.path));
            }
        }
        ci("method", &self.method, &e.method, &mut diff);
        if let Some(t) = self.tls {
            if t != e.tls {
                diff(format!("tls {t}"), format!("tls {}", e.tls));
            }
        }
        if let Some(s) = self.status {
            if s != e.status {
                diff(format!("status {s}"), format!("{}", e.status));
            }
        }
        for (k, v) in &self.form {
            if e.form_field(k) != Some(v.as_str()) {
                diff(format!("form field {k}={v:?}"), format!("{:?}", e.form_field(k)));
            }
        }
        for k in &self.form_absent {
            if let Some(v) = e.form_field(k) {
                diff(format!("no form field {k}"), format!("{k}={v:?}"));
            }
        }
        for (k, v) in &self.headers {
            if e.header(k) != Some(v.as_str()) {
                diff(format!("header {k}: {v:?}"), format!("{:?}", e.header(k)));
            }
        }
        for (k, v) in &self.header_prefixes {
            if !e.header(k).is_some_and(|h| h.starts_with(v.as_str())) {
                diff(format!("header {k} starting {v:?}"), format!("{:?}", e.header(k)));
            }
        }
        for k in &self.headers_absent {
            if let Some(v) = e.header(k) {
                diff(format!("no header {k}"), format!("{k}: {}", excerpt(v)));
            }
        }
        for (k, v) in &self.query {
            if e.query_param(k) != Some(v.as_str()) {
                diff(format!("query {k}={v:?}"), format!("{:?}", e.query_param(k)));
            }
        }
        for k in &self.query_absent {
            if let Some(v) = e.query_param(k) {
                diff(format!("no query parameter {k}"), format!("{k}={v:?}"));
            }
        }
        let basic = e.basic_credentials();
        if let Some(b) = &self.basic {
            let got = basic.as_ref().map(|(u, p)| format!("{u}:{p}"));
            let ok = if b == "none" { got.is_none() } else { got.as_deref() == Some(b.as_str()) };
            if !ok {
                diff(format!("Basic {b:?}"), format!("{got:?}"));
            }
        }
        if let Some(u) = &self.basic_user {
            if basic.as_ref().map(|(got, _)| got.as_str()) != Some(u.as_str()) {
                diff(format!("Basic user {u:?}"), format!("{:?}", basic.as_ref().map(|(u, _)| u)));
            }
        }
        let tls = e.client_cert.as_ref();
        let ssl = e.ssl_client_cert.as_ref();
        let dns = [
            ("client certificate", &self.client_cert_subject, tls.map(|c| c.subject.as_str())),
            ("client certificate issued by", &self.client_cert_issuer, tls.map(|c| c.issuer.as_str())),
            ("SSL_CLIENT_CERT", &self.ssl_client_cert_subject, ssl.map(|c| c.subject.as_str())),
            ("SSL_CLIENT_CERT issued by", &self.ssl_client_cert_issuer, ssl.map(|c| c.issuer.as_str())),
        ];
        for (what, want, got) in dns {
            if let Some(want) = want {
                if !same_dn(want, got) {
                    diff(format!("{what} {want:?}"), format!("{got:?}"));
                }
            }
        }
        if !self.bearer_claims.is_empty() {
            let token = e.header("authorization").and_then(crate::http::bearer).unwrap_or("");
            match crate::rules::token_validation::peek_claims(token) {
                None => diff("a JWT in Authorization: Bearer".into(), format!("{:?}", e.header("authorization"))),
                Some(claims) => {
                    for (k, v) in &self.bearer_claims {
                        if claims.get(k) != Some(v) {
                            diff(
                                format!("bearer claim {k} = {v}"),
                                format!("{}", claims.get(k).unwrap_or(&Value::Null)),
                            );
                        }
                    }
                }
            }
        }
        out
    }
}

/// `want` (`none` for absent) against the DN `got`, compared parsed: RFC
/// 4514 allows several spellings of one name.
fn same_dn(want: &str, got: Option<&str>) -> bool {
    match (want, got) {
        ("none", g) => g.is_none(),
        (w, Some(g)) => crate::rules::dn::same_name(w, g).unwrap_or(w == g),
        (_, None) => false,
    }
}

fn excerpt(s: &str) -> String {
    if s.len() <= 120 {
        return s.to_string();
    }
    let mut end = 120;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// How many matching requests an expectation wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    Exactly(usize),
    AtLeast(usize),
    AtMost(usize),
    Between(usize, usize),
}

impl Times {
    fn allows(self, n: usize) -> bool {
        match self {
            Times::Exactly(x) => n == x,
            Times::AtLeast(x) => n >= x,
            Times::AtMost(x) => n <= x,
            Times::Between(a, b) => (a..=b).contains(&n),
        }
    }
}

impl std::fmt::Display for Times {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Times::Exactly(x) => write!(f, "exactly {x}"),
            Times::AtLeast(x) => write!(f, "at least {x}"),
            Times::AtMost(x) => write!(f, "at most {x}"),
            Times::Between(a, b) => write!(f, "between {a} and {b}"),
        }
    }
}

/// One expectation registered on a stack.
#[derive(Debug, Clone)]
pub(crate) struct Expectation {
    pub matcher: RequestMatcher,
    pub times: Times,
    pub name: Option<String>,
}

/// The handle [`Stack::expect`](crate::Stack::expect) returns: says how
/// many times (at least once by default) and names the expectation.
#[derive(Debug)]
pub struct ExpectationBuilder {
    pub(crate) slot: std::sync::Arc<std::sync::Mutex<Vec<Expectation>>>,
    pub(crate) index: usize,
}

impl ExpectationBuilder {
    fn set(&self, f: impl FnOnce(&mut Expectation)) -> &Self {
        if let Some(e) = self.slot.lock().expect("expectations lock").get_mut(self.index) {
            f(e);
        }
        self
    }
    /// Exactly `n` matching requests.
    pub fn times(&self, n: usize) -> &Self {
        self.set(|e| e.times = Times::Exactly(n))
    }
    pub fn at_least(&self, n: usize) -> &Self {
        self.set(|e| e.times = Times::AtLeast(n))
    }
    pub fn at_most(&self, n: usize) -> &Self {
        self.set(|e| e.times = Times::AtMost(n))
    }
    pub fn between(&self, a: usize, b: usize) -> &Self {
        self.set(|e| e.times = Times::Between(a, b))
    }
    /// Names it in the report.
    pub fn named(&self, name: &str) -> &Self {
        self.set(|e| e.name = Some(name.into()))
    }
}

/// Expectations that were not met, with the closest journal entry each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{report}")]
pub struct Unmet {
    pub report: String,
}

/// Checks `expectations` against `journal`; the report names, for each
/// unmet one, how many matched and the entry that came closest with what
/// differed in it (fewest differences; the latest on a tie).
pub(crate) fn verify(expectations: &[Expectation], journal: &[JournalEntry]) -> Result<(), Unmet> {
    let mut report = String::new();
    for (i, x) in expectations.iter().enumerate() {
        let n = journal.iter().filter(|e| x.matcher.matches(e)).count();
        if x.times.allows(n) {
            continue;
        }
        let name = x.name.clone().unwrap_or_else(|| format!("expectation #{}", i + 1));
        report.push_str(&format!(
            "{name}: wanted {} matching request(s), saw {n}\n  matcher: {}\n",
            x.times,
            serde_json::to_string(&x.matcher).unwrap_or_default()
        ));
        let closest = journal
            .iter()
            .map(|e| (x.matcher.differences(e), e))
            .filter(|(d, _)| !d.is_empty())
            .min_by_key(|(d, e)| (d.len(), std::cmp::Reverse(e.seq)));
        match closest {
            Some((diffs, e)) => {
                report.push_str(&format!("  closest: {}\n", e.one_line()));
                for d in diffs {
                    report.push_str(&format!("    expected {}, got {}\n", d.expected, d.observed));
                }
            }
            None if journal.is_empty() => report.push_str("  the journal is empty\n"),
            None => {}
        }
    }
    if report.is_empty() {
        Ok(())
    } else {
        Err(Unmet { report })
    }
}
