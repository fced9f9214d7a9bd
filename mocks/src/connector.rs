//! The mock Cloud Connector: access control by virtual host and path,
//! principal propagation with short-lived X.509 certificates, technical user
//! propagation, and the call to the on-premise system.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, KeyPair};
use serde::{Deserialize, Serialize};

use crate::pki::TestPki;
use crate::rules::backend_logon::{self, SslClientCert, TrustedProxy};
use crate::rules::principal::UserType;
use crate::rules::principal_mapping::{self, Mapping};
use crate::rules::subject::{SubjectRule, DEFAULT_PATTERN};
use crate::rules::token_validation::{self, Rejection, TrustedIssuer};
use crate::rules::Readings;

/// Largest certificate validity the connector accepts (30 days).
pub const MAX_VALIDITY_MINUTES: u32 = 43_200;
/// Largest Expiration Tolerance (14 days; 58803a2, 03a3ab3).
pub const MAX_TOLERANCE_HOURS: u32 = 336;

pub use crate::rules::backend_logon::AuthenticationMode;

/// One access-control entry: a virtual host and port on the cloud side,
/// the internal system behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// `http://erp.onprem.test:44300`.
    #[serde(rename = "virtual")]
    pub virtual_url: String,
    /// `https://erp.internal.test` (the stack resolves internal hosts).
    pub internal: String,
    /// The authentication mode (system-mappings-e933fd9.md
    /// `authenticationMode`); `x509` and `none` are read as
    /// `X509_RESTRICTED` and `NONE`.
    #[serde(default)]
    pub principal: AuthenticationMode,
    /// Allowed path prefixes; anything else is refused.
    #[serde(default = "root_path")]
    pub paths: Vec<String>,
}

fn root_path() -> Vec<String> {
    vec!["/".into()]
}

/// An identity provider the connector trusts (`TV-1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustedIdp {
    pub issuer: String,
    pub jwks_uri: String,
}

/// Configuration of one Cloud Connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorConfig {
    /// `SAP-Connectivity-SCC-Location_ID`; empty is the default connector.
    pub location_id: String,
    /// Subject pattern table (`SP-3`); `[CN=${name}]` by default.
    pub subject_patterns: Vec<SubjectRule>,
    pub certificate_validity_minutes: u32,
    pub mappings: Vec<MappingConfig>,
    /// Trusted identity providers; every tenant of the stack's UAA when absent.
    pub trusted_idps: Option<Vec<TrustedIdp>>,
    /// Expiration Tolerance (configure-subject-patterns-58803a2.md): "The
    /// length of time in hours, that an application can use a principal
    /// issued for a user after the token from cloud side has expired"; 0 to
    /// [`MAX_TOLERANCE_HOURS`]. No page gives a default; 0 keeps expired
    /// tokens refused.
    pub expiration_tolerance_hours: u32,
    /// Whether a system certificate is installed (initial-configuration-http-
    /// 3f974ea.md). Without one, "the Cloud Connector opens an HTTPS
    /// connection without client certificate" (e7d4927 step 4).
    pub system_certificate: bool,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            location_id: String::new(),
            subject_patterns: vec![SubjectRule { condition: None, pattern: DEFAULT_PATTERN.into() }],
            certificate_validity_minutes: 10,
            mappings: vec![
                MappingConfig {
                    virtual_url: "http://erp.onprem.test:44300".into(),
                    internal: format!("https://{}", crate::backend::INTERNAL_HOST),
                    principal: AuthenticationMode::X509Restricted,
                    paths: root_path(),
                },
                // The seed's `technical-user-example` destination points here:
                // identities are propagated (technical users included).
                MappingConfig {
                    virtual_url: "http://protected-url.example.test:80".into(),
                    internal: format!("https://{}", crate::backend::INTERNAL_HOST),
                    principal: AuthenticationMode::X509Restricted,
                    paths: root_path(),
                },
                // An OAuth server on premise, for token services with
                // `tokenServiceURL.ProxyType: OnPremise`.
                MappingConfig {
                    virtual_url: "http://oauth.onprem.test:80".into(),
                    internal: format!("https://{}", crate::stack::ON_PREMISE_OAUTH_HOST),
                    principal: AuthenticationMode::X509Restricted,
                    paths: vec!["/oauth/token".into()],
                },
            ],
            trusted_idps: None,
            expiration_tolerance_hours: 0,
            system_certificate: true,
        }
    }
}

