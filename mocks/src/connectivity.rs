//! The mock Connectivity proxy: the plain-HTTP forward proxy of the
//! `connectivity` binding (`onpremise_proxy_host`/`onpremise_proxy_http_port`)
//! in front of the Cloud Connectors.
//!
//! Order of checks, each a refusal with a reason and nothing sent on:
//! HTTPS/`CONNECT` (405, `CP-3`), `Proxy-Authorization` (407, `CP-1`),
//! location (503, `CP-2`), mapping and path (403), identity headers
//! (400/401, `TP-2`, `TV-*`). Only then is the backend called (`CP-4`:
//! without `Proxy-Authorization` and `SAP-Connectivity-*`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::Router;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::connector::{CloudConnector, Credentials, Identity, Refusal};
use crate::http::{bearer, error_response, serve_connection_limited, BufferedBody, ConnInfo, Note, ServerHandle};
use crate::rules::principal::UserType;
use crate::serve::Lifecycle;
use crate::tokens::unix_now;
use crate::uaa::MockUaa;

use crate::rules::connectivity as cp;
pub use crate::rules::connectivity::{H_LOCATION, H_TECHNICAL, H_USER, MAX_HEAD_BYTES};

struct Inner {
    uaa: MockUaa,
    client_id: String,
    connectors: HashMap<String, Arc<CloudConnector>>,
}

/// The Connectivity proxy and its connectors.
#[derive(Clone)]
pub struct ConnectivityProxy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConnectivityProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectivityProxy").finish_non_exhaustive()
    }
}

impl ConnectivityProxy {
    /// A proxy accepting tokens the `uaa` issued to `client_id`.
    pub fn new(uaa: MockUaa, client_id: &str, connectors: Vec<CloudConnector>) -> Self {
        let connectors = connectors.into_iter().map(|c| (c.config().location_id.clone(), Arc::new(c))).collect();
        Self { inner: Arc::new(Inner { uaa, client_id: client_id.into(), connectors }) }
    }

    pub fn connector(&self, location_id: &str) -> Option<Arc<CloudConnector>> {
        self.inner.connectors.get(location_id).cloned()
    }

