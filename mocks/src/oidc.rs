//! Identity providers beside the UAA: SAP Cloud Identity Services (IAS)
//! tenants and any OIDC issuer (seed 002's sample token comes from
//! `https://issuer.com`).
//!
//! Each provider has its own TEST ONLY keys (never the UAA's), an issuer of
//! any spelling, and a `.test` host that serves its discovery document
//! (`/.well-known/openid-configuration`), its keys (`/oauth2/certs`) and a
//! token endpoint (`/oauth2/token`: client credentials and password). An
//! issuer that is not a `.test` URL is never contacted: its documents live on
//! the `.test` host the configuration names.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::http::{json_response, oauth_error, parse_basic, BufferedBody};
use crate::identity::{stable_uuid, OAuthClient, User};
use crate::pki::{SigningKey, TestPki};

/// What kind of provider: it decides the claims of the tokens it issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// An SAP Cloud Identity Services tenant: tokens with the claims of
    /// 7bf3c18 (`sub`, `user_uuid`, `email`, `app_tid`, `azp`, `aud`, `sid`,
    /// `scim_id`, …).
    #[default]
    Ias,
    /// Any OIDC issuer: `iss`, `sub`, `aud`, `email`, names.
    Oidc,
}

/// One identity provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    #[serde(default)]
    pub kind: ProviderKind,
    /// The `iss` of its tokens, exactly (any string, `https://issuer.com`).
    pub issuer: String,
    /// The `.test` host that serves its documents and token endpoint.
    pub host: String,
    /// Clients that may get tokens at its token endpoint.
    #[serde(default)]
    pub clients: Vec<OAuthClient>,
    /// Users of the password grant.
    #[serde(default)]
    pub users: Vec<User>,
    /// Keys it publishes (`oidc-1`, `oidc-2`); it signs with the first.
    #[serde(default = "default_kids")]
    pub keys: Vec<String>,
    /// UAA tenants (subdomains) that trust it: their jwt-bearer grant
    /// exchanges its tokens (IAS-to-XSUAA) and the Destination service
    /// takes its user tokens for them.
    #[serde(default)]
    pub trusted_by: Vec<String>,
    /// The `origin` its users get in the UAA's tokens.
    #[serde(default = "default_origin")]
    pub origin: String,
    /// `app_tid` of its tokens: the subaccount's tenant id. Absent, the zone
    /// id of the first tenant in `trusted_by` (an IAS tenant connected to a
    /// subaccount issues tokens for it), else one derived from the issuer.
    #[serde(default)]
    pub app_tid: Option<String>,
}

fn default_origin() -> String {
    "sap.custom".into()
}

fn default_kids() -> Vec<String> {
    vec!["oidc-1".into()]
}

impl ProviderConfig {
    /// `https://<host>`: where its documents are.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.host)
    }

    /// Its discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.base_url())
    }

    /// Its keys' URL (the discovery document's `jwks_uri`).
    pub fn jwks_uri(&self) -> String {
        format!("{}/oauth2/certs", self.base_url())
    }
}

/// The default providers: one IAS tenant and the issuer of seed 002's
/// sample token.
pub fn default_providers() -> Vec<ProviderConfig> {
    let mut alice = User::new("alice");
    alice.given_name = Some("Alice".into());
    alice.family_name = Some("Example".into());
    vec![
        ProviderConfig {
            kind: ProviderKind::Ias,
            issuer: "https://mytenant.accounts.idp.test".into(),
            host: "mytenant.accounts.idp.test".into(),
            clients: vec![
                OAuthClient {
                    redirect_uris: crate::identity::local_redirect_uris(),
                    ..OAuthClient::new(IAS_CLIENT.0, IAS_CLIENT.1)
                },
                OAuthClient {
                    certificate_subject: Some(crate::pki::client_subject(IAS_X509_CLIENT)),
                    pkce: crate::identity::Pkce::RequiredS256,
                    redirect_uris: crate::identity::local_redirect_uris(),
                    ..OAuthClient::new(IAS_X509_CLIENT, "")
                },
            ],
            users: vec![alice],
            keys: default_kids(),
            trusted_by: vec!["mytenant".into()],
            origin: default_origin(),
            app_tid: None,
        },
        ProviderConfig {
            kind: ProviderKind::Oidc,
            issuer: SEED_ISSUER.into(),
            host: "issuer.oidc.test".into(),
            clients: vec![OAuthClient::new("111111111111-2222-3333-444444444444", "seed-secret")],
            users: vec![],
            keys: default_kids(),
            trusted_by: vec![],
            origin: "issuer.com".into(),
            app_tid: None,
        },
    ]
}

