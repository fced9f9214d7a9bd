//! The mock Destination service: Find Destination and the destination
//! lists, protected by UAA tokens, answering with tokens fetched by
//! [`TokenRetriever`] under the shared rules.

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::{bearer, error_response, json_response};
use crate::retrieval::{Certificate, FindRequest, TokenRetriever};
use crate::rules::fragments::FRAGMENT_NAME;
use crate::rules::Destination;
use crate::uaa::MockUaa;

/// Where a destination lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Subaccount,
    Instance,
}

/// A configured destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DestinationEntry {
    /// Only this tenant (subdomain) sees it; every tenant when absent.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub level: Level,
    pub properties: Destination,
}

impl DestinationEntry {
    pub fn new(properties: Destination) -> Self {
        Self { tenant: None, level: Level::Subaccount, properties }
    }
}

struct State_ {
    uaa: MockUaa,
    retriever: TokenRetriever,
    destinations: RwLock<Vec<DestinationEntry>>,
    /// Destination fragments (f56600a); `FragmentName` names each.
    fragments: RwLock<Vec<DestinationEntry>>,
    certificates: RwLock<Vec<Certificate>>,
    client_id: String,
    instance_id: String,
}

/// The mock Destination service.
#[derive(Clone)]
pub struct DestinationService {
    state: Arc<State_>,
}

impl std::fmt::Debug for DestinationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationService").finish_non_exhaustive()
    }
}

impl DestinationService {
    /// A service accepting tokens the `uaa` issued to `client_id`.
    pub fn new(uaa: MockUaa, retriever: TokenRetriever, client_id: &str, instance_id: &str) -> Self {
        Self {
            state: Arc::new(State_ {
                uaa,
                retriever,
                destinations: RwLock::new(Vec::new()),
                fragments: RwLock::new(Vec::new()),
                certificates: RwLock::new(Vec::new()),
                client_id: client_id.into(),
                instance_id: instance_id.into(),
            }),
        }
    }

    /// Adds or replaces (same name, tenant and level) a destination.
    pub fn add(&self, entry: DestinationEntry) {
        let mut list = self.state.destinations.write().expect("destinations lock");
        list.retain(|e| {
            !(e.properties.name() == entry.properties.name() && e.tenant == entry.tenant && e.level == entry.level)
        });
        list.push(entry);
    }

    /// Adds or replaces (same `FragmentName`, tenant and level) a fragment.
    pub fn add_fragment(&self, entry: DestinationEntry) {
        let name = |e: &DestinationEntry| e.properties.get(FRAGMENT_NAME).unwrap_or_default().to_string();
        let mut list = self.state.fragments.write().expect("fragments lock");
        list.retain(|e| !(name(e) == name(&entry) && e.tenant == entry.tenant && e.level == entry.level));
        list.push(entry);
    }

    /// The fragment `name` of `tenant` at `level` (no fallback between
    /// levels: f56600a, "maintained on the same level as the destination").
    fn fragment(&self, tenant: &str, name: &str, level: Level) -> Option<Destination> {
        self.state
            .fragments
            .read()
            .expect("fragments lock")
            .iter()
            .filter(|e| e.tenant.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(tenant)) && e.level == level)
            .find(|e| e.properties.get(FRAGMENT_NAME) == Some(name))
            .map(|e| e.properties.clone())
    }

    /// Uploads a key store (for `tokenService.KeyStoreLocation`).
    pub fn add_certificate(&self, c: Certificate) {
        let mut list = self.state.certificates.write().expect("certificates lock");
        list.retain(|x| x.name != c.name);
        list.push(c);
    }

    pub fn destinations(&self) -> Vec<DestinationEntry> {
        self.state.destinations.read().expect("destinations lock").clone()
    }

    /// The token retriever (its cache can be reset between scenarios).
    pub fn retriever(&self) -> &TokenRetriever {
        &self.state.retriever
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/destination-configuration/v1/destinations/{name}", get(find))
            .route("/destination-configuration/v2/destinations/{name}", get(consume))
            .route("/destination-configuration/v1/subaccountDestinations", get(list_subaccount))
            .route("/destination-configuration/v1/subaccountDestinations/{name}", get(get_subaccount))
            .route("/destination-configuration/v1/instanceDestinations", get(list_instance))
            .route("/destination-configuration/v1/instanceDestinations/{name}", get(get_instance))
            .route("/destination-configuration/v1/saml2Metadata", get(saml2_metadata))
            .route("/destination-configuration/v1/saml2Metadata/certificate", get(saml2_certificate))
            .with_state(self.clone())
    }

    fn visible(&self, tenant: &str, level: Option<Level>) -> Vec<DestinationEntry> {
        self.destinations()
            .into_iter()
            .filter(|e| e.tenant.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(tenant)))
            .filter(|e| level.is_none_or(|l| e.level == l))
            .collect()
    }

    /// Instance level first, then subaccount (the Find Destination order).
    fn lookup(&self, tenant: &str, name: &str, level: Option<Level>) -> Option<DestinationEntry> {
        let all = self.visible(tenant, level);
        all.iter()
            .find(|e| e.level == Level::Instance && e.properties.name() == name)
            .or_else(|| all.iter().find(|e| e.level == Level::Subaccount && e.properties.name() == name))
            .cloned()
    }
}

