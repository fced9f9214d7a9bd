//! Serving plumbing shared by every mock: listeners on loopback, connections
//! served by hyper (plain or TLS), the journal layer, and small HTTP helpers.
//!
//! Every mock is an axum `Router`. The same router is served on its own
//! loopback port and, in-process, behind the gateway's virtual host names, so
//! a request is journalled once whichever way it came.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, Response, StatusCode};
use axum::middleware::Next;
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use crate::authorization::{bearer, parse_basic};
use crate::journal::{now_ms, ClientCertInfo, Component, Journal, JournalEntry};
use crate::serve::Lifecycle;
pub use crate::serve::ServerHandle;

/// What the connection a request came on knows: TLS or not, the client
/// certificate, the peer.
#[derive(Debug, Clone, Default)]
pub struct ConnInfo {
    pub tls: bool,
    pub client_cert: Option<ClientCertInfo>,
    /// The virtual host of a `CONNECT` tunnel this request came through.
    pub tunnel_host: Option<String>,
    /// How long the client may take to send the body (the stack's limit).
    pub body_read: Option<std::time::Duration>,
}

/// Put in a response's extensions: the connection is closed without sending
/// it (a token server scripted to "hang up").
#[derive(Debug, Clone, Copy)]
pub struct CloseConnection;

/// Put in a response's extensions: a note for the journal (why a mock refused).
#[derive(Debug, Clone)]
pub struct Note(pub String);

/// The error a service returns to make hyper drop the connection unanswered.
#[derive(Debug, thiserror::Error)]
#[error("connection closed on purpose")]
pub(crate) struct ClosedOnPurpose;

/// Binds `addr` (loopback unless the caller decided otherwise).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(addr).await?;
    Ok(l)
}

/// Serves `router` on `listener`, TLS-terminated when `tls` is given, under
/// the stack's limits (handshake, header and body timeouts; connection cap).
pub fn spawn_server(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    life: Lifecycle,
) -> ServerHandle {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let l = life.clone();
    crate::serve::listen(listener, life, "this listener", move |stream| {
        let router = router.clone();
        let acceptor = acceptor.clone();
        let life = l.clone();
        async move {
            match acceptor {
                None => {
                    let info = ConnInfo::default();
                    serve_connection(stream, router, info, &life).await;
                }
                Some(acc) => {
                    let Ok(Ok(tls)) = tokio::time::timeout(life.limits.tls_handshake(), acc.accept(stream)).await
                    else {
                        return;
                    };
                    let info = tls_conn_info(tls.get_ref().1);
                    serve_connection(tls, router, info, &life).await;
                }
            }
        }
    })
}

/// Builds the `ConnInfo` of a finished TLS handshake.
pub fn tls_conn_info(conn: &rustls::ServerConnection) -> ConnInfo {
    let der = conn.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
    ConnInfo { tls: true, client_cert: der.as_deref().and_then(cert_info), tunnel_host: None, body_read: None }
}

/// Subject, issuer and validity of a DER certificate.
pub fn cert_info(der: &[u8]) -> Option<ClientCertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).map(str::to_string);
    let rfc3339 = |t: x509_parser::time::ASN1Time| {
        t.to_datetime().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    };
    Some(ClientCertInfo {
        subject: rfc4514(cert.subject()),
        cn,
        issuer: rfc4514(cert.issuer()),
        not_before: rfc3339(cert.validity().not_before),
        not_after: rfc3339(cert.validity().not_after),
    })
}

/// RFC 4514 string of a DN: most specific RDN first, values escaped.
pub fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    use x509_parser::oid_registry as oids;
    let mut parts = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let oid = atv.attr_type();
            let key = if *oid == oids::OID_X509_COMMON_NAME {
                "CN".to_string()
            } else if *oid == oids::OID_X509_ORGANIZATION_NAME {
                "O".to_string()
            } else if *oid == oids::OID_X509_ORGANIZATIONAL_UNIT {
                "OU".to_string()
            } else if *oid == oids::OID_X509_LOCALITY_NAME {
                "L".to_string()
            } else if *oid == oids::OID_X509_STATE_OR_PROVINCE_NAME {
                "ST".to_string()
            } else if *oid == oids::OID_X509_COUNTRY_NAME {
                "C".to_string()
            } else if *oid == oids::OID_PKCS9_EMAIL_ADDRESS {
                "EMAIL".to_string()
            } else {
                oid.to_id_string()
            };
            let value = atv.as_str().map(str::to_string).unwrap_or_else(|_| {
                format!("#{}", atv.as_slice().iter().map(|b| format!("{b:02x}")).collect::<String>())
            });
            parts.push(format!("{key}={}", crate::rules::dn::escape_value(&value)));
        }
    }
    parts.reverse();
    parts.join(",")
}

