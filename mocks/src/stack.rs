//! [`Stack`]: the whole mock landscape, started in-process in milliseconds.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::backend::{Backend, BackendConfig, INTERNAL_HOST};
use crate::connectivity::ConnectivityProxy;
use crate::connector::{CloudConnector, ConnectorConfig, InternalNetwork, TrustedIdp};
use crate::destination::{default_destinations, DestinationEntry, DestinationService};
use crate::gateway::{admin_router, Gateway, Route};
use crate::http::{bind, journalled, spawn_server, ServerHandle};
use crate::journal::Component;
use crate::journal::Journal;
use crate::pki::{PkiError, TestPki};
use crate::retrieval::{Certificate, Network, OnPremiseRoute, TokenRetriever};
use crate::serve::{Lifecycle, Limits, Shutdown};
use crate::token_server::{TokenServer, TokenServerBehaviour};
use crate::uaa::{
    stable_uuid, MockUaa, OAuthClient, UaaConfig, User, APP_CLIENT, CONNECTIVITY_CLIENT, DESTINATION_CLIENT,
};

/// The internal host of the default on-premise OAuth server.
pub const ON_PREMISE_OAUTH_HOST: &str = "oauth.internal.test";

/// An Internet API (echoing like the backend) behind the gateway.
pub const INTERNET_API_HOST: &str = "api.example.test";

/// Host of the Destination service behind the gateway.
pub const DESTINATION_HOST: &str = "destination-configuration.cfapps.eu10.idp.test";

/// Errors starting a stack.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("test PKI: {0}")]
    Pki(#[from] PkiError),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind { what: String, addr: SocketAddr, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("configuration: {0}")]
    Config(String),
    /// A value of the configuration that cannot be served; `path` names it
    /// (`uaa.tenants[1].subdomain`).
    #[error("configuration: {path}: {message}")]
    Invalid { path: String, message: String },
}

/// The longest token lifetime a configuration may ask for (ten years): no
/// `exp` may overflow.
pub const MAX_TOKEN_VALIDITY: u64 = 10 * 365 * 24 * 3600;

