//! The mock on-premise system behind the Cloud Connector: it tells who it
//! saw. Every path under `/echo/` answers with the request's method, path,
//! query, headers, `Authorization` and certificates; other paths can be
//! scripted.
//!
//! It logs users on as an ABAP ICM does (configure-identity-propagation-
//! for-https-a8bb87a.md, [`rules::backend_logon`](crate::rules::backend_logon)):
//! `SSL_CLIENT_CERT` counts only when the TLS client certificate is a trusted
//! reverse proxy's (a Cloud Connector's system certificate); anyone else who
//! sends it gets 403.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Response, StatusCode};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::{cert_info, error_response, json_response, ConnInfo, Note};
use crate::journal::ClientCertInfo;
use crate::rules::backend_logon::{self, Logon, TrustedProxy};

/// Host name of the backend inside the "on-premise network".
pub const INTERNAL_HOST: &str = "erp.internal.test";

/// A scripted answer for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CannedResponse {
    pub path: String,
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub body: String,
    #[serde(default = "json_type")]
    pub content_type: String,
}

fn ok() -> u16 {
    200
}

fn json_type() -> String {
    "application/json".into()
}

/// Configuration of the backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// Path prefixes on which the HTTPS listener demands a client
    /// certificate of the Cloud Connector's CA.
    pub mtls_paths: Vec<String>,
    pub responses: Vec<CannedResponse>,
    /// `icm/trusted_reverse_proxy_<x>`: whose `SSL_CLIENT_CERT` is believed.
    /// Every Cloud Connector's system certificate of the stack when absent.
    pub trusted_reverse_proxies: Option<Vec<TrustedProxy>>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self { mtls_paths: vec!["/".into()], responses: Vec::new(), trusted_reverse_proxies: None }
    }
}

/// The mock on-premise backend.
#[derive(Clone, Debug)]
pub struct Backend {
    config: Arc<RwLock<BackendConfig>>,
    trusted: Arc<Vec<TrustedProxy>>,
}

impl Backend {
    /// A backend trusting `config.trusted_reverse_proxies`, or `default_trusted`
    /// when the config names none.
    pub fn new(config: BackendConfig, default_trusted: Vec<TrustedProxy>) -> Self {
        let trusted = config.trusted_reverse_proxies.clone().unwrap_or(default_trusted);
        Self { config: Arc::new(RwLock::new(config)), trusted: Arc::new(trusted) }
    }

    /// The reverse proxies this backend trusts.
    pub fn trusted_reverse_proxies(&self) -> &[TrustedProxy] {
        &self.trusted
    }

    /// Adds (or replaces) a canned response.
    pub fn respond(&self, r: CannedResponse) {
        let mut c = self.config.write().expect("backend config");
        c.responses.retain(|x| x.path != r.path);
        c.responses.push(r);
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }
}

async fn handle(State(b): State<Backend>, req: Request) -> Response<Body> {
    let info = req.extensions().get::<ConnInfo>().cloned().unwrap_or_default();
    let path = req.uri().path().to_string();
    let config = b.config.read().expect("backend config").clone();
    if info.tls && info.client_cert.is_none() && config.mtls_paths.iter().any(|p| path.starts_with(p.as_str())) {
        return error_response(StatusCode::FORBIDDEN, &format!("client certificate required for {path}"));
    }
    let handshake = info.client_cert.as_ref().map(|c| (c.subject.as_str(), c.issuer.as_str()));
    let header = match ssl_client_cert_header(&req) {
        Ok(h) => h,
        Err(why) => return error_response(StatusCode::BAD_REQUEST, why),
    };
    let logon = match backend_logon::logon(&b.trusted, handshake, header.as_deref()) {
        Ok(l) => l,
        Err(why) => {
            let mut r = error_response(StatusCode::FORBIDDEN, &why.to_string());
            r.extensions_mut().insert(Note(format!("refused: {why}")));
            return r;
        }
    };
    if let Some(c) = config.responses.iter().find(|c| c.path == path) {
        return Response::builder()
            .status(StatusCode::from_u16(c.status).unwrap_or(StatusCode::OK))
            .header(header::CONTENT_TYPE, c.content_type.as_str())
            .body(Body::from(c.body.clone()))
            .expect("valid canned response");
    }
    if !path.starts_with("/echo/") && path != "/echo" {
        return error_response(StatusCode::NOT_FOUND, &format!("no such resource {path} (try /echo/…)"));
    }
    // The header's certificate was decoded once, by the logon decision.
    let (ssl, logged_on) = match logon {
        Logon::Header(der) => {
            let c = cert_info(&der);
            (c.clone(), c)
        }
        Logon::Handshake => (None, info.client_cert.clone()),
        Logon::Anonymous => (None, None),
    };
    let mut r = json_response(StatusCode::OK, &echo(&req, &info, ssl, logged_on.clone()));
    if let Some(c) = logged_on {
        r.extensions_mut().insert(Note(format!("logged on {} by certificate", c.subject)));
    }
    r
}

/// The one `SSL_CLIENT_CERT` header, if any; two are refused (whose
/// identity would be meant?).
fn ssl_client_cert_header(req: &Request) -> Result<Option<String>, &'static str> {
    let mut values = req.headers().get_all("ssl_client_cert").iter();
    let first = values.next().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if values.next().is_some() {
        return Err("SSL_CLIENT_CERT appears more than once");
    }
    Ok(first)
}

/// The echo document. External checks rely on these names: `client_cert` is
/// the certificate the user was logged on with, `tls_client_cert` the one of
/// the handshake, `ssl_client_cert` the header's (`null` when absent or empty).
fn echo(
    req: &Request,
    info: &ConnInfo,
    ssl_client_cert: Option<ClientCertInfo>,
    logged_on: Option<ClientCertInfo>,
) -> Value {
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let query: BTreeMap<String, String> =
        req.uri().query().map(|q| crate::http::decode_pairs(q.as_bytes()).into_iter().collect()).unwrap_or_default();
    json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": query,
        "headers": headers,
        "authorization": req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
        "client_cert": logged_on,
        "tls_client_cert": info.client_cert,
        "ssl_client_cert": ssl_client_cert,
    })
}