/// Serves one connection with `router`; returns when it closes.
pub async fn serve_connection<I>(io: I, router: Router, info: ConnInfo, life: &Lifecycle)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_connection_limited(io, router, info, None, life).await
}

/// [`serve_connection`] with request heads (line and headers) capped at
/// `max_head` bytes; larger ones get hyper's 431. A head not complete within
/// the header timeout (also between kept-alive requests) closes the
/// connection; a stop lets the request in flight finish, then closes.
pub async fn serve_connection_limited<I>(
    io: I,
    router: Router,
    mut info: ConnInfo,
    max_head: Option<usize>,
    life: &Lifecycle,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    info.body_read = Some(life.limits.body_read());
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(info.clone());
        let router = router.clone();
        async move {
            let resp = router.oneshot(req.map(Body::new)).await.unwrap_or_else(|e: Infallible| match e {});
            if resp.extensions().get::<CloseConnection>().is_some() {
                return Err(ClosedOnPurpose);
            }
            Ok::<_, ClosedOnPurpose>(resp)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(life.limits.header_read());
    if let Some(max) = max_head {
        builder.max_buf_size(max);
    }
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = life.stopping() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(life.limits.grace(), conn).await;
        }
    }
}

/// Upper bound on a recorded or parsed body.
pub const MAX_BODY: usize = 1024 * 1024;

/// Middleware state: which component the layer journals for.
#[derive(Clone)]
pub struct JournalLayer {
    pub journal: Journal,
    pub component: Component,
}

/// The request body read by the journal layer, for handlers that want it.
#[derive(Debug, Clone)]
pub struct BufferedBody(pub bytes::Bytes);

/// Wraps `router` so that every request is journalled as `component`.
pub fn journalled(router: Router, journal: Journal, component: Component) -> Router {
    router.layer(axum::middleware::from_fn_with_state(JournalLayer { journal, component }, journal_mw))
}

async fn journal_mw(
    axum::extract::State(layer): axum::extract::State<JournalLayer>,
    req: Request,
    next: Next,
) -> Response<Body> {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let info = parts.extensions.get::<ConnInfo>().cloned().unwrap_or_default();
    let body_read = info.body_read.unwrap_or(crate::serve::Limits::default().body_read());
    let bytes = match tokio::time::timeout(body_read, http_body_util::Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(_)) => {
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body over 1 MiB");
        }
        Err(_) => {
            let mut r = error_response(
                StatusCode::REQUEST_TIMEOUT,
                &format!("request body not received within {} s", body_read.as_secs()),
            );
            r.headers_mut().insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            return r;
        }
    };
    let host = request_host(&parts.uri, &parts.headers).unwrap_or_default();
    // Inside a CONNECT tunnel the target is the tunnel's: a request whose
    // Host names another host would reach this service while claiming to
    // be for another (a tenant of the UAA, say). Journalled under the
    // tunnel target and refused.
    let bare = |h: &str| h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase();
    let mismatch = info.tunnel_host.as_deref().filter(|t| bare(t) != bare(&host)).map(str::to_string);
    let host = info.tunnel_host.clone().unwrap_or(host);
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let form = if is_form { decode_pairs(&bytes) } else { Vec::new() };
    let body_text = (!is_form && !bytes.is_empty())
        .then(|| String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]).into_owned());
    let entry = JournalEntry {
        seq: 0,
        time_ms: now_ms(),
        component: layer.component.clone(),
        host,
        tls: info.tls,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(|q| decode_pairs(q.as_bytes())).unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        form,
        body: body_text,
        client_cert: info.client_cert.clone(),
        ssl_client_cert: parts
            .headers
            .get("ssl_client_cert")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::rules::backend_logon::decode_certificate)
            .and_then(|der| cert_info(&der)),
        status: 0,
        latency_ms: 0,
        note: None,
    };
    // Journalled on arrival, completed on answer: a client that gives up
    // (timeout) still leaves its request in the journal.
    let seq = layer.journal.begin(entry);
    let mut guard = PendingEntry { journal: layer.journal.clone(), seq: Some(seq), started };
    if let Some(target) = mismatch {
        let why = format!(
            "Host header {:?} is not the CONNECT target {target:?}",
            request_host(&parts.uri, &parts.headers).unwrap_or_default()
        );
        guard.finish(400, Some(why.clone()));
        return error_response(StatusCode::BAD_REQUEST, &why);
    }
    parts.extensions.insert(BufferedBody(bytes.clone()));
    let resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = if resp.extensions().get::<CloseConnection>().is_some() { 0 } else { resp.status().as_u16() };
    let note = resp.extensions().get::<Note>().map(|n| n.0.clone());
    guard.finish(status, note);
    resp
}

