//! The mock UAA: an XSUAA-like, multi-tenant OAuth2 authorization server.
//!
//! Tenants are subdomains of one UAA domain, as on SAP BTP: a request to
//! `https://mytenant.authentication.eu10.idp.test/oauth/token` is answered by
//! the `mytenant` zone, with `iss`, `zid` and `ext_attr.zdn` to match.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::http::{json_response, oauth_error, parse_basic, request_host, BufferedBody};
pub use crate::identity::{stable_uuid, ClientAuthMethod, OAuthClient, RoleCollection, Tenant, User};
use crate::pki::TestPki;
use crate::rules::token_validation::{self, TrustedIssuer};
pub use crate::saml::TrustedSamlIdp;
use crate::tokens::{unix_now, TokenBuilder, TokenFactory};

/// Default UAA domain: tenants are its subdomains.
pub const DEFAULT_UAA_DOMAIN: &str = "authentication.eu10.idp.test";
pub use crate::rules::auth_type::grant::JWT_BEARER as JWT_BEARER_GRANT;
pub use crate::rules::saml_bearer::GRANT_TYPE as SAML_BEARER_GRANT;

mod grants;

use grants::{token_endpoint, RefreshTokens};
pub use grants::{MAX_REFRESH_BYTES, REFRESH_TOKEN_VALIDITY};

/// Configuration of the mock UAA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct UaaConfig {
    pub domain: String,
    pub tenants: Vec<Tenant>,
    pub clients: Vec<OAuthClient>,
    pub users: Vec<User>,
    /// Validity of issued access tokens, seconds.
    pub token_validity: u64,
    /// The application's `xsappname`: what `$XSAPPNAME` in scopes stands for.
    pub xsappname: String,
    /// Role collections users can be assigned.
    pub role_collections: Vec<RoleCollection>,
    /// SAML 2.0 identity providers every tenant trusts for the saml2-bearer
    /// grant. The default is the TEST ONLY external identity provider
    /// [`EXTERNAL_IDP`]; its `certificate` may be left empty for the
    /// fixture's.
    pub saml_idps: Vec<TrustedSamlIdp>,
    /// Each tenant trusts its own subaccount's Destination Trust (82dbeca:
    /// the certificate "configured in the target system"), so
    /// `OAuth2SAMLBearerAssertion` destinations work against the UAA.
    pub trust_destination_service: bool,
}

/// Entity id of the TEST ONLY external SAML identity provider (seed 000's
/// external system authenticates its users there).
pub const EXTERNAL_IDP: &str = "https://idp.external.test";
/// `origin` of the users the external identity provider authenticates.
pub const EXTERNAL_IDP_ORIGIN: &str = "external-idp";

/// The Destination Trust's "Assertion Entity ID" of a subaccount (82dbeca):
/// the `<Issuer>` of the assertions the Destination service generates.
pub fn destination_trust_entity_id(zid: &str) -> String {
    format!("cfapps.eu10.idp.test/{zid}")
}

/// `xsappname` of the application (`xsuaa` binding).
pub const APP_XSAPPNAME: &str = "idprop-app!t1";
/// Client of the application (`xsuaa` binding).
pub const APP_CLIENT: (&str, &str) = ("sb-idprop-app!t1", "app-secret");
/// Client of the Destination service binding.
pub const DESTINATION_CLIENT: (&str, &str) = ("sb-clone-destination!b1", "destination-secret");
/// Client of the Connectivity service binding.
pub const CONNECTIVITY_CLIENT: (&str, &str) = ("sb-clone-connectivity!b2", "connectivity-secret");