/// The client of the default IAS tenant (an `identity` binding's).
pub const IAS_CLIENT: (&str, &str) = ("ias-app-client", "ias-app-secret");
/// A client of the default IAS tenant with only an X.509 credential
/// (9379444's `X509_GENERATED`; ce25f2b gets its token "through mTLS"); it
/// also requires PKCE S256 for the browser login.
pub const IAS_X509_CLIENT: &str = "ias-x509-client";
/// The issuer of seed 002's sample token.
pub const SEED_ISSUER: &str = "https://issuer.com";

/// Errors of a provider's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("identity provider {issuer:?}: key {kid:?} is not one of the TEST ONLY OIDC keys (oidc-1, oidc-2)")]
    UnknownKey { issuer: String, kid: String },
    #[error("identity provider {issuer:?}: it needs at least one key")]
    NoKeys { issuer: String },
    #[error("identity provider {issuer:?}: host {host:?} must be a .test name")]
    NotTest { issuer: String, host: String },
}

/// A running identity provider. Cheap to clone.
#[derive(Clone, Debug)]
pub struct IdentityProvider {
    config: Arc<ProviderConfig>,
    keys: Arc<Vec<SigningKey>>,
    /// Refresh tokens issued: token → (client, user name), oldest dropped
    /// first beyond [`MAX_REFRESH_TOKENS`].
    refresh: Arc<std::sync::Mutex<std::collections::VecDeque<(String, String, String)>>>,
    /// The browser login (authorization code with PKCE).
    login: crate::login::BrowserLogin,
    /// The issuer a client certificate must have (the test root CA).
    client_ca: Arc<str>,
}

/// Where an IAS tenant's browser login lives.
const LOGIN_PATHS: crate::login::Paths =
    crate::login::Paths { authorize: "/oauth2/authorize", login: "/oauth2/login", logout: "/oauth2/logout" };

/// Refresh tokens a provider remembers (memory stays bounded).
pub const MAX_REFRESH_TOKENS: usize = 10_000;

impl IdentityProvider {
    pub fn new(config: ProviderConfig, pki: &TestPki) -> Result<Self, ProviderError> {
        let issuer = config.issuer.clone();
        if !config.host.trim_end_matches('.').ends_with(".test") {
            return Err(ProviderError::NotTest { issuer, host: config.host.clone() });
        }
        if config.keys.is_empty() {
            return Err(ProviderError::NoKeys { issuer });
        }
        let keys = config
            .keys
            .iter()
            .map(|kid| {
                pki.signing_key(kid)
                    .filter(|_| kid.starts_with("oidc-"))
                    .cloned()
                    .ok_or_else(|| ProviderError::UnknownKey { issuer: issuer.clone(), kid: kid.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let login = crate::login::BrowserLogin::new(LOGIN_PATHS, "idprop identity provider (TEST ONLY)");
        let client_ca = pki.client_ca_subject().into();
        Ok(Self { config: Arc::new(config), keys: Arc::new(keys), refresh: Default::default(), login, client_ca })
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Its client `id`.
    pub fn client(&self, id: &str) -> Option<OAuthClient> {
        self.config.clients.iter().find(|c| c.client_id == id).cloned()
    }

    /// The tenant id of its tokens (`app_tid`).
    pub fn tenant_id(&self) -> String {
        self.config.app_tid.clone().unwrap_or_else(|| stable_uuid(&format!("ias-tenant:{}", self.config.issuer)))
    }

    /// The keys it publishes, as a JWKS.
    pub fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        jsonwebtoken::jwk::JwkSet { keys: self.keys.iter().map(|k| k.jwk.clone()).collect() }
    }

    /// A token holding exactly `claims` (with this provider's `iss` unless
    /// the claims name one), signed with its first key.
    pub fn sign(&self, mut claims: Map<String, Value>) -> String {
        claims.entry("iss").or_insert_with(|| json!(self.config.issuer));
        self.keys[0].sign_claims(&claims)
    }

    /// The claims of a token for `user` (or, without one, for the client
    /// itself), as this kind of provider issues them.
    pub fn claims(&self, client_id: &str, user: Option<&User>, validity: u64) -> Map<String, Value> {
        let now = crate::tokens::unix_now();
        let tenant_id = self.tenant_id();
        let mut c = Map::new();
        c.insert("iss".into(), json!(self.config.issuer));
        c.insert("aud".into(), json!([client_id]));
        c.insert("azp".into(), json!(client_id));
        c.insert("iat".into(), json!(now));
        c.insert("exp".into(), json!(now + validity));
        c.insert("jti".into(), json!(crate::tokens::random_hex(16)));
        match user {
            Some(u) => {
                let uuid = stable_uuid(&format!("ias-user:{}:{}", self.config.issuer, u.user_name));
                c.insert("sub".into(), json!(uuid));
                c.insert("user_uuid".into(), json!(uuid));
                if let Some(e) = &u.email {
                    c.insert("email".into(), json!(e));
                }
                if let Some(g) = &u.given_name {
                    c.insert("given_name".into(), json!(g));
                }
                if let Some(f) = &u.family_name {
                    c.insert("family_name".into(), json!(f));
                }
                if self.config.kind == ProviderKind::Ias {
                    c.insert("scim_id".into(), json!(uuid));
                    c.insert("sid".into(), json!(crate::tokens::random_hex(16)));
                }
            }
            None => {
                c.insert("sub".into(), json!(client_id));
            }
        }
        if self.config.kind == ProviderKind::Ias {
            c.insert("app_tid".into(), json!(tenant_id));
            c.insert("zone_uuid".into(), json!(tenant_id));
        }
        for (k, v) in user.map(|u| u.claims.clone()).unwrap_or_default() {
            c.insert(k, v);
        }
        c
    }

    /// Its routes: discovery, keys, token endpoint.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/oauth2/certs", get(certs))
            .route("/oauth2/token", post(token))
            .route(LOGIN_PATHS.authorize, get(authorize))
            .route(LOGIN_PATHS.login, post(login))
            .route(LOGIN_PATHS.logout, get(logout))
            .with_state(self.clone())
    }
}

async fn discovery(State(p): State<IdentityProvider>) -> Response<Body> {
    let base = p.config.base_url();
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": p.config.issuer,
            "authorization_endpoint": format!("{base}{}", LOGIN_PATHS.authorize),
            "token_endpoint": format!("{base}/oauth2/token"),
            "end_session_endpoint": format!("{base}{}", LOGIN_PATHS.logout),
            "jwks_uri": p.config.jwks_uri(),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "grant_types_supported": ["authorization_code", "client_credentials", "password", "refresh_token", crate::uaa::JWT_BEARER_GRANT],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "tls_client_auth"],
        }),
    )
}

