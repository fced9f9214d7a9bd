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

mod bindings;
mod builder;
mod config;

pub use builder::StackBuilder;
pub use config::{Ports, StackConfig, StackError, TokenServerConfig, MAX_TOKEN_VALIDITY};

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
    providers: Vec<crate::oidc::IdentityProvider>,
    /// X.509 client credentials minted so far, by client id (at most one per
    /// configured client): the ready file and `.idprop/clients/` agree.
    client_credentials: Mutex<HashMap<String, (String, String)>>,
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
        gateway.routes.add(&uaa.domain(), Route::new(uaa_router.clone()));

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
        for f in &config.fragments {
            destination.add_fragment(f.clone());
        }
        for c in &config.certificates {
            destination.add_certificate(c.clone());
        }
        let dest_router = journalled(destination.router(), journal.clone(), Component::Destination);

        let mut trusted: Vec<TrustedIdp> = uaa
            .config()
            .tenants
            .iter()
            .map(|t| TrustedIdp {
                issuer: uaa.factory().issuer(&t.subdomain),
                jwks_uri: uaa.factory().jku(&t.subdomain),
            })
            .collect();
        // Identity providers beside the UAA: their own hosts and keys, trusted
        // by issuer (keys from the discovery document's `jwks_uri`).
        let mut providers = Vec::new();
        for p in &config.identity_providers {
            let mut p = p.clone();
            if p.app_tid.is_none() {
                p.app_tid = p.trusted_by.first().and_then(|t| uaa.tenant(t)).map(|t| t.zid);
            }
            let p = &p;
            let idp =
                crate::oidc::IdentityProvider::new(p.clone(), &pki).map_err(|e| StackError::Config(e.to_string()))?;
            gateway
                .routes
                .add(&p.host, Route::new(journalled(idp.router(), journal.clone(), Component::IdentityProvider)));
            trusted.push(TrustedIdp { issuer: p.issuer.clone(), jwks_uri: p.jwks_uri() });
            if !p.trusted_by.is_empty() {
                uaa.trust_issuer(crate::uaa::ExternalIssuer {
                    issuer: p.issuer.clone(),
                    jwks: idp.jwks(),
                    jwks_uri: p.jwks_uri(),
                    origin: p.origin.clone(),
                    tenants: p.trusted_by.clone(),
                });
            }
            providers.push(idp);
        }
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
        gateway.routes.add(INTERNET_API_HOST, Route::new(journalled(api.router(), journal.clone(), Component::Api)));
        gateway.routes.add(DESTINATION_HOST, Route::new(dest_router.clone()));
        // The application of seed 000, validating its callers' tokens.
        let app = crate::app::Application::new(uaa.clone(), config.app.clone());
        gateway.routes.add(crate::app::APP_HOST, Route::new(journalled(app.router(), journal.clone(), Component::App)));
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
                providers,
                client_credentials: Default::default(),
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

    /// The identity providers beside the UAA.
    pub fn identity_providers(&self) -> &[crate::oidc::IdentityProvider] {
        &self.inner.providers
    }

    /// The identity provider whose `iss` is `issuer`.
    pub fn identity_provider(&self, issuer: &str) -> Option<&crate::oidc::IdentityProvider> {
        self.inner.providers.iter().find(|p| p.config().issuer == issuer)
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
        let mut route = Route::new(router.clone());
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
        self.inner.gateway.routes.add(host, Route::new(router));
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
}