impl StackConfig {
    /// What the types cannot say: no duplicate tenants, clients, users or
    /// destinations (the second would be unreachable), names present, a
    /// UAA domain, numbers in range (none may wrap). Each error names the
    /// path of the offending value (`uaa.tenants[1].subdomain`), which
    /// [`crate::yaml::locate`] turns into a line and column of the file.
    pub fn validate(&self) -> Result<(), StackError> {
        let bad = |path: String, message: String| Err(StackError::Invalid { path, message });
        let u = &self.uaa;
        if u.domain.trim().is_empty() {
            return bad("uaa.domain".into(), "is empty".into());
        }
        if !(1..=MAX_TOKEN_VALIDITY).contains(&u.token_validity) {
            return bad(
                "uaa.token_validity".into(),
                format!("{} is not between 1 and {MAX_TOKEN_VALIDITY} seconds", u.token_validity),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in u.tenants.iter().enumerate() {
            if t.subdomain.trim().is_empty() || !seen.insert(t.subdomain.to_ascii_lowercase()) {
                return bad(
                    format!("uaa.tenants[{i}].subdomain"),
                    format!("{:?} is empty or given twice", t.subdomain),
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in u.clients.iter().enumerate() {
            if !seen.insert(c.client_id.as_str()) {
                return bad(format!("uaa.clients[{i}].client_id"), format!("{:?} is given twice", c.client_id));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, x) in u.users.iter().enumerate() {
            if !seen.insert(x.user_name.as_str()) {
                return bad(format!("uaa.users[{i}].user_name"), format!("{:?} is given twice", x.user_name));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().flatten().enumerate() {
            let name = d.properties.name();
            if name.is_empty() {
                return bad(format!("destinations[{i}]"), "has no Name".into());
            }
            if !seen.insert((d.tenant.clone(), d.level, name.to_string())) {
                return bad(
                    format!("destinations[{i}].properties.Name"),
                    format!("{name:?} is given twice at the same tenant and level"),
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.connectors.iter().enumerate() {
            if !seen.insert(c.location_id.as_str()) {
                return bad(format!("connectors[{i}].location_id"), format!("{:?} is given twice", c.location_id));
            }
            if c.certificate_validity_minutes > crate::connector::MAX_VALIDITY_MINUTES {
                return bad(
                    format!("connectors[{i}].certificate_validity_minutes"),
                    format!(
                        "{} is over the maximum of {} (30 days)",
                        c.certificate_validity_minutes,
                        crate::connector::MAX_VALIDITY_MINUTES
                    ),
                );
            }
            if c.expiration_tolerance_hours > crate::connector::MAX_TOLERANCE_HOURS {
                return bad(
                    format!("connectors[{i}].expiration_tolerance_hours"),
                    format!(
                        "{} is over the maximum of {} (14 days)",
                        c.expiration_tolerance_hours,
                        crate::connector::MAX_TOLERANCE_HOURS
                    ),
                );
            }
        }
        if self.journal_bytes < 64 * 1024 {
            return bad("journal_bytes".into(), format!("{} is below the minimum of 65536", self.journal_bytes));
        }
        self.limits.validate().map_err(|m| {
            let (path, message) = m.split_once(": ").unwrap_or(("limits", m.as_str()));
            StackError::Invalid { path: path.to_string(), message: message.to_string() }
        })
    }
}

/// Fixed ports (0 = any free port). `idprop up` uses fixed defaults; tests
/// use ephemeral ones so stacks never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ports {
    pub gateway: u16,
    pub uaa: u16,
    pub destination: u16,
    pub connectivity: u16,
    pub backend_http: u16,
    pub backend_https: u16,
}

impl Ports {
    /// `base` for the gateway, the next ports for the other components.
    /// `base` and the five ports after it; `None` when they do not fit
    /// below 65536.
    pub fn checked_consecutive(base: u16) -> Option<Self> {
        base.checked_add(5).map(|_| Self::consecutive(base))
    }

    /// `base` and the five ports after it (see [`Ports::checked_consecutive`]).
    pub fn consecutive(base: u16) -> Self {
        Self {
            gateway: base,
            uaa: base + 1,
            destination: base + 2,
            connectivity: base + 3,
            backend_http: base + 4,
            backend_https: base + 5,
        }
    }
}

/// A token server in a configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenServerConfig {
    pub host: String,
    #[serde(default)]
    pub behaviour: TokenServerBehaviour,
}

/// Everything a stack is made of; also the shape of `idprop up --config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StackConfig {
    /// Address every listener binds to; loopback unless said otherwise.
    pub bind: IpAddr,
    pub ports: Ports,
    pub uaa: UaaConfig,
    pub token_servers: Vec<TokenServerConfig>,
    /// Destinations of the Destination service; one of every
    /// authentication type when absent.
    pub destinations: Option<Vec<DestinationEntry>>,
    /// Key stores uploaded to the Destination service.
    pub certificates: Vec<Certificate>,
    /// Cloud Connectors, one per location id.
    pub connectors: Vec<ConnectorConfig>,
    pub backend: BackendConfig,
    /// Journal entries kept (oldest dropped first); everything when absent.
    pub journal_capacity: Option<usize>,
    /// Bytes the journal may hold (oldest dropped first; each entry's
    /// values are truncated with a marker beyond a per-entry cap).
    pub journal_bytes: usize,
    /// Timeouts and connection caps of every listener.
    pub limits: Limits,
    /// Where the CA bundle is written (a fresh temporary folder when absent).
    pub state_dir: Option<PathBuf>,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: Ports::default(),
            uaa: UaaConfig::default(),
            token_servers: vec![
                TokenServerConfig { host: "authserver.example.test".into(), behaviour: Default::default() },
                // An OAuth server inside the on-premise network, reached
                // through the Cloud Connector (`oauth.onprem.test` mapping).
                TokenServerConfig { host: ON_PREMISE_OAUTH_HOST.into(), behaviour: Default::default() },
            ],
            destinations: None,
            certificates: Vec::new(),
            connectors: vec![ConnectorConfig::default()],
            backend: BackendConfig::default(),
            journal_capacity: None,
            journal_bytes: crate::journal::DEFAULT_MAX_BYTES,
            limits: Limits::default(),
            state_dir: None,
        }
    }
}

/// Builds a [`Stack`] with non-default configuration.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct StackBuilder {
    config: StackConfig,
}

impl StackBuilder {
    pub fn config(mut self, config: StackConfig) -> Self {
        self.config = config;
        self
    }
    pub fn uaa_domain(mut self, domain: &str) -> Self {
        self.config.uaa.domain = domain.into();
        self
    }
    pub fn tenant(mut self, subdomain: &str) -> Self {
        self.config.uaa.tenants.push(crate::uaa::Tenant::new(subdomain));
        self
    }
    pub fn client(mut self, client: OAuthClient) -> Self {
        self.config.uaa.clients.retain(|c| c.client_id != client.client_id);
        self.config.uaa.clients.push(client);
        self
    }
    pub fn user(mut self, user: User) -> Self {
        self.config.uaa.users.retain(|u| u.user_name != user.user_name);
        self.config.uaa.users.push(user);
        self
    }
    pub fn token_server(mut self, host: &str, behaviour: TokenServerBehaviour) -> Self {
        self.config.token_servers.retain(|t| t.host != host);
        self.config.token_servers.push(TokenServerConfig { host: host.into(), behaviour });
        self
    }
    /// Adds a destination (the default set is replaced by the first one).
    pub fn destination(mut self, entry: DestinationEntry) -> Self {
        self.config.destinations.get_or_insert_with(Vec::new).push(entry);
        self
    }
    /// Replaces the connector of `config.location_id` (or adds one).
    pub fn connector(mut self, config: ConnectorConfig) -> Self {
        self.config.connectors.retain(|c| c.location_id != config.location_id);
        self.config.connectors.push(config);
        self
    }
    pub fn backend(mut self, config: BackendConfig) -> Self {
        self.config.backend = config;
        self
    }
    pub fn certificate(mut self, c: Certificate) -> Self {
        self.config.certificates.push(c);
        self
    }
    pub fn ports(mut self, ports: Ports) -> Self {
        self.config.ports = ports;
        self
    }
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.config.bind = ip;
        self
    }
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.state_dir = Some(dir.into());
        self
    }
    pub async fn start(self) -> Result<Stack, StackError> {
        Stack::start_with(self.config).await
    }
}

struct Inner {
    config: StackConfig,
    pki: Arc<TestPki>,
    journal: Journal,
    uaa: MockUaa,
    gateway: Gateway,
    gateway_addr: SocketAddr,
    destination: DestinationService,
    connectivity: ConnectivityProxy,
    backend: Backend,
    components: RwLock<BTreeMap<String, String>>,
    token_servers: Mutex<HashMap<String, (TokenServer, ServerHandle)>>,
    ca_file: PathBuf,
    _temp: Option<tempfile::TempDir>,
    servers: Mutex<Vec<ServerHandle>>,
    info: Arc<RwLock<Value>>,
    life: Lifecycle,
    shutdown: Shutdown,
    expectations: Arc<Mutex<Vec<crate::expect::Expectation>>>,
}

impl Drop for Inner {
    /// Expectations are verified when the last clone of the stack goes: an
    /// unmet one fails the test, with the closest request and what differed
    /// (unless the test is already failing).
    fn drop(&mut self) {
        let expectations = std::mem::take(&mut *self.expectations.lock().unwrap_or_else(|p| p.into_inner()));
        if expectations.is_empty() || std::thread::panicking() {
            return;
        }
        if let Err(unmet) = crate::expect::verify(&expectations, &self.journal.entries()) {
            panic!("idprop: expectations not met when the stack was dropped:\n{unmet}");
        }
    }
}

/// The mock identity stack, running in this process on loopback.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use idprop_mocks::Stack;
///
/// let stack = Stack::start().await?;
/// // An HTTP client that reaches the virtual `.test` hosts through the
/// // gateway and trusts the test CA:
/// let client = stack.http_client();
/// let answer: serde_json::Value = client
///     .post(format!("{}/oauth/token", stack.uaa_url("mytenant")))
///     .basic_auth("sb-idprop-app!t1", Some("app-secret"))
///     .form(&[("grant_type", "client_credentials")])
///     .send()
///     .await?
///     .json()
///     .await?;
/// let token = answer["access_token"].as_str().unwrap();
/// assert!(stack.uaa().validate(token).is_ok());
/// // Everything the mocks saw is in the journal.
/// assert_eq!(stack.journal().of("uaa").len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Stack {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("gateway", &self.inner.gateway_addr).finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts the default stack on ephemeral loopback ports.
    pub async fn start() -> Result<Stack, StackError> {
        Self::start_with(StackConfig::default()).await
    }

    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }

    /// Starts a stack from a complete configuration.
    pub async fn start_with(config: StackConfig) -> Result<Stack, StackError> {
        config.validate()?;
        let pki = Arc::new(TestPki::load()?);
        let journal = Journal::with_limits(config.journal_capacity, Some(config.journal_bytes));
        // Seven listeners of our own, the token servers, and room to add some.
        let limits = config.limits.fitted(7 + config.token_servers.len() + 4);
        let (shutdown, life) = crate::serve::lifecycle(limits);
        let (temp, dir) = match &config.state_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| StackError::Write { path: d.clone(), source })?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("idprop-")
                    .tempdir()
                    .map_err(|source| StackError::Write { path: std::env::temp_dir(), source })?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let ca_file = dir.join("ca.pem");
        pki.write_ca_bundle(&ca_file).map_err(|source| StackError::Write { path: ca_file.clone(), source })?;
        let ca_file = std::fs::canonicalize(&ca_file).unwrap_or(ca_file);

        let listen = |port: u16| SocketAddr::new(config.bind, port);
        let bind_named = |what: &'static str, addr: SocketAddr| async move {
            bind(addr).await.map_err(|source| StackError::Bind { what: what.into(), addr, source })
        };