/// `GET /oauth2/authorize`: the browser login (`crate::login`) for the
/// provider's users.
async fn authorize(State(p): State<IdentityProvider>, req: Request) -> Response<Body> {
    p.login.authorize(&p.config.issuer, req.uri().query().unwrap_or(""), |id| p.client(id), req.headers())
}

/// `POST /oauth2/login`: the login page's form; a user by name or email.
async fn login(State(p): State<IdentityProvider>, req: Request) -> Response<Body> {
    let body = req.extensions().get::<BufferedBody>().map(|b| b.0.clone()).unwrap_or_default();
    let form = crate::http::decode_pairs(&body);
    p.login.login(&p.config.issuer, &form, |name, password| {
        p.config
            .users
            .iter()
            .find(|u| {
                (u.user_name == name || u.email.as_deref() == Some(name))
                    && !u.password.is_empty()
                    && u.password == password
            })
            .map(|u| u.user_name.clone())
    })
}

/// `GET /oauth2/logout[?post_logout_redirect_uri=…&client_id=…]`.
async fn logout(State(p): State<IdentityProvider>, req: Request) -> Response<Body> {
    p.login.logout(req.headers(), req.uri().query().unwrap_or(""), |id| p.client(id))
}

async fn certs(State(p): State<IdentityProvider>) -> Response<Body> {
    json_response(StatusCode::OK, &serde_json::to_value(p.jwks()).expect("JWKS serialises"))
}