impl Default for UaaConfig {
    fn default() -> Self {
        let mut app = OAuthClient::new(APP_CLIENT.0, APP_CLIENT.1);
        app.authorities = vec!["$XSAPPNAME.Read".into(), "uaa.resource".into()];
        app.redirect_uris = crate::identity::local_redirect_uris();
        let mut dest = OAuthClient::new(DESTINATION_CLIENT.0, DESTINATION_CLIENT.1);
        dest.authorities = vec!["uaa.resource".into(), "destination-xsappname!b1.Read".into()];
        let mut conn = OAuthClient::new(CONNECTIVITY_CLIENT.0, CONNECTIVITY_CLIENT.1);
        conn.authorities = vec!["uaa.resource".into(), "connectivity!b2.Proxy".into()];
        let mut alice = User::new("alice");
        alice.given_name = Some("Alice".into());
        alice.family_name = Some("Example".into());
        alice.role_collections = vec!["Viewer".into()];
        let mut erin = User::new("erin");
        erin.origin = EXTERNAL_IDP_ORIGIN.into();
        erin.email = Some("erin@external.test".into());
        erin.role_collections = vec!["Viewer".into(), "Administrator".into()];
        Self {
            domain: DEFAULT_UAA_DOMAIN.into(),
            tenants: vec![Tenant::new("mytenant"), Tenant::new("othertenant")],
            clients: vec![app, dest, conn],
            users: vec![alice, User::new("bob"), erin],
            token_validity: 3600,
            xsappname: APP_XSAPPNAME.into(),
            role_collections: vec![
                RoleCollection { name: "Viewer".into(), scopes: vec!["$XSAPPNAME.Read".into()] },
                RoleCollection {
                    name: "Administrator".into(),
                    scopes: vec!["$XSAPPNAME.Read".into(), "$XSAPPNAME.Admin".into()],
                },
            ],
            saml_idps: vec![TrustedSamlIdp {
                entity_id: EXTERNAL_IDP.into(),
                certificate: String::new(),
                origin: EXTERNAL_IDP_ORIGIN.into(),
                tenants: Vec::new(),
            }],
            trust_destination_service: true,
        }
    }
}

impl UaaConfig {
    /// Fills derived fields (zone ids) after deserialisation.
    pub fn normalized(mut self) -> Self {
        for t in &mut self.tenants {
            if t.zid.is_empty() {
                t.zid = Tenant::new(&t.subdomain).zid;
            }
        }
        self
    }
}

/// An identity provider beside the UAA whose tokens tenants trust.
#[derive(Debug, Clone)]
pub struct ExternalIssuer {
    pub issuer: String,
    pub jwks: jsonwebtoken::jwk::JwkSet,
    pub jwks_uri: String,
    /// The `origin` of its users here.
    pub origin: String,
    /// Subdomains of the tenants that trust it.
    pub tenants: Vec<String>,
}

struct UaaState {
    /// A snapshot per request: reading it is a reference count, not a copy
    /// of every client and user (which once cost more than a token's JSON).
    config: RwLock<Arc<UaaConfig>>,
    external: RwLock<Vec<ExternalIssuer>>,
    factory: TokenFactory,
    pki: Arc<TestPki>,
    refresh_tokens: Mutex<RefreshTokens>,
    /// Tokens validated before (the same proxy token on every call).
    validated: crate::validated::ValidatedTokens,
    /// The browser login: sessions per tenant, authorization codes.
    login: crate::login::BrowserLogin,
}

/// Where the UAA's browser login lives (XSUAA's paths; the application
/// router sends browsers to `/oauth/authorize` and `/logout.do`).
pub(crate) const LOGIN_PATHS: crate::login::Paths =
    crate::login::Paths { authorize: "/oauth/authorize", login: "/login.do", logout: "/logout.do" };

/// The mock UAA. Cheap to clone; every clone is the same server.
#[derive(Clone)]
pub struct MockUaa {
    state: Arc<UaaState>,
}

impl std::fmt::Debug for MockUaa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUaa").field("domain", &self.domain()).finish_non_exhaustive()
    }
}

impl MockUaa {
    pub fn new(config: UaaConfig, pki: Arc<TestPki>) -> Self {
        let config = config.normalized();
        let factory = TokenFactory::new(pki.clone(), config.domain.clone());
        Self {
            state: Arc::new(UaaState {
                config: RwLock::new(Arc::new(config)),
                external: RwLock::new(Vec::new()),
                factory,
                pki,
                refresh_tokens: Mutex::new(RefreshTokens::default()),
                validated: Default::default(),
                login: crate::login::BrowserLogin::new(LOGIN_PATHS, "idprop UAA (TEST ONLY)"),
            }),
        }
    }

    pub fn domain(&self) -> String {
        self.state.factory.domain().to_string()
    }