        let uaa = MockUaa::new(config.uaa.clone(), pki.clone());
        let uaa_router = journalled(uaa.router(), journal.clone(), Component::Uaa);

        let info = Arc::new(RwLock::new(Value::Null));
        let gateway = Gateway::new(
            pki.clone(),
            journal.clone(),
            admin_router(journal.clone(), info.clone(), uaa.token_keys()),
            life.clone(),
        );
        gateway.routes.add(&uaa.domain(), Route::new("uaa", uaa_router.clone()));

        let gw_listener = bind_named("gateway", listen(config.ports.gateway)).await?;
        let uaa_listener = bind_named("uaa", listen(config.ports.uaa)).await?;
        let dest_listener = bind_named("destination", listen(config.ports.destination)).await?;
        let conn_listener = bind_named("connectivity proxy", listen(config.ports.connectivity)).await?;
        let be_http_listener = bind_named("backend (http)", listen(config.ports.backend_http)).await?;
        let be_https_listener = bind_named("backend (https)", listen(config.ports.backend_https)).await?;
        let gateway_addr = gw_listener.local_addr().expect("bound");
        let mut internal = InternalNetwork::default();
        internal.hosts.insert((INTERNAL_HOST.into(), "http".into()), be_http_listener.local_addr().expect("bound"));
        internal.hosts.insert((INTERNAL_HOST.into(), "https".into()), be_https_listener.local_addr().expect("bound"));