impl ConnectorConfig {
    /// The JSON the ready file lists under `cloud_connector.locations`.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.location_id,
            "subject_pattern": self.subject_patterns.last().map(|r| r.pattern.as_str()).unwrap_or(DEFAULT_PATTERN),
            "subject_patterns": self.subject_patterns,
            "certificate_validity_minutes": self.certificate_validity_minutes,
            "mappings": self.mappings.iter().map(|m| serde_json::json!({
                "virtual": m.virtual_url, "internal": m.internal, "principal": m.principal, "paths": m.paths,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Where internal host names lead (the on-premise network).
#[derive(Debug, Clone, Default)]
pub struct InternalNetwork {
    /// `(host, scheme)` → loopback address.
    pub hosts: HashMap<(String, String), SocketAddr>,
}

/// A short-lived certificate minted for one subject (`PP-5`).
struct Issued {
    renew_at: Instant,
    /// `SSL_CLIENT_CERT`'s value (`SC-3`).
    header: String,
}

/// The connector's system certificate (initial-configuration-http-3f974ea.md),
/// TEST ONLY, minted at start from the test PKI's root CA.
#[derive(Debug, Clone)]
pub struct SystemCertificate {
    /// RFC 4514.
    pub subject: String,
    /// RFC 4514.
    pub issuer: String,
    pub cert_pem: String,
    key_pem: String,
}

impl SystemCertificate {
    /// What a backend configures to trust it (`icm/trusted_reverse_proxy_<x>`).
    pub fn trusted_proxy(&self) -> TrustedProxy {
        TrustedProxy { subject: self.subject.clone(), issuer: self.issuer.clone() }
    }
}

/// What the connector will do with a request, decided before anything is sent.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Identity propagation (business or technical: [`Mapping::user_type`])
    /// with a short-lived certificate for this subject.
    Propagated(Mapping),
    /// No identity from the cloud.
    None,
}

/// The identity-bearing parts of a request at the Cloud Connector: which
/// header a token came in decides the user type (58803a2).
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// `SAP-Connectivity-Authentication` (`PP-1`).
    pub user: Option<&'a str>,
    /// `SAP-Connectivity-Technical-Authentication` (`TP-1`).
    pub technical: Option<&'a str>,
    /// Claims of a user exchange token in `Proxy-Authorization` (`CP-5`).
    pub exchanged_user: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// A refusal: status and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }
}

/// A running Cloud Connector.
pub struct CloudConnector {
    config: ConnectorConfig,
    pki: Arc<TestPki>,
    network: InternalNetwork,
    /// Fetches JWKS through the gateway (never from a token's `jku`).
    jwks_client: reqwest::Client,
    trust: RwLock<HashMap<String, (String, Option<JwkSet>)>>,
    certs: Mutex<HashMap<String, Arc<Issued>>>,
    /// Tokens validated before, until they expire (plus the tolerance).
    validated: crate::validated::ValidatedTokens,
    system: Option<SystemCertificate>,
    /// Presents the system certificate (when there is one) to HTTPS backends;
    /// one pool for every user, since identities travel in a header.
    backend_client: reqwest::Client,
    /// The same for internal hosts served by other mocks, through the
    /// gateway; built on first use (start-up stays cheap).
    routed_client: std::sync::OnceLock<Result<reqwest::Client, String>>,
    gateway: String,
    /// Certificates minted so far (a cache hit mints none).
    minted: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for CloudConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudConnector").field("location_id", &self.config.location_id).finish_non_exhaustive()
    }
}

impl CloudConnector {
    /// `trusted` are the identity providers when the config names none;
    /// `gateway` is the proxy JWKS are fetched through.
    pub fn new(
        config: ConnectorConfig,
        pki: Arc<TestPki>,
        network: InternalNetwork,
        trusted: Vec<TrustedIdp>,
        gateway: &str,
    ) -> Result<Self, String> {
        if config.certificate_validity_minutes > MAX_VALIDITY_MINUTES {
            return Err(format!(
                "certificate validity {} min is over the maximum of {MAX_VALIDITY_MINUTES}",
                config.certificate_validity_minutes
            ));
        }
        if config.expiration_tolerance_hours > MAX_TOLERANCE_HOURS {
            return Err(format!(
                "expiration tolerance {} h is over the maximum of {MAX_TOLERANCE_HOURS} (14 days)",
                config.expiration_tolerance_hours
            ));
        }
        let ca = reqwest::Certificate::from_pem(pki.ca_bundle_pem().as_bytes()).map_err(|e| e.to_string())?;
        let jwks_client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(gateway).map_err(|e| e.to_string())?)
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let idps = config.trusted_idps.clone().unwrap_or(trusted);
        let trust = idps.into_iter().map(|t| (t.issuer, (t.jwks_uri, None))).collect();
        let system =
            if config.system_certificate { Some(system_certificate(&pki, &config.location_id)?) } else { None };
        let identity = system.as_ref().map(|s| format!("{}{}", s.cert_pem, s.key_pem));
        let backend_client = Self::backend_client(&pki, &network, identity.as_deref())?;
        Ok(Self {
            config,
            pki,
            network,
            jwks_client,
            trust: RwLock::new(trust),
            certs: Mutex::new(HashMap::new()),
            validated: Default::default(),
            system,
            backend_client,
            routed_client: std::sync::OnceLock::new(),
            gateway: gateway.to_string(),
            minted: Default::default(),
        })
    }