    /// The configuration now (a snapshot: later changes make a new one).
    pub fn config(&self) -> Arc<UaaConfig> {
        self.state.config.read().expect("uaa config").clone()
    }

    /// The token factory (for minting tokens in tests).
    pub fn factory(&self) -> &TokenFactory {
        &self.state.factory
    }

    /// `https://<tenant>.<domain>`.
    pub fn url(&self, tenant: &str) -> String {
        format!("https://{tenant}.{}", self.domain())
    }

    pub fn tenant(&self, subdomain: &str) -> Option<Tenant> {
        self.config().tenants.iter().find(|t| t.subdomain.eq_ignore_ascii_case(subdomain)).cloned()
    }

    /// The tenant of zone `zid` (a token's `zid`, an IAS token's `app_tid`).
    pub fn tenant_by_zid(&self, zid: &str) -> Option<Tenant> {
        self.config().tenants.iter().find(|t| t.zid == zid).cloned()
    }

    pub fn client(&self, client_id: &str) -> Option<OAuthClient> {
        self.config().clients.iter().find(|c| c.client_id == client_id).cloned()
    }

    pub fn user(&self, user_name: &str) -> Option<User> {
        self.config().users.iter().find(|u| u.user_name == user_name).cloned()
    }

    /// The user `user_name` of identity provider `origin`: users of
    /// different identity providers are different users.
    pub fn user_of(&self, user_name: &str, origin: &str) -> Option<User> {
        self.config().users.iter().find(|u| u.user_name == user_name && u.origin == origin).cloned()
    }

    /// `user` as tokens name it: `$XSAPPNAME` expanded, the scopes of its
    /// role collections added, the collections' names in
    /// `xs.system.attributes.xs.rolecollections` (as XSUAA's user tokens
    /// carry them). An unknown role collection adds nothing.
    pub fn effective_user(&self, user: &User) -> User {
        let cfg = self.config();
        let mut u = user.clone();
        let mut scopes: Vec<String> = Vec::new();
        let granted = user.scopes.iter().chain(
            cfg.role_collections
                .iter()
                .filter(|rc| user.role_collections.contains(&rc.name))
                .flat_map(|rc| rc.scopes.iter()),
        );
        for sc in granted {
            let sc = crate::identity::expand_xsappname(sc, &cfg.xsappname);
            if !scopes.contains(&sc) {
                scopes.push(sc);
            }
        }
        u.scopes = scopes;
        if !u.claims.contains_key("xs.system.attributes") {
            u.claims.insert("xs.system.attributes".into(), json!({ "xs.rolecollections": user.role_collections }));
        }
        u
    }

    /// `client` with `$XSAPPNAME` expanded in its authorities.
    pub fn effective_client(&self, mut client: OAuthClient) -> OAuthClient {
        let config = self.config();
        for a in &mut client.authorities {
            *a = crate::identity::expand_xsappname(a, &config.xsappname);
        }
        client
    }

    /// The SAML entity id a tenant goes by as a service provider: the
    /// `Audience` its saml2-bearer grant expects (its token endpoint URL is
    /// accepted too, RFC 7522 §3 item 2).
    pub fn saml_entity_id(&self, tenant: &Tenant) -> String {
        format!("{}.{}", tenant.subdomain, self.domain())
    }

    /// The SAML identity providers `tenant` trusts: the configured ones (an
    /// empty certificate is the TEST ONLY external identity provider's
    /// fixture) and, unless turned off, its own Destination Trust.
    pub fn saml_trust(&self, tenant: &Tenant) -> Result<Vec<TrustedSamlIdp>, crate::pki::PkiError> {
        let cfg = self.config();
        let mut out = Vec::new();
        let trusts = |idp: &&TrustedSamlIdp| {
            idp.tenants.is_empty() || idp.tenants.iter().any(|t| t.eq_ignore_ascii_case(&tenant.subdomain))
        };
        for idp in cfg.saml_idps.iter().filter(trusts) {
            let mut idp = idp.clone();
            if idp.certificate.trim().is_empty() {
                let signer = self.state.pki.saml_signer(&idp.entity_id, crate::pki::SamlKey::ExternalIdp)?;
                idp.certificate = signer.certificate_pem().to_string();
            }
            out.push(idp);
        }
        if cfg.trust_destination_service {
            let signer = self
                .state
                .pki
                .saml_signer(&destination_trust_entity_id(&tenant.zid), crate::pki::SamlKey::Generated)?;
            out.push(signer.trusted("sap.default"));
        }
        Ok(out)
    }