/// Who is calling. 39d4265's table: the destination is looked up in the
/// tenant of the `Authorization` token (the provider's, when the
/// application used its own binding's credentials there), while the user
/// token (`X-user-token` when present and non-empty, else a user token in
/// `Authorization`) decides "the user and the tenant subdomain" of the token
/// exchange (`TU-5`).
struct Caller {
    /// Whose destinations: the `Authorization` token's tenant.
    tenant: String,
    zid: String,
    /// Whose token service: the user token's tenant, else `tenant`.
    exchange_tenant: String,
    user_token: Option<String>,
}

/// Why the Destination service refuses a caller: no, or a foreign, token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Denied {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
}

impl axum::response::IntoResponse for Denied {
    fn into_response(self) -> Response<Body> {
        match &self {
            Denied::Unauthorized(why) => error_response(StatusCode::UNAUTHORIZED, why),
            Denied::Forbidden(why) => error_response(StatusCode::FORBIDDEN, why),
        }
    }
}

fn authenticate(svc: &DestinationService, req: &Request) -> Result<Caller, Denied> {
    match caller_of(svc, req)? {
        (c, None) => Ok(c),
        (_, Some(why)) => Err(Denied::Unauthorized(format!("X-user-token rejected: {why}"))),
    }
}

/// The caller, and why its `X-user-token` is not trusted yet when neither
/// this UAA nor an identity provider of the tenant issued it: a destination
/// may still vouch for it with `x_user_token.jwks` / `x_user_token.jwks_uri`
/// ([`verify_by_destination_keys`]).
fn caller_of(svc: &DestinationService, req: &Request) -> Result<(Caller, Option<String>), Denied> {
    let deny = |status: StatusCode, why: String| {
        if status == StatusCode::FORBIDDEN {
            Denied::Forbidden(why)
        } else {
            Denied::Unauthorized(why)
        }
    };
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(token) = auth.and_then(bearer) else {
        return Err(deny(
            StatusCode::UNAUTHORIZED,
            "Authorization: Bearer <token of the destination service binding> is required".into(),
        ));
    };
    let valid = match svc.state.uaa.validate(token) {
        Ok(v) => v,
        // ce25f2b: an IAS token of the subaccount's identity service
        // instance, "Authentication to the Destination service via IAS token
        // requires in addition mTLS".
        Err(r) => match ias_caller(svc, req, token) {
            Some(result) => return result,
            None => return Err(deny(StatusCode::UNAUTHORIZED, format!("Authorization token rejected: {r}"))),
        },
    };
    let cid = valid.claims.get("cid").and_then(Value::as_str).unwrap_or("");
    if cid != svc.state.client_id {
        return Err(deny(
            StatusCode::FORBIDDEN,
            format!(
                "Authorization token was issued to client {cid:?}, not to the destination service binding's client"
            ),
        ));
    }
    let tenant = subdomain_of(&valid.claims);
    let zid = valid.claims.get("zid").and_then(Value::as_str).unwrap_or("").to_string();
    let user_token = x_user_token(req);
    let (exchange_tenant, untrusted) = match &user_token {
        Some(ut) => user_token_tenant(svc, ut, &tenant)?,
        None => (tenant.clone(), None),
    };
    if untrusted.is_some() {
        return Ok((Caller { tenant, zid, exchange_tenant, user_token }, untrusted));
    }
    // Without X-user-token, an Authorization token that carries a user (the
    // destination client's token from a jwt-bearer exchange) is the user's
    // token: the "user exchange" form of 39d4265, as the Cloud SDK uses it.
    let user_token = user_token.or_else(|| valid.claims.contains_key("user_name").then(|| token.to_string()));
    Ok((Caller { tenant, zid, exchange_tenant, user_token }, None))
}