    pub fn config(&self) -> &ConnectorConfig {
        &self.config
    }

    /// The system certificate, when one is installed.
    pub fn system_certificate(&self) -> Option<&SystemCertificate> {
        self.system.as_ref()
    }

    /// The JSON the ready file lists under `cloud_connector.locations`.
    pub fn summary(&self) -> serde_json::Value {
        let mut v = self.config.summary();
        v["expiration_tolerance_hours"] = self.config.expiration_tolerance_hours.into();
        v["system_certificate"] = match &self.system {
            Some(s) => serde_json::json!({"subject": s.subject, "issuer": s.issuer, "pem": s.cert_pem}),
            None => serde_json::Value::Null,
        };
        v
    }

    /// How many certificates were minted (cache misses).
    pub fn minted(&self) -> u64 {
        self.minted.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn backend_client(
        pki: &TestPki,
        network: &InternalNetwork,
        identity: Option<&str>,
    ) -> Result<reqwest::Client, String> {
        let ca = reqwest::Certificate::from_pem(pki.ca_bundle_pem().as_bytes()).map_err(|e| e.to_string())?;
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([ca])
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(60));
        for ((host, _), addr) in &network.hosts {
            b = b.resolve(host, *addr);
        }
        if let Some(pem) = identity {
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| e.to_string())?);
        }
        b.build().map_err(|e| e.to_string())
    }

    /// The client for internal hosts other mocks serve (through the gateway),
    /// presenting the system certificate.
    fn routed_client(&self) -> Result<&reqwest::Client, Refusal> {
        self.routed_client
            .get_or_init(|| {
                let ca =
                    reqwest::Certificate::from_pem(self.pki.ca_bundle_pem().as_bytes()).map_err(|e| e.to_string())?;
                let mut b = reqwest::Client::builder()
                    .proxy(reqwest::Proxy::all(&self.gateway).map_err(|e| e.to_string())?)
                    .tls_certs_only([ca])
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(Duration::from_secs(60));
                if let Some(s) = &self.system {
                    let pem = format!("{}{}", s.cert_pem, s.key_pem);
                    b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| e.to_string())?);
                }
                b.build().map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Refusal::new(500, format!("Cloud Connector: cannot build a client: {e}")))
    }

    /// The mapping of a virtual host and port, and whether `path` is allowed.
    pub fn route(&self, host: &str, port: u16, path: &str) -> Result<&MappingConfig, Refusal> {
        let m = self
            .config
            .mappings
            .iter()
            .find(|m| {
                url::Url::parse(&m.virtual_url).ok().is_some_and(|u| {
                    u.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
                        && u.port_or_known_default() == Some(port)
                })
            })
            .ok_or_else(|| {
                Refusal::new(403, format!("Cloud Connector: no mapping for virtual host {host}:{port}; access denied"))
            })?;
        if !crate::rules::paths::allowed(path, &m.paths) {
            return Err(Refusal::new(
                403,
                format!(
                    "Cloud Connector: path {path} is not allowed for {host}:{port} (allowed: {})",
                    m.paths.join(", ")
                ),
            ));
        }
        Ok(m)
    }

    /// The identity a request carries, validated and mapped (`PP-1`..`SP-5`,
    /// `TP-1`, `CP-5`, `TV-*`): the one step the Connectivity proxy asks of
    /// the connector before anything is sent. The user type is the header's
    /// (configure-subject-patterns-58803a2.md), never a claim's.
    pub async fn propagate(&self, creds: Credentials<'_>, now: i64) -> Result<Identity, Refusal> {
        let (token, user_type, header) = match (creds.user, creds.technical) {
            (Some(_), Some(_)) => {
                return Err(Refusal::new(
                    400,
                    "both SAP-Connectivity-Authentication and SAP-Connectivity-Technical-Authentication: principal and technical propagation are never combined",
                ))
            }
            (Some(u), None) => (u, UserType::Business, "SAP-Connectivity-Authentication"),
            (None, Some(t)) => (t, UserType::Technical, "SAP-Connectivity-Technical-Authentication"),
            // CP-5: a user exchange token carries the user by itself.
            (None, None) => {
                return match creds.exchanged_user {
                    Some(claims) => self
                        .map(claims, UserType::Business)
                        .map(Identity::Propagated)
                        .map_err(|e| Refusal::new(403, format!("principal propagation refused: {e}"))),
                    None => Ok(Identity::None),
                }
            }
        };
        let what = match user_type {
            UserType::Business => "principal propagation",
            UserType::Technical => "technical user propagation",
        };
        let Some(token) = crate::http::bearer(token) else {
            return Err(Refusal::new(401, format!("{header} must be \"Bearer <JWT>\"")));
        };
        // Trust "applies to both principal propagation and technical user
        // propagation" (set-up-trust-a4ee70f.md).
        let valid = self.validate(token, now).await.map_err(|e| Refusal::new(401, format!("{what} refused: {e}")))?;
        self.map(&valid.claims, user_type)
            .map(Identity::Propagated)
            .map_err(|e| Refusal::new(403, format!("{what} refused: {e}")))
    }

    /// Validates a token against the trusted identity providers, fetching
    /// their keys on first use and again on an unknown `kid`; tokens expired
    /// within the Expiration Tolerance still pass.
    pub async fn validate(&self, token: &str, now: i64) -> Result<token_validation::ValidToken, Rejection> {
        if let Some(v) = self.validated.get(token, now) {
            return Ok(v);
        }
        let tolerance = i64::from(self.config.expiration_tolerance_hours) * 3600;
        let v = self.validate_fresh(token, now, tolerance).await?;
        self.validated.put(token, crate::validated::exp_of(&v).saturating_add(tolerance), &v);
        Ok(v)
    }

    async fn validate_fresh(
        &self,
        token: &str,
        now: i64,
        tolerance: i64,
    ) -> Result<token_validation::ValidToken, Rejection> {
        let claims_iss = token_validation::peek_claims(token)
            .and_then(|c| c.get("iss").and_then(|i| i.as_str().map(str::to_string)));
        if let Some(iss) = &claims_iss {
            self.ensure_keys(iss, false).await;
        }
        let run = |trusted: &[TrustedIssuer]| {
            token_validation::validate_tolerating(token, trusted, now, &token_validation::Readings::IDPROP, tolerance)
        };
        match run(&self.trusted()) {
            Err(Rejection::UnknownKey(k)) => {
                if let Some(iss) = &claims_iss {
                    self.ensure_keys(iss, true).await;
                }
                run(&self.trusted()).map_err(|e| match e {
                    Rejection::UnknownKey(_) => Rejection::UnknownKey(k),
                    other => other,
                })
            }
            other => other,
        }
    }

    fn trusted(&self) -> Vec<TrustedIssuer> {
        self.trust
            .read()
            .expect("trust lock")
            .iter()
            .filter_map(|(iss, (uri, jwks))| {
                jwks.clone().map(|jwks| TrustedIssuer { issuer: iss.clone(), jwks, jwks_uri: Some(uri.clone()) })
            })
            .collect()
    }

    async fn ensure_keys(&self, issuer: &str, refresh: bool) {
        let uri = {
            let t = self.trust.read().expect("trust lock");
            match t.get(issuer) {
                Some((_, Some(_))) if !refresh => return,
                Some((uri, _)) => uri.clone(),
                None => return,
            }
        };
        let Ok(jwks) = crate::http::get_jwks(&self.jwks_client, &uri, Duration::from_secs(5)).await else { return };
        if let Some(entry) = self.trust.write().expect("trust lock").get_mut(issuer) {
            entry.1 = Some(jwks);
        }
        // New keys: what validated with the old ones is validated again.
        self.validated.clear();
    }

    /// Maps the principal of validated claims for `user_type` (`PP-2`..`SP-5`).
    pub fn map(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        user_type: UserType,
    ) -> Result<Mapping, String> {
        principal_mapping::map_claims_with(claims, &self.config.subject_patterns, &Readings::IDPROP, Some(user_type))
            .map_err(|r| r.reason)
    }

    /// How long certificates live; 0 minutes is a one-minute certificate
    /// that is never reused.
    fn validity(&self) -> Duration {
        Duration::from_secs(60 * u64::from(self.config.certificate_validity_minutes.max(1)))
    }

    /// Mints a short-lived client certificate for `mapping`'s subject,
    /// issued by the connector CA, valid for the configured minutes
    /// (`PP-5`): `(certificate PEM, key PEM)`. No caching here.
    pub fn mint_certificate(&self, mapping: &Mapping) -> Result<(String, String), String> {
        let validity = self.validity();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        let mut dn = DistinguishedName::new();
        for (attr, value) in mapping.attributes.iter().rev() {
            let (t, v) = match attr.as_str() {
                "CN" => (DnType::CommonName, DnValue::Utf8String(value.clone())),
                "O" => (DnType::OrganizationName, DnValue::Utf8String(value.clone())),
                "OU" => (DnType::OrganizationalUnitName, DnValue::Utf8String(value.clone())),
                "L" => (DnType::LocalityName, DnValue::Utf8String(value.clone())),
                "ST" => (DnType::StateOrProvinceName, DnValue::Utf8String(value.clone())),
                "C" => (
                    DnType::CountryName,
                    DnValue::PrintableString(
                        value.clone().try_into().map_err(|_| format!("C={value:?} is not a printable string"))?,
                    ),
                ),
                "EMAIL" => (
                    DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                    DnValue::Ia5String(
                        value.clone().try_into().map_err(|_| format!("EMAIL={value:?} is not IA5 (ASCII)"))?,
                    ),
                ),
                other => return Err(format!("unsupported DN attribute {other}")),
            };
            dn.push(t, v);
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(30);
        params.not_after = now + time::Duration::try_from(validity).map_err(|e| e.to_string())?;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&rand_serial()));
        let cert = self.pki.connector_ca().issue(&params, &key).map_err(|e| e.to_string())?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The `SSL_CLIENT_CERT` value for `mapping`, minted on first use and
    /// reused until shortly before it expires (`PP-5`).
    fn issued(&self, mapping: &Mapping) -> Result<Arc<Issued>, String> {
        let key = format!("{}\u{0}{}", mapping.user_type.as_str(), mapping.subject);
        if let Some(i) = self.certs.lock().expect("certs lock").get(&key) {
            if Instant::now() < i.renew_at {
                return Ok(i.clone());
            }
        }
        let validity = self.validity();
        let (cert_pem, _key_pem) = self.mint_certificate(mapping)?;
        let der = pem::parse(&cert_pem).map_err(|e| e.to_string())?;
        // Renew at 80 % of the lifetime; a 0-minute setting never reuses.
        let renew_at = if self.config.certificate_validity_minutes == 0 {
            Instant::now()
        } else {
            Instant::now() + validity.mul_f64(0.8)
        };
        let issued = Arc::new(Issued { renew_at, header: backend_logon::encode_certificate(der.contents()) });
        self.minted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut certs = self.certs.lock().expect("certs lock");
        // Bounded: expired entries go first, then (past the cap) everything.
        if certs.len() >= MAX_CACHED_CERTIFICATES {
            let now = Instant::now();
            certs.retain(|_, i| i.renew_at > now);
            if certs.len() >= MAX_CACHED_CERTIFICATES {
                certs.clear();
            }
        }
        certs.insert(key, issued.clone());
        Ok(issued)
    }

    /// Sends the request to the internal system of `mapping` with `identity`:
    /// HTTPS handshakes with the system certificate, the identity in
    /// `SSL_CLIENT_CERT` as the mapping's authentication mode says (`SC-1`,
    /// `SC-2`). Returns the answer and what was sent, for the journal.
    pub async fn forward(
        &self,
        mapping: &MappingConfig,
        identity: &Identity,
        method: reqwest::Method,
        path_and_query: &str,
        headers: Vec<(String, String)>,
        body: bytes::Bytes,
    ) -> Result<(reqwest::Response, String), Refusal> {
        let internal = url::Url::parse(&mapping.internal)
            .map_err(|e| Refusal::new(502, format!("Cloud Connector: bad internal URL {}: {e}", mapping.internal)))?;
        let host = internal.host_str().unwrap_or_default().to_string();
        let scheme = internal.scheme().to_string();
        // The backend listeners are the on-premise network; any other
        // internal `.test` host (an on-premise OAuth server, say) is a mock
        // the gateway routes.
        let (client, url) = match self.network.hosts.get(&(host.clone(), scheme.clone())) {
            Some(addr) => (&self.backend_client, format!("{scheme}://{host}:{}{path_and_query}", addr.port())),
            None if host.ends_with(".test") => (self.routed_client()?, format!("{scheme}://{host}{path_and_query}")),
            None => {
                return Err(Refusal::new(
                    502,
                    format!("Cloud Connector: internal host {scheme}://{host} is not reachable"),
                ))
            }
        };
        let propagated = match identity {
            Identity::Propagated(m) if mapping.principal.propagates() => Some(m),
            _ => None,
        };
        let mut sent = Vec::new();
        if let (Identity::Propagated(m), None) = (identity, propagated) {
            sent.push(format!("{} not propagated: the mapping's mode is {}", m.subject, mapping.principal.as_str()));
        }
        let ssl_client_cert = match backend_logon::ssl_client_cert(mapping.principal, propagated.is_some()) {
            SslClientCert::Absent => None,
            SslClientCert::Empty => {
                sent.push("empty SSL_CLIENT_CERT (the system certificate must not log on)".into());
                Some(String::new())
            }
            SslClientCert::ShortLived => {
                let m = propagated.expect("ShortLived only with an identity");
                let issued = self
                    .issued(m)
                    .map_err(|e| Refusal::new(500, format!("Cloud Connector: cannot mint certificate: {e}")))?;
                sent.push(format!("SSL_CLIENT_CERT {} ({})", m.subject, m.user_type.as_str()));
                Some(issued.header.clone())
            }
        };
        if scheme == "https" {
            match &self.system {
                Some(s) => sent.push(format!("TLS with system certificate {}", s.subject)),
                None => sent.push("TLS without client certificate (no system certificate)".into()),
            }
        }
        let mut rb = client.request(method, &url).body(body);
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(v) = ssl_client_cert {
            rb = rb.header("SSL_CLIENT_CERT", v);
        }
        let resp =
            rb.send().await.map_err(|e| Refusal::new(502, format!("Cloud Connector: backend {url} failed: {e}")))?;
        Ok((resp, sent.join("; ")))
    }
}

/// Certificates kept for reuse at most (one per subject); beyond it the
/// cache starts over, so memory stays bounded whatever the number of users.
const MAX_CACHED_CERTIFICATES: usize = 16_384;

/// A TEST ONLY system certificate for the connector of `location_id`,
/// issued by the test root CA (the "company CA" backends trust).
fn system_certificate(pki: &TestPki, location_id: &str) -> Result<SystemCertificate, String> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    let location = if location_id.is_empty() { "default location" } else { location_id };
    let mut dn = DistinguishedName::new();
    // X.509 order (least specific first); RFC 4514 reads it reversed.
    dn.push(DnType::OrganizationName, "idprop TEST ONLY");
    dn.push(DnType::OrganizationalUnitName, location);
    dn.push(DnType::CommonName, "SCC");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&rand_serial()));
    let cert = pki.root_ca().issue(&params, &key).map_err(|e| e.to_string())?;
    let info = crate::http::cert_info(cert.der()).ok_or("cannot read the system certificate back")?;
    Ok(SystemCertificate {
        subject: info.subject,
        issuer: info.issuer,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn rand_serial() -> [u8; 16] {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[0] &= 0x7f;
    b
}