/// `POST /oauth2/token`: client credentials, password (with a refresh
/// token), refresh_token and jwt-bearer (a token of this provider for the
/// same user), the client by secret (Basic or body). `resource` (313b215:
/// an IAS token for a service instance is requested with
/// `resource=urn:sap:identity:application:service:id:<instance_guid>`)
/// joins the token's `aud`.
async fn token(State(p): State<IdentityProvider>, req: Request) -> Response<Body> {
    let body = req.extensions().get::<BufferedBody>().map(|b| b.0.clone()).unwrap_or_default();
    let form = crate::http::decode_pairs(&body);
    let param = |k: &str| form.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let basic = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(parse_basic);
    let Some((id, secret)) =
        basic.or_else(|| param("client_id").map(|i| (i, param("client_secret").unwrap_or_default())))
    else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "no client authentication");
    };
    // A secret, or (ce25f2b: "The IAS access token is issued through mTLS")
    // the client's X.509 certificate on the TLS connection, RFC 8705 §2.
    // Only a certificate of the test root CA is a client's credential (the
    // TLS layer also accepts the connector CA's, which names principals).
    let tls_subject = req
        .extensions()
        .get::<crate::http::ConnInfo>()
        .and_then(|c| c.client_cert.as_ref())
        .filter(|c| crate::rules::dn::same_name(&c.issuer, &p.client_ca).unwrap_or(false))
        .map(|c| c.subject.clone());
    let Some(client) = p.config.clients.iter().find(|c| {
        c.client_id == id
            && (c.secret_matches(&secret) || (secret.is_empty() && c.certificate_matches(tls_subject.as_deref())))
    }) else {
        let why = match (&tls_subject, secret.is_empty()) {
            (Some(s), true) => format!("client {id:?} has no X.509 credential of subject {s:?}"),
            (None, true) => format!("client {id:?} sent neither a secret nor a client certificate"),
            _ => format!("bad credentials for client {id:?}"),
        };
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &why);
    };
    let validity = 3600;
    let user_named = |name: &str| p.config.users.iter().find(|x| x.user_name == name).cloned();
    let mut user_of_grant: Option<String> = None;
    let mut claims = match param("grant_type").as_deref() {
        Some("client_credentials") => p.claims(&client.client_id, None, validity),
        Some("password") => {
            let (u, pw) = (param("username").unwrap_or_default(), param("password").unwrap_or_default());
            match p.config.users.iter().find(|x| x.user_name == u || x.email.as_deref() == Some(u.as_str())) {
                Some(user) if user.password == pw => {
                    user_of_grant = Some(user.user_name.clone());
                    p.claims(&client.client_id, Some(user), validity)
                }
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        &format!("bad credentials for user {u:?}"),
                    )
                }
            }
        }
        Some("authorization_code") => {
            let (code, redirect_uri, verifier) = (param("code"), param("redirect_uri"), param("code_verifier"));
            if code.is_none() {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "authorization_code grant needs code");
            }
            let r = crate::rules::authorization_code::Redemption {
                client_id: &client.client_id,
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: verifier.as_deref(),
                now: crate::tokens::unix_now() as i64,
            };
            match p.login.redeem(&p.config.issuer, code.as_deref().unwrap_or(""), &r).map(|g| user_named(&g.user)) {
                Ok(Some(user)) => {
                    user_of_grant = Some(user.user_name.clone());
                    p.claims(&client.client_id, Some(&user), validity)
                }
                Ok(None) => {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the user of this code is gone")
                }
                Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &e.to_string()),
            }
        }
        Some("refresh_token") => {
            let rt = param("refresh_token").unwrap_or_default();
            let known = p.refresh.lock().expect("refresh lock").iter().find(|(t, _, _)| *t == rt).cloned();
            match known.and_then(|(_, c, u)| (c == client.client_id).then_some(u)).and_then(|u| user_named(&u)) {
                Some(user) => {
                    user_of_grant = Some(user.user_name.clone());
                    p.claims(&client.client_id, Some(&user), validity)
                }
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown refresh token for this client",
                    )
                }
            }
        }
        Some(crate::uaa::JWT_BEARER_GRANT) => {
            let assertion = param("assertion").unwrap_or_default();
            let trusted = crate::rules::token_validation::TrustedIssuer {
                issuer: p.config.issuer.clone(),
                jwks: p.jwks(),
                jwks_uri: Some(p.config.jwks_uri()),
            };
            let now = crate::tokens::unix_now() as i64;
            let valid = match crate::rules::token_validation::validate(&assertion, &[trusted], now) {
                Ok(v) => v,
                Err(r) => {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &format!("assertion rejected: {r}"))
                }
            };
            // The same user: every user claim of the assertion, a new audience.
            let mut c = p.claims(&client.client_id, None, validity);
            for k in ["sub", "user_uuid", "email", "given_name", "family_name", "scim_id", "sid"] {
                if let Some(v) = valid.claims.get(k) {
                    c.insert(k.into(), v.clone());
                }
            }
            c
        }
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant type {other:?} is not supported by this identity provider"),
            )
        }
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "missing grant_type"),
    };
    if let Some(resource) = param("resource") {
        if let Some(Value::Array(aud)) = claims.get_mut("aud") {
            aud.push(json!(resource));
        }
    }
    let token = p.sign(claims);
    let mut body =
        json!({"access_token": token, "id_token": token, "token_type": "Bearer", "expires_in": validity - 1});
    if let Some(user) = user_of_grant {
        let rt = format!("{}-r", crate::tokens::random_hex(16));
        let mut all = p.refresh.lock().expect("refresh lock");
        if all.len() >= MAX_REFRESH_TOKENS {
            all.pop_front();
        }
        all.push_back((rt.clone(), client.client_id.clone(), user));
        body["refresh_token"] = json!(rt);
    }
    json_response(StatusCode::OK, &body)
}
