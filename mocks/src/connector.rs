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
use crate::rules::principal_mapping::{self, Mapping};
use crate::rules::subject::{SubjectRule, DEFAULT_PATTERN};
use crate::rules::token_validation::{self, Rejection, TrustedIssuer};

/// Largest certificate validity the connector accepts (30 days).
pub const MAX_VALIDITY_MINUTES: u32 = 43_200;

/// How the connector authenticates the user at the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalType {
    /// Short-lived X.509 certificate (principal propagation).
    #[default]
    X509,
    /// None: the request goes on as the application sent it.
    None,
}

/// One access-control entry: a virtual host and port on the cloud side,
/// the internal system behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// `http://erp.onprem.test:44300`.
    #[serde(rename = "virtual")]
    pub virtual_url: String,
    /// `https://erp.internal.test` (the stack resolves internal hosts).
    pub internal: String,
    #[serde(default)]
    pub principal: PrincipalType,
    /// Allowed path prefixes; anything else is refused.
    #[serde(default = "root_path")]
    pub paths: Vec<String>,
}

fn root_path() -> Vec<String> {
    vec!["/".into()]
}

/// An identity provider the connector trusts (`TV-1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedIdp {
    pub issuer: String,
    pub jwks_uri: String,
}

/// Configuration of one Cloud Connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
                    principal: PrincipalType::X509,
                    paths: root_path(),
                },
                MappingConfig {
                    virtual_url: "http://protected-url.example.test:80".into(),
                    internal: format!("http://{}", crate::backend::INTERNAL_HOST),
                    principal: PrincipalType::None,
                    paths: root_path(),
                },
            ],
            trusted_idps: None,
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

/// A certificate minted for one subject, with the client that presents it.
struct Issued {
    renew_at: Instant,
    client: reqwest::Client,
    cert_pem: String,
}

/// What the connector will do with a request, decided before anything is sent.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Principal propagation with a certificate for this mapping.
    Principal(Mapping),
    /// Technical user propagation: `Authorization: Bearer <token>` (`TP-1`).
    Technical(String),
    /// As the application sent it.
    AsIs,
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
    plain_client: reqwest::Client,
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
        let ca = reqwest::Certificate::from_pem(pki.ca_bundle_pem().as_bytes()).map_err(|e| e.to_string())?;
        let jwks_client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(gateway).map_err(|e| e.to_string())?)
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let idps = config.trusted_idps.clone().unwrap_or(trusted);
        let trust = idps.into_iter().map(|t| (t.issuer, (t.jwks_uri, None))).collect();
        let plain_client = Self::backend_client(&pki, &network, None)?;
        Ok(Self {
            config,
            pki,
            network,
            jwks_client,
            trust: RwLock::new(trust),
            certs: Mutex::new(HashMap::new()),
            plain_client,
            minted: Default::default(),
        })
    }

    pub fn config(&self) -> &ConnectorConfig {
        &self.config
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
            .pool_max_idle_per_host(if identity.is_some() { 0 } else { 64 })
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

    /// Validates a user token against the trusted identity providers,
    /// fetching their keys on first use and again on an unknown `kid`.
    pub async fn validate(&self, token: &str, now: i64) -> Result<token_validation::ValidToken, Rejection> {
        let claims_iss =
            crate::tokens::peek_claims(token).and_then(|c| c.get("iss").and_then(|i| i.as_str().map(str::to_string)));
        if let Some(iss) = &claims_iss {
            self.ensure_keys(iss, false).await;
        }
        match token_validation::validate(token, &self.trusted(), now) {
            Err(Rejection::UnknownKey(k)) => {
                if let Some(iss) = &claims_iss {
                    self.ensure_keys(iss, true).await;
                }
                token_validation::validate(token, &self.trusted(), now).map_err(|e| match e {
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
                Some((uri, Some(_))) if !refresh => return,
                Some((uri, _)) => uri.clone(),
                None => return,
            }
        };
        let Ok(resp) = self.jwks_client.get(&uri).send().await else { return };
        let Ok(jwks) = resp.json::<JwkSet>().await else { return };
        if let Some(entry) = self.trust.write().expect("trust lock").get_mut(issuer) {
            entry.1 = Some(jwks);
        }
    }

    /// Maps the principal of a validated token (`PP-2`..`SP-5`).
    pub fn map(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Result<Mapping, String> {
        principal_mapping::map_claims(claims, &self.config.subject_patterns)
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

    /// The certificate and client for `mapping`, minted on first use and
    /// reused until shortly before it expires (`PP-5`).
    fn issued(&self, mapping: &Mapping) -> Result<Arc<Issued>, String> {
        if let Some(i) = self.certs.lock().expect("certs lock").get(&mapping.subject) {
            if Instant::now() < i.renew_at {
                return Ok(i.clone());
            }
        }
        let validity = self.validity();
        let (cert_pem, key_pem) = self.mint_certificate(mapping)?;
        let client = Self::backend_client(&self.pki, &self.network, Some(&format!("{cert_pem}{key_pem}")))?;
        // Renew at 80 % of the lifetime; a 0-minute setting never reuses.
        let renew_at = if self.config.certificate_validity_minutes == 0 {
            Instant::now()
        } else {
            Instant::now() + validity.mul_f64(0.8)
        };
        let issued = Arc::new(Issued { renew_at, client, cert_pem });
        self.minted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.certs.lock().expect("certs lock").insert(mapping.subject.clone(), issued.clone());
        Ok(issued)
    }

    /// Sends the request to the internal system of `mapping` with `identity`.
    pub async fn forward(
        &self,
        mapping: &MappingConfig,
        identity: &Identity,
        method: reqwest::Method,
        path_and_query: &str,
        headers: Vec<(String, String)>,
        body: bytes::Bytes,
    ) -> Result<reqwest::Response, Refusal> {
        let internal = url::Url::parse(&mapping.internal)
            .map_err(|e| Refusal::new(502, format!("Cloud Connector: bad internal URL {}: {e}", mapping.internal)))?;
        let host = internal.host_str().unwrap_or_default().to_string();
        let scheme = internal.scheme().to_string();
        let addr = self.network.hosts.get(&(host.clone(), scheme.clone())).ok_or_else(|| {
            Refusal::new(502, format!("Cloud Connector: internal host {scheme}://{host} is not reachable"))
        })?;
        let url = format!("{scheme}://{host}:{}{path_and_query}", addr.port());
        let (client, extra) = match identity {
            Identity::Principal(m) if mapping.principal == PrincipalType::X509 => {
                let issued = self
                    .issued(m)
                    .map_err(|e| Refusal::new(500, format!("Cloud Connector: cannot mint certificate: {e}")))?;
                let extra = if scheme == "http" {
                    // Plain HTTP to a reverse proxy: the certificate travels in a header (a4ee70f).
                    vec![("SSL_CLIENT_CERT".to_string(), issued.cert_pem.replace('\n', "\\n"))]
                } else {
                    vec![]
                };
                (issued.client.clone(), extra)
            }
            Identity::Technical(token) => {
                (self.plain_client.clone(), vec![("Authorization".into(), format!("Bearer {token}"))])
            }
            _ => (self.plain_client.clone(), vec![]),
        };
        let mut rb = client.request(method, &url).body(body);
        for (k, v) in headers.iter().chain(extra.iter()) {
            rb = rb.header(k.as_str(), v.as_str());
        }
        rb.send().await.map_err(|e| Refusal::new(502, format!("Cloud Connector: backend {url} failed: {e}")))
    }
}

fn rand_serial() -> [u8; 16] {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[0] &= 0x7f;
    b
}