struct PendingEntry {
    journal: Journal,
    seq: Option<u64>,
    started: Instant,
}

impl PendingEntry {
    fn finish(&mut self, status: u16, note: Option<String>) {
        if let Some(seq) = self.seq.take() {
            let latency = self.started.elapsed().as_millis() as u64;
            self.journal.complete(seq, |e| {
                e.status = status;
                e.note = note;
                e.latency_ms = latency;
            });
        }
    }
}

impl Drop for PendingEntry {
    fn drop(&mut self) {
        self.finish(0, Some("client went away before the answer".into()));
    }
}

/// Largest JSON web key set fetched from a `jwks_uri`.
pub const MAX_JWKS: usize = 256 * 1024;

/// The key set at `uri` (a `jwks_uri`), fetched with `client` within
/// `timeout` in all: a success status, at most [`MAX_JWKS`] bytes, a JSON
/// web key set; any other answer is an error that says which.
pub async fn get_jwks(
    client: &reqwest::Client,
    uri: &str,
    timeout: std::time::Duration,
) -> Result<jsonwebtoken::jwk::JwkSet, String> {
    let mut resp = client.get(uri).timeout(timeout).send().await.map_err(|e| format!("GET {uri}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {uri}: HTTP {}", resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {uri}: {e}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS {
            return Err(format!("GET {uri}: key set over {} KiB", MAX_JWKS / 1024));
        }
    }
    serde_json::from_slice(&body).map_err(|e| format!("{uri} is no JSON web key set: {e}"))
}

/// Host of a request without port: from an absolute URI, else `Host`.
pub fn request_host(uri: &axum::http::Uri, headers: &HeaderMap) -> Option<String> {
    let raw = uri.host().or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))?;
    Some(strip_port(raw).to_ascii_lowercase())
}

/// `host:port` → `host` (IPv6 literals keep their brackets off).
pub fn strip_port(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => hostport,
    }
}

/// Decodes `a=b&c=d` (form or query), keeping order and duplicates.
pub fn decode_pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    json_bytes_response(status, serde_json::to_vec(body).expect("a response body serialises"))
}

/// [`json_response`] of a body already written as JSON.
pub fn json_bytes_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body))
        .expect("static response parts are valid")
}

/// A plain-text error whose body names the reason; the reason also goes to
/// the journal.
pub fn error_response(status: StatusCode, reason: &str) -> Response<Body> {
    let mut r = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(format!("{reason}\n")))
        .expect("static response parts are valid");
    r.extensions_mut().insert(Note(reason.to_string()));
    r
}

/// An OAuth2 error (RFC 6749 section 5.2) with the reason in the journal.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<Body> {
    let mut r = json_response(status, &serde_json::json!({"error": error, "error_description": description}));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"idprop\", error=\"invalid_client\""),
        );
    }
    r.extensions_mut().insert(Note(format!("{error}: {description}")));
    r
}