    /// The Destination Trust signer of subaccount `tenant` (82dbeca): the
    /// TEST ONLY key the Destination service signs generated assertions
    /// with, made on first use.
    pub fn destination_trust(&self, tenant: &Tenant) -> Result<crate::saml::SamlSigner, crate::pki::PkiError> {
        self.state.pki.saml_signer(&destination_trust_entity_id(&tenant.zid), crate::pki::SamlKey::Generated)
    }

    /// Adds (or replaces) a client.
    pub fn add_client(&self, client: OAuthClient) {
        let mut cfg = self.state.config.write().expect("uaa config");
        let cfg = Arc::make_mut(&mut cfg);
        cfg.clients.retain(|c| c.client_id != client.client_id);
        cfg.clients.push(client);
    }

    /// Adds (or replaces) a user.
    pub fn add_user(&self, user: User) {
        let mut cfg = self.state.config.write().expect("uaa config");
        let cfg = Arc::make_mut(&mut cfg);
        cfg.users.retain(|u| u.user_name != user.user_name);
        cfg.users.push(user);
    }

    /// Adds a tenant.
    pub fn add_tenant(&self, subdomain: &str) -> Tenant {
        let t = Tenant::new(subdomain);
        let mut cfg = self.state.config.write().expect("uaa config");
        let cfg = Arc::make_mut(&mut cfg);
        if !cfg.tenants.iter().any(|x| x.subdomain == t.subdomain) {
            cfg.tenants.push(t.clone());
        }
        t
    }

    /// A user token as the UAA would issue it to the app client by password
    /// grant; customise with the builder, then `.sign()`.
    ///
    /// Unknown tenants and users are made up on the spot (tests may mint for
    /// anybody).
    pub fn user_token(&self, tenant: &str, user_name: &str) -> TokenBuilder {
        let cfg = self.config();
        let t = self.tenant(tenant).unwrap_or_else(|| Tenant::new(tenant));
        let u = self.effective_user(&self.user(user_name).unwrap_or_else(|| User::new(user_name)));
        self.state.factory.user_token(
            &t,
            &u,
            &cfg.clients.first().map(|c| c.client_id.clone()).unwrap_or_default(),
            "password",
            cfg.token_validity,
        )
    }

    /// Refresh tokens currently honoured (bounded by expiry and bytes).
    pub fn refresh_tokens(&self) -> usize {
        self.state.refresh_tokens.lock().expect("refresh tokens").len()
    }

    /// A client-credentials token of `client_id` (made up if unknown).
    pub fn client_token(&self, tenant: &str, client_id: &str) -> TokenBuilder {
        let t = self.tenant(tenant).unwrap_or_else(|| Tenant::new(tenant));
        let c = self.effective_client(self.client(client_id).unwrap_or_else(|| OAuthClient::new(client_id, "")));
        self.state.factory.client_token(&t, &c, self.config().token_validity)
    }

    /// Every tenant as a trusted issuer with the published keys: what a
    /// component that trusts this UAA validates against.
    pub fn trusted_issuers(&self) -> Vec<TrustedIssuer> {
        let jwks = self.state.pki.jwks();
        self.config()
            .tenants
            .iter()
            .map(|t| TrustedIssuer {
                issuer: self.state.factory.issuer(&t.subdomain),
                jwks: jwks.clone(),
                jwks_uri: Some(self.state.factory.jku(&t.subdomain)),
            })
            .collect()
    }

    /// Trusts `e`'s tokens for its tenants (IAS-to-XSUAA).
    pub fn trust_issuer(&self, e: ExternalIssuer) {
        let mut all = self.state.external.write().expect("external issuers lock");
        all.retain(|x| x.issuer != e.issuer);
        all.push(e);
    }