/// The tenant subdomain of one of this UAA's tokens (`ext_attr.zdn`).
fn subdomain_of(claims: &serde_json::Map<String, Value>) -> String {
    claims.get("ext_attr").and_then(|e| e.get("zdn")).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Where the `X-user-token` `ut` of a caller of `tenant` is exchanged, or
/// why it is not trusted yet. This UAA's token names a user (the principal
/// claims of PP-2) and is exchanged at its own tenant (TU-5); one of an
/// identity provider `tenant` trusts (an IAS user token) names a user and is
/// exchanged at `tenant`; any other waits for a destination's
/// `x_user_token` keys ([`verify_by_destination_keys`]).
fn user_token_tenant(svc: &DestinationService, ut: &str, tenant: &str) -> Result<(String, Option<String>), Denied> {
    let named = |claims: &serde_json::Map<String, Value>| {
        crate::rules::principal::principal(claims, crate::rules::principal::UserType::Business)
            .map(|_| ())
            .map_err(|e| Denied::Unauthorized(format!("X-user-token rejected: {e}")))
    };
    match svc.state.uaa.validate(ut) {
        Ok(v) => {
            named(&v.claims)?;
            Ok((subdomain_of(&v.claims), None))
        }
        Err(r) => match svc.state.uaa.validate_external(ut, tenant) {
            Ok((v, _)) => {
                named(&v.claims)?;
                Ok((tenant.to_string(), None))
            }
            Err(_) => Ok((tenant.to_string(), Some(r.to_string()))),
        },
    }
}

/// 283cd2d, e3c333f: `x_user_token.jwks` ("Base64-encoded JSON web key set,
/// containing the signing keys which are used to validate the JWT provided
/// in the X-User-Token header") or `x_user_token.jwks_uri` (the URI of such
/// a set) let a destination vouch for a user token no trusted issuer
/// signed: its signature must verify with those keys and its time claims
/// hold (`TV-1`..`TV-3` with the destination's keys as the only trust).
/// `x_user_token.header.typ`, when set, must be the token header's `typ`;
/// the page calls it "required when using user tokens which have not been
/// generated by XSUAA", but SAP Cloud SDK's destinations omit it, so its
/// absence is accepted (a choice).
async fn verify_by_destination_keys(
    svc: &DestinationService,
    d: &Destination,
    token: &str,
    untrusted: &str,
) -> Result<(), Denied> {
    let refuse = |why: String| Denied::Unauthorized(format!("X-user-token rejected: {untrusted}; {why}"));
    let jwks = match (d.get("x_user_token.jwks"), d.get("x_user_token.jwks_uri")) {
        (Some(b64), _) => {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| refuse(format!("x_user_token.jwks is not base64: {e}")))?;
            serde_json::from_slice::<jsonwebtoken::jwk::JwkSet>(&raw)
                .map_err(|e| refuse(format!("x_user_token.jwks is no JSON web key set: {e}")))?
        }
        (None, Some(uri)) => {
            svc.state.retriever.fetch_jwks(uri).await.map_err(|e| refuse(format!("x_user_token.jwks_uri: {e}")))?
        }
        (None, None) => {
            return Err(refuse("the destination names no x_user_token.jwks or x_user_token.jwks_uri".into()))
        }
    };
    let iss = crate::rules::token_validation::peek_claims(token)
        .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let trusted = crate::rules::token_validation::TrustedIssuer { issuer: iss, jwks, jwks_uri: None };
    let now = crate::tokens::unix_now() as i64;
    let valid = crate::rules::token_validation::validate(token, &[trusted], now)
        .map_err(|r| refuse(format!("with the destination's keys: {r}")))?;
    if let Some(typ) = d.get("x_user_token.header.typ") {
        let got = valid.header.get("typ").and_then(Value::as_str).unwrap_or("");
        if !got.eq_ignore_ascii_case(typ) {
            return Err(refuse(format!("header typ {got:?} is not x_user_token.header.typ {typ:?}")));
        }
    }
    crate::rules::principal::principal(&valid.claims, crate::rules::principal::UserType::Business)
        .map_err(|e| refuse(format!("it names no user: {e}")))?;
    Ok(())
}

/// The `X-user-token` of a request (a `Bearer ` prefix tolerated), when
/// present and not empty.
fn x_user_token(req: &Request) -> Option<String> {
    req.headers()
        .get("x-user-token")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_start_matches("Bearer ").trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The caller of an IAS access token (ce25f2b), or `None` when the token
/// is no IAS token at all. Its subaccount is its `app_tid` (7bf3c18: the
/// tenant of the application), which must trust its issuer; the
/// connection must have presented a client certificate the TLS layer
/// verified against the test CA (the page requires mTLS; it does not say
/// which certificate, so any the CA issued is taken: a choice). Which
/// audience the token needs is not on the page either: none is checked.
fn ias_caller(
    svc: &DestinationService,
    req: &Request,
    token: &str,
) -> Option<Result<(Caller, Option<String>), Denied>> {
    let claims = crate::rules::token_validation::peek_claims(token)?;
    let app_tid = claims.get("app_tid").and_then(Value::as_str)?.to_string();
    let tenant = svc.state.uaa.tenant_by_zid(&app_tid);
    let Some(tenant) = tenant else {
        return Some(Err(Denied::Unauthorized(format!(
            "Authorization token rejected: app_tid {app_tid:?} is no subaccount of this Destination service"
        ))));
    };
    let (valid, _) = match svc.state.uaa.validate_external(token, &tenant.subdomain) {
        Ok(v) => v,
        Err(r) => {
            return Some(Err(Denied::Unauthorized(format!(
            "Authorization token rejected: {r} (an IAS token must come from an identity provider subaccount {} trusts)",
            tenant.subdomain
        ))))
        }
    };
    if valid.claims.get("app_tid").and_then(Value::as_str) != Some(app_tid.as_str()) {
        return Some(Err(Denied::Unauthorized(
            "Authorization token rejected: app_tid changed under validation".into(),
        )));
    }
    let cert = req.extensions().get::<crate::http::ConnInfo>().and_then(|c| c.client_cert.clone());
    if cert.is_none() {
        return Some(Err(Denied::Unauthorized(
            "Authentication to the Destination service via IAS token requires in addition mTLS: present the identity instance's client certificate (ce25f2b)".into(),
        )));
    }
    // The X-user-token is judged as for a caller with the binding's token.
    let user_token = x_user_token(req);
    let (exchange_tenant, untrusted) = match &user_token {
        Some(ut) => match user_token_tenant(svc, ut, &tenant.subdomain) {
            Ok(x) => x,
            Err(d) => return Some(Err(d)),
        },
        None => (tenant.subdomain.clone(), None),
    };
    let caller = Caller { tenant: tenant.subdomain, zid: tenant.zid, exchange_tenant, user_token };
    Some(Ok((caller, untrusted)))
}

#[derive(Deserialize)]
struct FindQuery {
    #[serde(rename = "$skipTokenRetrieval", default)]
    skip_token_retrieval: Option<String>,
}

async fn find(
    State(svc): State<DestinationService>,
    Path(name): Path<String>,
    Query(q): Query<FindQuery>,
    req: Request,
) -> Response<Body> {
    find_at(svc, name, q, req, Where::default(), Api::Find).await
}

/// Which REST API answers: Find Destination (v1, `owner` at the top) or
/// Consume (v2, `owner` only under `$metadata` and only on request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Find,
    Consume { include_owner: bool },
}

