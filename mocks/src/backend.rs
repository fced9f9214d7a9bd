//! The mock on-premise system behind the Cloud Connector: it tells who it
//! saw. Every path under `/echo/` answers with the request's method, path,
//! query, headers, `Authorization` and client certificate; other paths can
//! be scripted.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Response, StatusCode};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::{cert_info, error_response, json_response, ConnInfo};

/// Host name of the backend inside the "on-premise network".
pub const INTERNAL_HOST: &str = "erp.internal.test";

/// A scripted answer for one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// Path prefixes on which the HTTPS listener demands a client
    /// certificate of the Cloud Connector's CA.
    pub mtls_paths: Vec<String>,
    pub responses: Vec<CannedResponse>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self { mtls_paths: vec!["/".into()], responses: Vec::new() }
    }
}

/// The mock on-premise backend.
#[derive(Clone, Debug)]
pub struct Backend {
    config: Arc<RwLock<BackendConfig>>,
}

impl Backend {
    pub fn new(config: BackendConfig) -> Self {
        Self { config: Arc::new(RwLock::new(config)) }
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
    json_response(StatusCode::OK, &echo(&req, &info))
}

/// The echo document. External checks rely on these names.
fn echo(req: &Request, info: &ConnInfo) -> Value {
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let query: BTreeMap<String, String> =
        req.uri().query().map(|q| crate::http::decode_pairs(q.as_bytes()).into_iter().collect()).unwrap_or_default();
    // A certificate over TLS, else the one a reverse proxy (the Cloud
    // Connector over plain HTTP) puts in `SSL_CLIENT_CERT`.
    let cert = info.client_cert.clone().or_else(|| {
        let pem = req.headers().get("ssl_client_cert")?.to_str().ok()?;
        let der = pem::parse(pem.replace("\\n", "\n")).ok()?;
        cert_info(der.contents())
    });
    json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": query,
        "headers": headers,
        "authorization": req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
        "client_cert": cert,
    })
}