    /// Validates a token of an identity provider `tenant` trusts; the
    /// provider's entry with it. A token of no such provider is
    /// `UntrustedIssuer`.
    pub fn validate_external(
        &self,
        token: &str,
        tenant: &str,
    ) -> Result<(token_validation::ValidToken, ExternalIssuer), token_validation::Rejection> {
        let trusted: Vec<ExternalIssuer> = self
            .state
            .external
            .read()
            .expect("external issuers lock")
            .iter()
            .filter(|e| e.tenants.iter().any(|t| t.eq_ignore_ascii_case(tenant)))
            .cloned()
            .collect();
        let issuers: Vec<TrustedIssuer> = trusted
            .iter()
            .map(|e| TrustedIssuer {
                issuer: e.issuer.clone(),
                jwks: e.jwks.clone(),
                jwks_uri: Some(e.jwks_uri.clone()),
            })
            .collect();
        let v = token_validation::validate(token, &issuers, unix_now() as i64)?;
        let iss = v.claims.get("iss").and_then(Value::as_str).unwrap_or_default();
        let e = trusted.into_iter().find(|e| e.issuer == iss).expect("validated against these issuers");
        Ok((v, e))
    }

    /// Validates a token this UAA issued (any tenant).
    pub fn validate(&self, token: &str) -> Result<token_validation::ValidToken, token_validation::Rejection> {
        let now = unix_now() as i64;
        if let Some(v) = self.state.validated.get(token, now) {
            return Ok(v);
        }
        let v = token_validation::validate(token, &self.trusted_issuers(), now)?;
        self.state.validated.put(token, crate::validated::exp_of(&v), &v);
        Ok(v)
    }

    /// The JWKS as `/token_keys` serves it (with XSUAA's PEM `value`).
    pub fn token_keys(&self) -> Value {
        let keys: Vec<Value> = self
            .state
            .pki
            .signing_keys()
            .iter()
            .map(|k| {
                let mut v = serde_json::to_value(&k.jwk).expect("JWK serialises");
                v["value"] = json!(k.public_pem());
                v
            })
            .collect();
        json!({ "keys": keys })
    }

    /// The axum router of the UAA.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/oauth/token", post(token_endpoint))
            .route("/token_keys", get(token_keys))
            .route("/.well-known/openid-configuration", get(openid_configuration))
            .route("/saml/metadata", get(saml_metadata))
            .route(LOGIN_PATHS.authorize, get(authorize))
            .route(LOGIN_PATHS.login, post(login))
            .route(LOGIN_PATHS.logout, get(logout))
            .with_state(self.clone())
    }

    /// The tenant a request addresses: the subdomain of the UAA domain in its
    /// host; requests straight to the loopback port use the first tenant
    /// (or `X-Idprop-Tenant`).
    fn tenant_of(&self, req: &Request) -> Result<Tenant, TenantError> {
        // A fully qualified name may end in a dot: `a.b.` is `a.b` (RFC 1034
        // §3.1); names are case-insensitive. Never a fallback to another
        // tenant for a name this UAA does not serve.
        let host = request_host(req.uri(), req.headers()).unwrap_or_default();
        let host = host.strip_suffix('.').unwrap_or(&host).to_ascii_lowercase();
        let domain = self.domain().to_ascii_lowercase();
        let sub = if let Some(sub) = host.strip_suffix(&format!(".{domain}")) {
            sub.to_string()
        } else if host == domain {
            // XSUAA also takes the zone by id on the bare domain (`x-zid`),
            // which is how @sap/xssec asks for tenant tokens.
            let zid = req.headers().get("x-zid").and_then(|v| v.to_str().ok()).unwrap_or("");
            if zid.is_empty() {
                return Err(TenantError::NoTenant { domain });
            }
            return self.tenant_by_zid(zid).ok_or_else(|| TenantError::UnknownZone(zid.to_string()));
        } else if let Some(t) = req.headers().get("x-idprop-tenant").and_then(|v| v.to_str().ok()) {
            t.to_string()
        } else if !(host.is_empty() || host == "localhost" || host.parse::<std::net::IpAddr>().is_ok()) {
            return Err(TenantError::ForeignHost { host, domain });
        } else {
            // Straight to the loopback port: the first tenant.
            return self.config().tenants.first().cloned().ok_or(TenantError::NoTenants);
        };
        self.tenant(&sub).ok_or(TenantError::UnknownSubdomain(sub))
    }
}