/// Where a lookup looks: a level (none: instance, then subaccount, the Find
/// Destination order) of the caller's tenant or the provider's.
#[derive(Debug, Clone, Copy, Default)]
struct Where {
    level: Option<Level>,
    provider: bool,
}

#[derive(Deserialize)]
struct ConsumeQuery {
    #[serde(rename = "$skipTokenRetrieval", default)]
    skip_token_retrieval: Option<String>,
    #[serde(rename = "includeMetadata", default)]
    include_metadata: Option<String>,
}

/// The v2 "Consume a destination" API (78ba73a): `{name}@{level}` with
/// `subaccount`, `instance`, `provider_subaccount` or `provider_instance`,
/// no fallback between levels; the Find Destination answer without the
/// top-level `owner`, which `includeMetadata=owner` puts under
/// `destinationConfiguration.$metadata`. Without `@level` (the page says
/// the level must be given; SAP Cloud SDK for Python 0.62 omits it) the Find
/// Destination order applies — idprop's reading. Fragments as for v1
/// (`X-fragment-name: name@level`).
async fn consume(
    State(svc): State<DestinationService>,
    Path(raw): Path<String>,
    Query(q): Query<ConsumeQuery>,
    req: Request,
) -> Response<Body> {
    let (name, at) = match raw.split_once('@') {
        None => (raw.clone(), Where::default()),
        Some((n, level)) => {
            let at = match level {
                "subaccount" => Where { level: Some(Level::Subaccount), provider: false },
                "instance" => Where { level: Some(Level::Instance), provider: false },
                "provider_subaccount" => Where { level: Some(Level::Subaccount), provider: true },
                "provider_instance" => Where { level: Some(Level::Instance), provider: true },
                other => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "unknown level {other:?}: subaccount, instance, provider_subaccount or provider_instance"
                        ),
                    )
                }
            };
            (n.to_string(), at)
        }
    };
    let include_owner = q.include_metadata.as_deref().is_some_and(|m| m.split(',').any(|x| x.trim() == "owner"));
    let find_q = FindQuery { skip_token_retrieval: q.skip_token_retrieval };
    find_at(svc, name, find_q, req, at, Api::Consume { include_owner }).await
}

async fn get_subaccount(
    State(svc): State<DestinationService>,
    Path(name): Path<String>,
    req: Request,
) -> Response<Body> {
    match authenticate(&svc, &req) {
        Err(d) => axum::response::IntoResponse::into_response(d),
        Ok(c) => match svc.lookup(&c.tenant, &name, Some(Level::Subaccount)) {
            Some(e) => json_response(StatusCode::OK, &e.properties.to_json()),
            None => not_found(&name),
        },
    }
}

async fn get_instance(State(svc): State<DestinationService>, Path(name): Path<String>, req: Request) -> Response<Body> {
    match authenticate(&svc, &req) {
        Err(d) => axum::response::IntoResponse::into_response(d),
        Ok(c) => match svc.lookup(&c.tenant, &name, Some(Level::Instance)) {
            Some(e) => json_response(StatusCode::OK, &e.properties.to_json()),
            None => not_found(&name),
        },
    }
}

async fn list_subaccount(State(svc): State<DestinationService>, req: Request) -> Response<Body> {
    list(svc, req, Level::Subaccount)
}

/// `GET /saml2Metadata/certificate` (82dbeca: "Retrieve the active X.509
/// trust certificate"): the caller's subaccount's Destination Trust, PEM,
/// the file the cockpit's *Export* downloads. The TEST ONLY key is made on
/// first use.
async fn saml2_certificate(State(svc): State<DestinationService>, req: Request) -> Response<Body> {
    match destination_trust(&svc, &req) {
        Err(e) => axum::response::IntoResponse::into_response(e),
        Ok(signer) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/x-pem-file")
            .body(Body::from(signer.certificate_pem().to_string()))
            .expect("static response"),
    }
}