        let proxy_uaa = uaa.clone();
        let retriever = TokenRetriever::new(Network {
            proxy: format!("http://{gateway_addr}"),
            ca_pem: pki.ca_bundle_pem(),
            no_proxy: String::new(),
            // The Destination service reaches OnPremise token services
            // through the Connectivity proxy, as a BTP service would.
            on_premise: Some(OnPremiseRoute {
                proxy: format!("http://{}", conn_listener.local_addr().expect("bound")),
                proxy_token: Arc::new(move |tenant: &str| proxy_uaa.client_token(tenant, CONNECTIVITY_CLIENT.0).sign()),
            }),
        });
        let destination =
            DestinationService::new(uaa.clone(), retriever, DESTINATION_CLIENT.0, &stable_uuid("destination-instance"));
        let entries = config.destinations.clone().unwrap_or_else(|| default_destinations(&uaa.domain()));
        for e in entries {
            destination.add(e);
        }
        for c in &config.certificates {
            destination.add_certificate(c.clone());
        }
        let dest_router = journalled(destination.router(), journal.clone(), Component::Destination);

        let trusted: Vec<TrustedIdp> = uaa
            .config()
            .tenants
            .iter()
            .map(|t| TrustedIdp {
                issuer: uaa.factory().issuer(&t.subdomain),
                jwks_uri: uaa.factory().jku(&t.subdomain),
            })
            .collect();
        let mut connectors = Vec::new();
        for c in &config.connectors {
            connectors.push(
                CloudConnector::new(
                    c.clone(),
                    pki.clone(),
                    internal.clone(),
                    trusted.clone(),
                    &format!("http://{gateway_addr}"),
                )
                .map_err(|e| StackError::Config(format!("cloud connector {:?}: {e}", c.location_id)))?,
            );
        }
        let connectivity = ConnectivityProxy::new(uaa.clone(), CONNECTIVITY_CLIENT.0, connectors);
        let conn_router = journalled(connectivity.router(), journal.clone(), Component::ConnectivityProxy);
        let system_certs = connectivity
            .connectors()
            .iter()
            .filter_map(|c| c.system_certificate().map(|s| s.trusted_proxy()))
            .collect();
        let backend = Backend::new(config.backend.clone(), system_certs);
        let be_router = journalled(backend.router(), journal.clone(), Component::Backend);
        // An Internet API for destinations with ProxyType Internet.
        let api = Backend::new(BackendConfig { mtls_paths: vec![], ..Default::default() }, vec![]);
        gateway
            .routes
            .add(INTERNET_API_HOST, Route::new("api", journalled(api.router(), journal.clone(), Component::Api)));
        gateway.routes.add(DESTINATION_HOST, Route::new("destination", dest_router.clone()));
        let mut servers = Vec::new();
        let mut components = BTreeMap::new();
        let uaa_handle = spawn_server(uaa_listener, uaa_router, None, life.clone());
        components.insert("uaa".to_string(), format!("http://{}", uaa_handle.addr));
        servers.push(uaa_handle);
        let dest_handle = spawn_server(dest_listener, dest_router, None, life.clone());
        components.insert("destination".to_string(), format!("http://{}", dest_handle.addr));
        servers.push(dest_handle);
        let h = ConnectivityProxy::spawn(conn_listener, conn_router, life.clone());
        components.insert("connectivity-proxy".to_string(), format!("http://{}", h.addr));
        servers.push(h);
        let h = spawn_server(be_http_listener, be_router.clone(), None, life.clone());
        components.insert("backend-http".to_string(), format!("http://{}", h.addr));
        servers.push(h);
        // Client certificates of the root CA (system certificates, key
        // stores) and of the connector CA are accepted in the handshake;
        // who may name a user is decided per request (`SC-4`).
        let be_tls = pki.server_config(INTERNAL_HOST)?;
        let h = spawn_server(be_https_listener, be_router, Some(be_tls), life.clone());
        components.insert("backend-https".to_string(), format!("https://{}", h.addr));
        servers.push(h);
        servers.push(gateway.clone().spawn(gw_listener));
        components.insert("gateway".to_string(), format!("http://{gateway_addr}"));