    pub fn connectors(&self) -> Vec<Arc<CloudConnector>> {
        let mut v: Vec<_> = self.inner.connectors.values().cloned().collect();
        v.sort_by(|a, b| a.config().location_id.cmp(&b.config().location_id));
        v
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// Serves `router` (the journalled proxy router) on `listener`: plain
    /// HTTP only, heads capped at [`MAX_HEAD_BYTES`], a TLS handshake
    /// answered with a plain-text 405, a silent client closed after the
    /// handshake timeout.
    pub fn spawn(listener: TcpListener, router: Router, life: Lifecycle) -> ServerHandle {
        let l = life.clone();
        crate::serve::listen(listener, life, "the Connectivity proxy", move |mut stream| {
            let router = router.clone();
            let life = l.clone();
            async move {
                let mut first = [0u8; 1];
                let peeked = tokio::time::timeout(life.limits.tls_handshake(), stream.peek(&mut first)).await;
                match peeked {
                    Ok(Ok(1)) if first[0] == 0x16 => {
                        let body =
                            "the Connectivity proxy speaks plain HTTP; send http:// requests to it (HTTPS refused)\n";
                        let resp = format!(
                            "HTTP/1.1 405 Method Not Allowed\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        // Drain what the client sent so closing is not a reset.
                        let mut sink = [0u8; 4096];
                        let _ = tokio::time::timeout(std::time::Duration::from_millis(50), async {
                            use tokio::io::AsyncReadExt;
                            let _ = stream.read(&mut sink).await;
                        })
                        .await;
                        let _ = stream.write_all(resp.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                    Ok(Ok(n)) if n > 0 => {
                        let info = ConnInfo::default();
                        serve_connection_limited(stream, router, info, Some(MAX_HEAD_BYTES), &life).await;
                    }
                    // Closed, failed, or silent for too long.
                    _ => {}
                }
            }
        })
    }
}

fn refuse(status: u16, reason: &str) -> Response<Body> {
    let mut r = error_response(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), reason);
    if status == 407 {
        r.headers_mut().insert(header::PROXY_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"connectivity\""));
    }
    r
}

fn refusal(r: Refusal) -> Response<Body> {
    refuse(r.status, &r.reason)
}

/// The Connectivity instance's id (the binding's `instance_guid`).
pub fn instance_guid() -> String {
    crate::identity::stable_uuid("connectivity-instance")
}

/// The claims of an IAS proxy token (`CP-6`), or why it is none (appended
/// to the UAA's reason).
fn ias_proxy_claims(proxy: &ConnectivityProxy, token: &str) -> Result<serde_json::Map<String, Value>, String> {
    let app_tid = crate::rules::token_validation::peek_claims(token)
        .and_then(|c| c.get("app_tid").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(String::new)?;
    let tenant = proxy.inner.uaa.tenant_by_zid(&app_tid).ok_or_else(String::new)?;
    let (valid, _) =
        proxy.inner.uaa.validate_external(token, &tenant.subdomain).map_err(|r| format!("; as an IAS token: {r}"))?;
    if !cp::ias_proxy_token_ok(&valid.claims, &instance_guid()) {
        return Err(format!(
            "; an IAS token must be requested with resource={} (313b215)",
            cp::ias_resource(&instance_guid())
        ));
    }
    Ok(valid.claims)
}

async fn handle(State(proxy): State<ConnectivityProxy>, req: Request) -> Response<Body> {
    // Only the head is needed (the journal layer buffered the body).
    let (req, _) = req.into_parts();
    // CP-3: plain HTTP only.
    if !cp::plain_http(req.method.as_str(), req.uri.scheme_str()) {
        return refuse(405, "the Connectivity proxy speaks plain HTTP: send http:// URLs (no CONNECT, no HTTPS)");
    }
    let Some(host) = req.uri.host().map(str::to_ascii_lowercase) else {
        return refuse(400, "not a proxy request: the request line must carry an absolute http:// URL");
    };
    let port = req.uri.port_u16().unwrap_or(80);
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);

    // CP-1: the proxy token of the connectivity binding.
    let Some(proxy_token) = header("proxy-authorization").as_deref().and_then(bearer).map(str::to_string) else {
        return refuse(407, "Proxy-Authorization: Bearer <token of the connectivity binding> is required");
    };
    let (proxy_claims, ias) = match proxy.inner.uaa.validate(&proxy_token) {
        Ok(v) => (v.claims, false),
        // CP-6: an IAS token of an IAS tenant the subaccount (its `app_tid`)
        // trusts, requested for the Connectivity instance.
        Err(e) => match ias_proxy_claims(&proxy, &proxy_token) {
            Ok(c) => (c, true),
            Err(ias_reason) => {
                return refuse(407, &format!("Proxy-Authorization token rejected: {e}{ias_reason}"));
            }
        },
    };
    if !ias && !cp::proxy_token_client_ok(&proxy_claims, &proxy.inner.client_id) {
        let cid = proxy_claims.get("cid").and_then(Value::as_str).unwrap_or("");
        return refuse(
            407,
            &format!(
                "Proxy-Authorization token was issued to client {cid:?}, not to the connectivity binding's client"
            ),
        );
    }

    // CP-2: the location selects the connector.
    let location_header = header(H_LOCATION);
    let location = cp::location(location_header.as_deref()).to_string();
    let Some(connector) = proxy.connector(&location) else {
        return refuse(503, &format!("no Cloud Connector is connected for location id {location:?}"));
    };
    // The path is judged and forwarded normalised: what was checked is what
    // the backend gets.
    let path = match crate::rules::paths::normalise(req.uri.path()) {
        Ok(p) => p,
        Err(e) => return refuse(400, &format!("Cloud Connector: {e}")),
    };
    let mapping = match connector.route(&host, port, &path) {
        Ok(m) => m.clone(),
        Err(r) => return refusal(r),
    };

    // The identity to propagate: one header of each kind at most.
    for h in [H_USER, H_TECHNICAL, "proxy-authorization"] {
        if req.headers.get_all(h).iter().count() > 1 {
            return refuse(400, &format!("{h} appears more than once: whose identity is meant is ambiguous"));
        }
    }
    let user = header(H_USER);
    let technical = header(H_TECHNICAL);
    // CP-5: a user exchange token carries the user by itself; never an IAS
    // token (f3c1ef4: "If IAS tokens are used, they can only be provided via
    // the SAP-Connectivity-Authentication header").
    let exchanged = !ias && cp::carries_user(&proxy_claims);
    let creds = Credentials {
        user: user.as_deref(),
        technical: technical.as_deref(),
        exchanged_user: exchanged.then_some(&proxy_claims),
    };
    let identity = match connector.propagate(creds, unix_now() as i64).await {
        Ok(i) => i,
        Err(r) => return refusal(r),
    };

    // CP-4: none of the proxy's own headers go on; with propagation the
    // application's Authorization does not either (TP-2).
    let propagated = !matches!(identity, Identity::None);
    let dropped_authorization = propagated && req.headers.contains_key(header::AUTHORIZATION);
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(k, _)| cp::forwarded(k.as_str(), propagated))
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = req.extensions.get::<BufferedBody>().map(|b| b.0.clone()).unwrap_or_default();
    let path_and_query = match req.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let method = reqwest::Method::from_bytes(req.method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    let note = match &identity {
        Identity::Propagated(m) if m.user_type == UserType::Technical => {
            format!("technical user propagation as {} ({})", m.subject, m.principal)
        }
        Identity::Propagated(m) => format!("principal propagation as {} ({})", m.subject, m.principal),
        Identity::None => "no identity propagation".to_string(),
    };
    let note = if dropped_authorization { format!("{note}; application's Authorization dropped (TP-2)") } else { note };
    let (resp, sent) = match connector.forward(&mapping, &identity, method, &path_and_query, headers, body).await {
        Ok(r) => r,
        Err(r) => return refusal(r),
    };
    let note = if sent.is_empty() { note } else { format!("{note}; {sent}") };
    let mut out = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if cp::returned(k.as_str()) {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut r = out.body(Body::from(bytes)).unwrap_or_else(|_| refuse(502, "bad backend answer"));
    r.extensions_mut().insert(Note(note));
    r
}