/// `GET /saml2Metadata`: the Destination Trust as SAML identity-provider
/// metadata (the entity id is the assertions' `Issuer`, 82dbeca's
/// "Assertion Entity ID"), for a target system to import.
async fn saml2_metadata(State(svc): State<DestinationService>, req: Request) -> Response<Body> {
    match destination_trust(&svc, &req) {
        Err(e) => axum::response::IntoResponse::into_response(e),
        Ok(signer) => {
            let b64: String = signer.certificate_pem().lines().filter(|l| !l.starts_with("-----")).collect();
            let xml = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor></md:IDPSSODescriptor></md:EntityDescriptor>"#,
                signer.entity_id()
            );
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/samlmetadata+xml")
                .body(Body::from(xml))
                .expect("static response")
        }
    }
}

/// Why the caller's Destination Trust cannot be given.
#[derive(Debug, thiserror::Error)]
enum TrustError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("unknown subaccount {0:?}")]
    NoTenant(String),
    #[error("Destination Trust: {0}")]
    Pki(#[from] crate::pki::PkiError),
}

impl axum::response::IntoResponse for TrustError {
    fn into_response(self) -> Response<Body> {
        match self {
            TrustError::Denied(d) => d.into_response(),
            TrustError::NoTenant(_) => json_response(StatusCode::NOT_FOUND, &json!({"ErrorMessage": self.to_string()})),
            TrustError::Pki(_) => {
                json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({"ErrorMessage": self.to_string()}))
            }
        }
    }
}

fn destination_trust(svc: &DestinationService, req: &Request) -> Result<crate::saml::SamlSigner, TrustError> {
    let caller = authenticate(svc, req)?;
    let tenant = svc.state.uaa.tenant(&caller.tenant).ok_or(TrustError::NoTenant(caller.tenant))?;
    Ok(svc.state.uaa.destination_trust(&tenant)?)
}

async fn list_instance(State(svc): State<DestinationService>, req: Request) -> Response<Body> {
    list(svc, req, Level::Instance)
}

fn list(svc: DestinationService, req: Request, level: Level) -> Response<Body> {
    match authenticate(&svc, &req) {
        Err(d) => axum::response::IntoResponse::into_response(d),
        Ok(c) => {
            let all: Vec<Value> = svc.visible(&c.tenant, Some(level)).iter().map(|e| e.properties.to_json()).collect();
            json_response(StatusCode::OK, &Value::Array(all))
        }
    }
}

/// 404 with the Destination service's own message, exactly: clients (SAP
/// Cloud SDK for JavaScript) recognise "not found" by it.
fn not_found(name: &str) -> Response<Body> {
    let mut r = json_response(
        StatusCode::NOT_FOUND,
        &json!({"ErrorMessage": "Configuration with the specified name was not found"}),
    );
    r.extensions_mut().insert(crate::http::Note(format!("no destination {name:?}")));
    r
}