        let stack = Stack {
            inner: Arc::new(Inner {
                config: config.clone(),
                pki,
                journal,
                uaa,
                gateway,
                gateway_addr,
                destination,
                connectivity,
                backend,
                components: RwLock::new(components),
                token_servers: Mutex::new(HashMap::new()),
                ca_file,
                _temp: temp,
                servers: Mutex::new(servers),
                info,
                life,
                shutdown,
                expectations: Default::default(),
            }),
        };
        for ts in &config.token_servers {
            stack.add_token_server(&ts.host, ts.behaviour.clone()).await?;
        }
        *stack.inner.info.write().expect("info lock") = stack.ready_info();
        Ok(stack)
    }

    /// Expects requests like `matcher` in the journal, at least once unless
    /// the returned builder says otherwise; verified by [`Stack::verify`] and
    /// when the last clone of the stack is dropped.
    pub fn expect(&self, matcher: crate::expect::RequestMatcher) -> crate::expect::ExpectationBuilder {
        let mut all = self.inner.expectations.lock().expect("expectations lock");
        all.push(crate::expect::Expectation { matcher, times: crate::expect::Times::AtLeast(1), name: None });
        crate::expect::ExpectationBuilder { slot: self.inner.expectations.clone(), index: all.len() - 1 }
    }

    /// Checks every expectation now; the error names each unmet one with
    /// the journal entry that came closest. Checked expectations stay
    /// registered (and are checked again on drop).
    pub fn verify(&self) -> Result<(), crate::expect::Unmet> {
        let all = self.inner.expectations.lock().expect("expectations lock").clone();
        crate::expect::verify(&all, &self.journal().entries())
    }

    /// Forgets every expectation (a reset between phases of a test).
    pub fn reset_expectations(&self) {
        self.inner.expectations.lock().expect("expectations lock").clear();
    }

    /// Stops the stack gracefully: every listener closes, requests in
    /// flight finish (at most `limits.grace_secs`), idle connections close.
    /// Returns how many listeners had to be cut off at the deadline. The
    /// stack answers nothing afterwards; dropping it without this stops it
    /// at once.
    pub async fn shutdown(&self) -> usize {
        let mut servers = std::mem::take(&mut *self.inner.servers.lock().expect("servers lock"));
        let token_servers: Vec<ServerHandle> =
            std::mem::take(&mut *self.inner.token_servers.lock().expect("token servers lock"))
                .into_values()
                .map(|(_, h)| h)
                .collect();
        servers.extend(token_servers);
        self.inner.shutdown.drain(servers, self.inner.life.limits.grace()).await
    }

    /// The limits every listener applies (after fitting the connection cap
    /// to the process's descriptor limit).
    pub fn limits(&self) -> Limits {
        self.inner.life.limits
    }

    /// `http://127.0.0.1:<port>`: the proxy every implementation must use.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.inner.gateway_addr)
    }

    pub fn gateway_addr(&self) -> SocketAddr {
        self.inner.gateway_addr
    }

    /// Absolute path of the PEM bundle with the test CA.
    pub fn ca_file(&self) -> &Path {
        &self.inner.ca_file
    }

    pub fn ca_pem(&self) -> String {
        self.inner.pki.ca_bundle_pem()
    }

    pub fn pki(&self) -> &Arc<TestPki> {
        &self.inner.pki
    }

    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    pub fn uaa(&self) -> &MockUaa {
        &self.inner.uaa
    }

    pub fn config(&self) -> &StackConfig {
        &self.inner.config
    }

    /// The mock Destination service (add destinations, reset its cache).
    pub fn destinations(&self) -> &DestinationService {
        &self.inner.destination
    }

    /// The Connectivity proxy and its Cloud Connectors.
    pub fn connectivity(&self) -> &ConnectivityProxy {
        &self.inner.connectivity
    }

    /// `http://127.0.0.1:<port>`: the `onpremise_proxy_host`/`_http_port`.
    pub fn connectivity_proxy_url(&self) -> String {
        self.components().get("connectivity-proxy").cloned().unwrap_or_default()
    }

    /// The on-premise backend (canned responses).
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// `https://destination-configuration…idp.test`, through the gateway.
    pub fn destination_url(&self) -> String {
        format!("https://{DESTINATION_HOST}")
    }

    /// `https://<tenant>.<uaa domain>`, through the gateway.
    pub fn uaa_url(&self, tenant: &str) -> String {
        self.inner.uaa.url(tenant)
    }

    /// Base URLs of every component on loopback (no gateway needed).
    pub fn components(&self) -> BTreeMap<String, String> {
        self.inner.components.read().expect("components lock").clone()
    }

    /// Adds a token server for `host` (and its subdomains), or rescripts the
    /// existing one. Served through the gateway and on its own port.
    pub async fn add_token_server(
        &self,
        host: &str,
        behaviour: TokenServerBehaviour,
    ) -> Result<TokenServer, StackError> {
        if let Some(ts) = self.token_server(host) {
            ts.set_behaviour(behaviour);
            return Ok(ts);
        }
        let ts = TokenServer::new(host, behaviour);
        let router = journalled(ts.router(), self.inner.journal.clone(), Component::TokenServer);
        let mut route = Route::new("token-server", router.clone());
        route.connect_delay_ms = ts.connect_delay_handle();
        self.inner.gateway.routes.add(host, route);
        let addr = SocketAddr::new(self.inner.config.bind, 0);
        let listener = bind(addr).await.map_err(|source| StackError::Bind {
            what: format!("token server {host}"),
            addr,
            source,
        })?;
        let handle = spawn_server(listener, router, None, self.inner.life.clone());
        self.inner
            .components
            .write()
            .expect("components lock")
            .insert(format!("token-server:{host}"), format!("http://{}", handle.addr));
        self.inner
            .token_servers
            .lock()
            .expect("token servers lock")
            .insert(host.to_ascii_lowercase(), (ts.clone(), handle));
        Ok(ts)
    }

    /// Serves `host` (and its subdomains) through the gateway — HTTPS with a
    /// certificate of the test CA, journalled as `component` like every mock —
    /// by forwarding each request to `upstream` (`http://127.0.0.1:<port>`):
    /// a `wiremock::MockServer`, say, so its matchers and responses serve a
    /// virtual `https://….test` host an implementation reaches like any other.
    pub fn route_to(&self, host: &str, upstream: &str, component: &str) -> Result<(), StackError> {
        let forward = crate::upstream::Upstream::new(upstream)
            .map_err(|e| StackError::Config(format!("route_to {host}: {e}")))?;
        let router = journalled(forward.router(), self.inner.journal.clone(), Component::from(component));
        self.inner.gateway.routes.add(host, Route::new(component, router));
        Ok(())
    }

    /// The token server of `host`, if there is one.
    pub fn token_server(&self, host: &str) -> Option<TokenServer> {
        self.inner
            .token_servers
            .lock()
            .expect("token servers lock")
            .get(&host.to_ascii_lowercase())
            .map(|(t, _)| t.clone())
    }

    /// A `reqwest` client that goes through the gateway and trusts the test CA.
    pub fn http_client(&self) -> reqwest::Client {
        self.http_client_builder().build().expect("client from valid parts")
    }

    /// The builder of [`Stack::http_client`], to add timeouts or an identity.
    pub fn http_client_builder(&self) -> reqwest::ClientBuilder {
        let ca = reqwest::Certificate::from_pem(self.ca_pem().as_bytes()).expect("fixture CA is valid PEM");
        reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(self.gateway_url()).expect("gateway URL is valid"))
            .tls_certs_only([ca])
    }

    /// The secret the UAA's configuration gives `client_id` (the one source
    /// of truth for bindings, `env.sh` and `default-env.json`); the
    /// built-in default when the configuration dropped the client.
    fn secret_of(&self, (client_id, default): (&str, &str)) -> String {
        self.inner
            .uaa
            .config()
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
            .map(|c| c.client_secret.clone())
            .unwrap_or_else(|| default.to_string())
    }

    /// `VCAP_SERVICES` of an application bound to the mock services.
    pub fn vcap_services(&self) -> Value {
        let domain = self.inner.uaa.domain();
        let tenant = self.inner.config.uaa.tenants.first().map(|t| t.subdomain.clone()).unwrap_or_default();
        let uaa_url = format!("https://{tenant}.{domain}");
        let zid = self.inner.uaa.tenant(&tenant).map(|t| t.zid).unwrap_or_default();
        json!({
            "xsuaa": [{
                "label": "xsuaa", "plan": "application", "name": "idprop-xsuaa", "tags": ["xsuaa"],
                "instance_name": "idprop-xsuaa", "binding_name": null, "provider": null,
                "credentials": {
                    "clientid": APP_CLIENT.0, "clientsecret": self.secret_of(APP_CLIENT),
                    "url": uaa_url, "uaadomain": domain, "identityzone": tenant,
                    "identityzoneid": zid, "tenantid": zid, "tenantmode": "shared",
                    "xsappname": "idprop-app!t1", "verificationkey": self.inner.pki.signing_keys()[0].public_pem(),
                    "credential-type": "binding-secret",
                }
            }],
            "destination": [{
                "label": "destination", "plan": "lite", "name": "idprop-destination", "tags": ["destination", "conn", "connsvc"],
                "instance_name": "idprop-destination", "binding_name": null, "provider": null,
                "credentials": {
                    "clientid": DESTINATION_CLIENT.0, "clientsecret": self.secret_of(DESTINATION_CLIENT),
                    "url": uaa_url, "uaadomain": domain, "identityzone": tenant, "tenantid": zid,
                    "uri": format!("https://{DESTINATION_HOST}"),
                    "xsappname": "clone-destination!b1", "instanceid": stable_uuid("destination-instance"),
                    "credential-type": "binding-secret",
                }
            }],
            "connectivity": [{
                "label": "connectivity", "plan": "lite", "name": "idprop-connectivity", "tags": ["connectivity", "conn", "connsvc"],
                "instance_name": "idprop-connectivity", "binding_name": null, "provider": null,
                "credentials": {
                    "clientid": CONNECTIVITY_CLIENT.0, "clientsecret": self.secret_of(CONNECTIVITY_CLIENT),
                    "url": uaa_url, "token_service_url": uaa_url, "uaadomain": domain,
                    "identityzone": tenant, "tenantid": zid,
                    "onpremise_proxy_host": self.connectivity_proxy_host(),
                    "onpremise_proxy_http_port": self.connectivity_proxy_port().to_string(),
                    "onpremise_proxy_port": self.connectivity_proxy_port().to_string(),
                    "onpremise_socks5_proxy_port": "0",
                    "xsappname": "clone-connectivity!b2", "instance_guid": stable_uuid("connectivity-instance"),
                    "credential-type": "binding-secret",
                }
            }],
        })
    }

    fn connectivity_proxy_host(&self) -> String {
        self.inner.config.bind.to_string()
    }

    fn connectivity_proxy_port(&self) -> u16 {
        self.components()
            .get("connectivity-proxy")
            .and_then(|u| u.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// What `idprop up --ready-file` writes.
    pub fn ready_info(&self) -> Value {
        json!({
            "gateway": self.gateway_url(),
            "ca_file": self.ca_file(),
            "uaa_domain": self.inner.uaa.domain(),
            "tenants": self.inner.uaa.config().tenants.iter().map(|t| json!({"subdomain": t.subdomain, "zid": t.zid, "uaa": self.uaa_url(&t.subdomain)})).collect::<Vec<_>>(),
            "clients": self.inner.uaa.config().clients.iter().map(|c| json!({"client_id": c.client_id, "client_secret": c.client_secret})).collect::<Vec<_>>(),
            "users": self.inner.uaa.config().users.iter().map(|u| json!({"user_name": u.user_name, "password": u.password})).collect::<Vec<_>>(),
            "token_servers": self.inner.token_servers.lock().expect("token servers lock").values().map(|(t, _)| t.url()).collect::<Vec<_>>(),
            "components": self.components(),
            "destinations": self.inner.destination.destinations().iter().map(|e| (e.properties.name().to_string(), json!(e.properties.get("Authentication").unwrap_or("NoAuthentication")))).collect::<serde_json::Map<_, _>>(),
            "vcap_services": self.vcap_services(),
            "cloud_connector": {"locations": self.inner.connectivity.connectors().iter().map(|c| c.summary()).collect::<Vec<_>>()},
        })
    }
}