/// Why a request names no tenant of this UAA; answered as the OAuth error
/// it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum TenantError {
    #[error("no tenant: call https://<subdomain>.{domain} or send x-zid")]
    NoTenant { domain: String },
    #[error("unknown zone id {0:?}")]
    UnknownZone(String),
    #[error("host {host:?} is not a tenant of {domain}")]
    ForeignHost { host: String, domain: String },
    #[error("the UAA has no tenants configured")]
    NoTenants,
    #[error("unknown tenant subdomain {0:?}")]
    UnknownSubdomain(String),
}

impl axum::response::IntoResponse for TenantError {
    fn into_response(self) -> Response<Body> {
        match self {
            TenantError::NoTenant { .. } => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &self.to_string()),
            _ => oauth_error(StatusCode::NOT_FOUND, "invalid_tenant", &self.to_string()),
        }
    }
}

async fn token_keys(State(uaa): State<MockUaa>) -> Response<Body> {
    json_response(StatusCode::OK, &uaa.token_keys())
}

async fn openid_configuration(State(uaa): State<MockUaa>, req: Request) -> Response<Body> {
    let tenant = match uaa.tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let base = uaa.url(&tenant.subdomain);
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": uaa.factory().issuer(&tenant.subdomain),
            "authorization_endpoint": format!("{base}{}", LOGIN_PATHS.authorize),
            "token_endpoint": format!("{base}/oauth/token"),
            "end_session_endpoint": format!("{base}{}", LOGIN_PATHS.logout),
            "jwks_uri": format!("{base}/token_keys"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "grant_types_supported": ["authorization_code", "client_credentials", "password", JWT_BEARER_GRANT, SAML_BEARER_GRANT, "refresh_token"],
            "claims_supported": ["sub", "user_name", "email", "origin", "user_id", "user_uuid", "zid", "cid", "client_id", "scope", "ext_attr"],
        }),
    )
}

/// `GET /oauth/authorize`: the browser login of the tenant the host names
/// (`crate::login`): a login page for its users, then a code for the client.
async fn authorize(State(uaa): State<MockUaa>, req: Request) -> Response<Body> {
    let tenant = match uaa.tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    uaa.state.login.authorize(&tenant.subdomain, req.uri().query().unwrap_or(""), |id| uaa.client(id), req.headers())
}

/// `POST /login.do`: the login page's form; a configured user of the
/// tenant's own identity provider (origin `sap.default`) by password.
async fn login(State(uaa): State<MockUaa>, req: Request) -> Response<Body> {
    let tenant = match uaa.tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let body = req.extensions().get::<BufferedBody>().map(|b| b.0.clone()).unwrap_or_default();
    let form = crate::http::decode_pairs(&body);
    let config = uaa.config();
    uaa.state.login.login(&tenant.subdomain, &form, |name, password| {
        config
            .users
            .iter()
            .find(|u| {
                u.user_name == name && u.origin == "sap.default" && !u.password.is_empty() && u.password == password
            })
            .map(|u| u.user_name.clone())
    })
}

/// `GET /logout.do[?redirect=…&client_id=…]`: ends the browser's session
/// (the application router's central logout); redirects only to a URI the
/// client registered.
async fn logout(State(uaa): State<MockUaa>, req: Request) -> Response<Body> {
    uaa.state.login.logout(req.headers(), req.uri().query().unwrap_or(""), |id| uaa.client(id))
}

/// `GET /saml/metadata`: the tenant as a SAML service provider, the entity
/// id an assertion's `Audience` names (how an external identity provider is
/// told who the UAA is).
async fn saml_metadata(State(uaa): State<MockUaa>, req: Request) -> Response<Body> {
    let tenant = match uaa.tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let entity = uaa.saml_entity_id(&tenant);
    let token_endpoint = format!("{}/oauth/token", uaa.url(&tenant.subdomain));
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{token_endpoint}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"#
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/samlmetadata+xml")
        .body(Body::from(xml))
        .expect("static response")
}