/// Find Destination (v1) or Consume (v2), as `api` says.
async fn find_at(
    svc: DestinationService,
    name: String,
    q: FindQuery,
    req: Request,
    at: Where,
    api: Api,
) -> Response<Body> {
    let (mut caller, untrusted_user_token) = match caller_of(&svc, &req) {
        Ok(c) => c,
        Err(d) => return axum::response::IntoResponse::into_response(d),
    };
    if at.provider {
        let Some(provider) = svc.state.uaa.config().tenants.first().cloned() else {
            return not_found(&name);
        };
        caller.tenant = provider.subdomain;
        caller.zid = provider.zid;
    }
    let Some(mut entry) = svc.lookup(&caller.tenant, &name, at.level) else {
        return not_found(&name);
    };
    // FR-1..FR-3: fragments extend the destination before anything else
    // reads it, token retrieval included (f56600a).
    let applied = match fragments_of(&svc, &req, &caller.tenant, entry.level) {
        Ok(f) => f,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    if !applied.is_empty() {
        let refs: Vec<&Destination> = applied.iter().collect();
        entry.properties = crate::rules::fragments::merge(&entry.properties, &refs);
    }
    if let (Some(why), Some(ut)) = (&untrusted_user_token, caller.user_token.as_deref()) {
        if let Err(d) = verify_by_destination_keys(&svc, &entry.properties, ut, why).await {
            return axum::response::IntoResponse::into_response(d);
        }
    }
    let certificates = svc.state.certificates.read().expect("certificates lock").clone();
    let lookup_svc = svc.clone();
    let tenant = caller.tenant.clone();
    let lookup = move |n: &str| lookup_svc.lookup(&tenant, n, None).map(|e| e.properties);
    // The subaccount's Destination Trust signs SAML assertions; its key is
    // made on first use, so only a SAML destination asks for it.
    let trust = (entry.properties.get("Authentication") == Some("OAuth2SAMLBearerAssertion"))
        .then(|| svc.state.uaa.tenant(&caller.tenant).and_then(|t| svc.state.uaa.destination_trust(&t).ok()))
        .flatten();
    // DC-1: a predefined chain consumes its first destination, and its
    // token goes to the destination of the path (08a09f5: "only applicable
    // for requests to a Find a Destination REST API endpoint").
    let chain = match chain_of(&req) {
        Ok(c) => c,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if chain.is_some() && matches!(api, Api::Consume { .. }) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "X-chain-name: destination chains are only applicable to the Find a Destination API (08a09f5)",
        );
    }
    let step = match &chain {
        None => None,
        Some(c) => Some(chain_first_step(&svc, &caller, c, &certificates).await),
    };
    let mut tokens = request_tokens(&req, caller.user_token.as_deref());
    if let (Some(c), Some(Ok(t))) = (&chain, &step) {
        match c.handoff {
            crate::rules::chains::Handoff::UserToken => tokens.user_token = Some(t),
            crate::rules::chains::Handoff::SamlAssertion => tokens.saml_assertion = Some(t),
        }
    }
    let mut answer = if q.skip_token_retrieval.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        crate::retrieval::FindDestinationAnswer {
            owner: None,
            destination_configuration: entry.properties.clone(),
            auth_tokens: None,
            certificates: None,
        }
    } else {
        svc.state
            .retriever
            .find_destination(FindRequest {
                destination: &entry.properties,
                tenant: &caller.exchange_tenant,
                tokens,
                certificates: &certificates,
                lookup: Some(&lookup),
                saml_signer: trust.as_ref(),
            })
            .await
    };
    if let (Some(c), Some(Err(e))) = (&chain, &step) {
        // The chain's first step failed: the path destination is returned
        // with the failure as its token error (FD-4's shape; the pages give
        // no other).
        answer.auth_tokens = Some(vec![crate::rules::AuthToken::error(
            crate::rules::ErrorCode::Other,
            format!("destination chain {}, first step: {e}", c.name),
        )]);
    }
    let instance = (entry.level == Level::Instance).then(|| svc.state.instance_id.clone());
    answer.owner = Some(json!({"SubaccountId": caller.zid, "InstanceId": instance}));
    let used: Vec<Certificate> = entry
        .properties
        .get("tokenService.KeyStoreLocation")
        .and_then(|l| certificates.iter().find(|c| c.name == l).cloned())
        .into_iter()
        .collect();
    if !used.is_empty() && answer.auth_tokens.is_none() {
        answer.certificates = Some(used);
    }
    let mut v = serde_json::to_value(&answer).expect("answer serialises");
    if let Api::Consume { include_owner } = api {
        let owner = v.as_object_mut().and_then(|o| o.remove("owner")).unwrap_or(Value::Null);
        if include_owner {
            let fragments: Vec<Value> = applied
                .iter()
                .map(|f| {
                    json!({"FragmentName": f.get(FRAGMENT_NAME), "SubaccountId": owner["SubaccountId"],
                           "InstanceId": owner["InstanceId"]})
                })
                .collect();
            v["destinationConfiguration"]["$metadata"] = json!({"owner": {"destinations": [{
                "Name": entry.properties.name(),
                "SubaccountId": owner["SubaccountId"],
                "InstanceId": owner["InstanceId"],
            }], "fragments": fragments}});
        }
    }
    json_response(StatusCode::OK, &v)
}

/// The predefined chain a request names (`X-chain-name`, `X-chain-var-*`).
fn chain_of(req: &Request) -> Result<Option<crate::rules::chains::Chain>, crate::rules::RuleError> {
    let Some(name) = req.headers().get("x-chain-name").and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let var = |v: &str| {
        req.headers()
            .get(format!("x-chain-var-{}", v.to_ascii_lowercase()))
            .and_then(|x| x.to_str().ok())
            .map(str::to_string)
    };
    crate::rules::chains::chain(name, var).map(Some)
}

/// The first step of a chain: its destination (with its fragment) consumed
/// with the chain's token; the token it yields, or why none.
async fn chain_first_step(
    svc: &DestinationService,
    caller: &Caller,
    chain: &crate::rules::chains::Chain,
    certificates: &[Certificate],
) -> Result<String, String> {
    use crate::rules::chains::Input;
    let first = &chain.first;
    let entry = svc
        .lookup(&caller.tenant, &first.destination, None)
        .ok_or_else(|| format!("no destination {:?} in this subaccount", first.destination))?;
    let mut properties = entry.properties.clone();
    if let Some(f) = &first.fragment {
        match svc.fragment(&caller.tenant, f, entry.level) {
            Some(frag) => properties = crate::rules::fragments::merge(&properties, &[&frag]),
            None if first.fragment_optional => {}
            None => return Err(format!("no fragment {f:?} for {:?}", first.destination)),
        }
    }
    let mut tokens = crate::rules::RequestTokens::default();
    match &first.input {
        Input::UserToken(t) => tokens.user_token = Some(t),
        Input::SubjectToken { token, token_type } => {
            tokens.subject_token = Some(token);
            tokens.subject_token_type = Some(token_type);
        }
    }
    let answer = svc
        .state
        .retriever
        .find_destination(FindRequest {
            destination: &properties,
            tenant: &caller.exchange_tenant,
            tokens,
            certificates,
            lookup: None,
            saml_signer: None,
        })
        .await;
    let token = answer.auth_tokens.and_then(|t| t.into_iter().next()).ok_or("its destination yields no token")?;
    match token.error {
        Some(e) => Err(format!("{:?}: {e}", first.destination)),
        None => Ok(token.value),
    }
}

/// The caller's tokens in the request's headers (`X-refresh-token`, bff0136;
/// `X-subject-token`/`-type`, f4d28ea; `X-client-assertion`/`-type`,
/// 6c98d97; `X-client-assertion-destination-name`, 1c34472; SAP Cloud SDK
/// for Python's `X-actor-token`/`-type` and `X-samlAssertion`). Header
/// names are case-insensitive (RFC 9110 §5.1), so the pages' `X-Subject-Token`
/// is the same header.
fn request_tokens<'r>(req: &'r Request, user_token: Option<&'r str>) -> crate::rules::RequestTokens<'r> {
    crate::rules::RequestTokens::from_headers(user_token, |n| req.headers().get(n).and_then(|v| v.to_str().ok()))
}

/// The fragments a request asks for (`X-fragment-name`, `X-fragment-optional`),
/// found at their level (the destination's unless `@subaccount`/`@instance`
/// says otherwise) in the destination's tenant. A missing fragment that is
/// not optional fails the lookup: f56600a says only "the request will
/// fail"; idprop answers 404 (`FR-3`, a choice: the status of a resource
/// not found) naming the fragment.
fn fragments_of(
    svc: &DestinationService,
    req: &Request,
    tenant: &str,
    level: Level,
) -> Result<Vec<Destination>, FragmentError> {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let wanted = crate::rules::fragments::request(header("x-fragment-name"), header("x-fragment-optional"))
        .map_err(|e| FragmentError::Bad(e.to_string()))?;
    let Some(wanted) = wanted else { return Ok(Vec::new()) };
    let mut found = Vec::new();
    for (name, at) in &wanted.names {
        let level = match at.as_deref() {
            None => level,
            Some("subaccount") => Level::Subaccount,
            Some("instance") => Level::Instance,
            Some(other) => {
                return Err(FragmentError::Bad(format!(
                    "X-fragment-name {name}@{other}: the level must be subaccount or instance"
                )))
            }
        };
        match svc.fragment(tenant, name, level) {
            Some(f) => found.push(f),
            None if wanted.optional => {}
            None => return Err(FragmentError::Missing(name.clone())),
        }
    }
    Ok(found)
}

/// Why the fragments a lookup asks for cannot be applied.
#[derive(Debug, thiserror::Error)]
enum FragmentError {
    #[error("{0}")]
    Bad(String),
    #[error("Fragment with the specified name was not found: {0}")]
    Missing(String),
}

impl axum::response::IntoResponse for FragmentError {
    fn into_response(self) -> Response<Body> {
        match self {
            FragmentError::Bad(m) => error_response(StatusCode::BAD_REQUEST, &m),
            FragmentError::Missing(_) => {
                json_response(StatusCode::NOT_FOUND, &json!({"ErrorMessage": self.to_string()}))
            }
        }
    }
}

/// The fragment `idprop up` serves with no configuration: f56600a's use,
/// a property added to whatever destination asks for it.
pub fn default_fragments() -> Vec<DestinationEntry> {
    vec![DestinationEntry::new(Destination(
        [(FRAGMENT_NAME, "example-fragment"), ("URL.queries.sap-client", "100")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))]
}

/// The destinations `idprop up` serves with no configuration: one of every
/// authentication type, the seed's `technical-user-example` among them.
pub fn default_destinations(uaa_domain: &str) -> Vec<DestinationEntry> {
    let uaa_common = format!("https://{uaa_domain}/oauth/token");
    let (app_id, app_secret) = crate::uaa::APP_CLIENT;
    let mk = |pairs: &[(&str, &str)]| {
        DestinationEntry::new(Destination(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    };
    vec![
        // The seed's example (8634e21), its token server under `.test`.
        mk(&[
            ("Name", "technical-user-example"),
            ("Type", "HTTP"),
            ("URL", "http://protected-url.example.test"),
            ("ProxyType", "OnPremise"),
            ("Authentication", "OAuth2TechnicalUserPropagation"),
            ("clientId", "clientId"),
            ("clientSecret", "secret1234"),
            ("tokenServiceURL", "https://authserver.example.test/oauth/token"),
        ]),
        // Technical user propagation with a token of the tenant's UAA: the
        // Cloud Connector validates it like a user's (set-up-trust-a4ee70f),
        // so it must come from a trusted issuer.
        mk(&[
            ("Name", "technical-user-uaa"),
            ("Type", "HTTP"),
            ("URL", "http://protected-url.example.test"),
            ("ProxyType", "OnPremise"),
            ("Authentication", "OAuth2TechnicalUserPropagation"),
            ("clientId", app_id),
            ("clientSecret", app_secret),
            ("tokenServiceURL", &uaa_common),
            ("tokenServiceURLType", "Common"),
        ]),
        mk(&[
            ("Name", "client-credentials-example"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2ClientCredentials"),
            ("clientId", app_id),
            ("clientSecret", app_secret),
            ("tokenServiceURL", &uaa_common),
            ("tokenServiceURLType", "Common"),
        ]),
        mk(&[
            ("Name", "jwt-bearer-example"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2JWTBearer"),
            ("clientId", app_id),
            ("clientSecret", app_secret),
            ("tokenServiceURL", &uaa_common),
            ("tokenServiceURLType", "Common"),
        ]),
        mk(&[
            ("Name", "user-token-exchange-example"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2UserTokenExchange"),
            ("clientId", app_id),
            ("clientSecret", app_secret),
            ("tokenServiceURL", &uaa_common),
            ("tokenServiceURLType", "Common"),
        ]),
        mk(&[
            ("Name", "password-example"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2Password"),
            ("clientId", app_id),
            ("clientSecret", app_secret),
            ("User", "alice"),
            ("Password", "alice-password"),
            ("tokenServiceURL", &uaa_common),
            ("tokenServiceURLType", "Common"),
        ]),
        // Seed 000's application, called with the user's identity by a
        // SAML 2.0 bearer assertion the Destination service generates and
        // signs with the subaccount's Destination Trust, which the tenant's
        // UAA trusts (82dbeca). The audience is the tenant's SAML entity id.
        DestinationEntry {
            tenant: Some("mytenant".into()),
            ..mk(&[
                ("Name", "saml-bearer-example"),
                ("Type", "HTTP"),
                ("URL", "https://app.example.test"),
                ("ProxyType", "Internet"),
                ("Authentication", "OAuth2SAMLBearerAssertion"),
                ("audience", &format!("mytenant.{uaa_domain}")),
                ("clientKey", app_id),
                ("tokenServiceUser", app_id),
                ("tokenServicePassword", app_secret),
                ("tokenServiceURL", &format!("https://mytenant.{uaa_domain}/oauth/token")),
                ("tokenServiceURLType", "Dedicated"),
                ("authnContextClassRef", "urn:oasis:names:tc:SAML:2.0:ac:classes:PreviousSession"),
            ])
        },
        // The caller brings the token to exchange (bff0136, f4d28ea):
        // `X-refresh-token`, or `X-subject-token` and `X-subject-token-type`.
        mk(&[
            ("Name", "refresh-token-example"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2RefreshToken"),
            ("clientId", app_id),
            ("clientSecret", app_secret),
            ("tokenServiceURL", &uaa_common),
            ("tokenServiceURLType", "Common"),
        ]),
        mk(&[
            ("Name", "token-exchange-example"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2TokenExchange"),
            ("clientId", "exchange-client"),
            ("clientSecret", "exchange-secret"),
            ("tokenServiceURL", "https://authserver.example.test/oauth/token"),
        ]),
        // Seed 000's application by client credentials (a technical
        // identity with the client's authorities) and by jwt-bearer (the
        // named user with the user's scopes).
        mk(&[
            ("Name", "app-client-credentials"),
            ("Type", "HTTP"),
            ("URL", "https://app.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2ClientCredentials"),
            ("clientId", app_id),
            ("clientSecret", app_secret),
            ("tokenServiceURL", &uaa_common),
            ("tokenServiceURLType", "Common"),
        ]),
        mk(&[
            ("Name", "app-jwt-bearer"),
            ("Type", "HTTP"),
            ("URL", "https://app.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2JWTBearer"),
            ("clientId", app_id),
            ("clientSecret", app_secret),
            ("tokenServiceURL", &uaa_common),
            ("tokenServiceURLType", "Common"),
            // e3c333f: where a user token without `jku` (an IAS token) is
            // verified; SAP Cloud SDK for JavaScript insists on it.
            ("x_user_token.jwks_uri", "https://mytenant.accounts.idp.test/oauth2/certs"),
        ]),
        mk(&[
            ("Name", "onpremise-token-service-example"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "OAuth2ClientCredentials"),
            ("clientId", "onprem-client"),
            ("clientSecret", "onprem-secret"),
            ("tokenServiceURL", "http://oauth.onprem.test/oauth/token"),
            ("tokenServiceURL.ProxyType", "OnPremise"),
        ]),
        mk(&[
            ("Name", "principal-propagation-example"),
            ("Type", "HTTP"),
            ("URL", "http://erp.onprem.test:44300"),
            ("ProxyType", "OnPremise"),
            ("Authentication", "PrincipalPropagation"),
        ]),
        mk(&[
            ("Name", "basic-example"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "BasicAuthentication"),
            ("User", "test"),
            ("Password", "pass12345"),
        ]),
        mk(&[
            ("Name", "no-auth-example"),
            ("Type", "HTTP"),
            ("URL", "https://api.example.test"),
            ("ProxyType", "Internet"),
            ("Authentication", "NoAuthentication"),
        ]),
    ]
}
