//! The gateway: "the Internet" as an implementation under test sees it.
//!
//! One HTTP forward proxy (absolute-form requests and `CONNECT` tunnels) that
//! routes virtual host names under `.test` to the mocks, in-process,
//! terminating TLS with certificates of the test CA. It never opens a
//! connection anywhere: an unknown host gets a 502 that names it. Requests in
//! origin form (`GET /__idprop/journal`) are the gateway's own admin API.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::http::{
    error_response, serve_connection, strip_port, tls_conn_info, CloseConnection, ClosedOnPurpose, ConnInfo,
    ServerHandle,
};
use crate::journal::{now_ms, Journal, JournalEntry};
use crate::pki::TestPki;
use crate::serve::Lifecycle;

/// Where a virtual host goes.
#[derive(Clone)]
pub struct Route {
    pub router: Router,
    /// Delay before a `CONNECT` to this host is confirmed (milliseconds).
    pub connect_delay_ms: Arc<AtomicU64>,
}

impl Route {
    pub fn new(router: Router) -> Self {
        Self { router, connect_delay_ms: Arc::new(AtomicU64::new(0)) }
    }
}

/// The routing table: exact host names, or a host and all its subdomains.
#[derive(Clone, Default)]
pub struct Routes {
    inner: Arc<RwLock<HashMap<String, Route>>>,
}

impl Routes {
    /// Routes `host` and every subdomain of it.
    pub fn add(&self, host: &str, route: Route) {
        self.inner.write().expect("routes lock").insert(host.to_ascii_lowercase(), route);
    }

    /// The route of `host`: exact match, else the longest routed parent domain.
    pub fn lookup(&self, host: &str) -> Option<Route> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let table = self.inner.read().expect("routes lock");
        let mut candidate = host.as_str();
        loop {
            if let Some(r) = table.get(candidate) {
                return Some(r.clone());
            }
            candidate = candidate.split_once('.')?.1;
        }
    }

    pub fn hosts(&self) -> Vec<String> {
        let mut h: Vec<String> = self.inner.read().expect("routes lock").keys().cloned().collect();
        h.sort();
        h
    }
}

/// The gateway server.
#[derive(Clone)]
pub struct Gateway {
    pub routes: Routes,
    pki: Arc<TestPki>,
    journal: Journal,
    admin: Router,
    life: Lifecycle,
}

impl Gateway {
    pub fn new(pki: Arc<TestPki>, journal: Journal, admin: Router, life: Lifecycle) -> Self {
        Self { routes: Routes::default(), pki, journal, admin, life }
    }

    /// Serves on `listener` until the stack stops or the handle is dropped.
    pub fn spawn(self, listener: TcpListener) -> ServerHandle {
        let life = self.life.clone();
        crate::serve::listen(listener, life, "the gateway", move |stream| {
            let gw = self.clone();
            async move {
                let life = gw.life.clone();
                let svc = hyper::service::service_fn(move |req| gw.clone().handle(req));
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(life.limits.header_read())
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades();
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = life.stopping() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(life.limits.grace(), conn).await;
                    }
                }
            }
        })
    }

    async fn handle(self, req: hyper::Request<hyper::body::Incoming>) -> Result<Response<Body>, ClosedOnPurpose> {
        if req.method() == Method::CONNECT {
            return Ok(self.connect(req).await);
        }
        let Some(host) = req.uri().host().map(str::to_ascii_lowercase) else {
            // Origin form: the gateway's own admin API.
            let resp = self.admin.clone().oneshot(req.map(Body::new)).await.unwrap_or_else(|e: Infallible| match e {});
            return Ok(resp);
        };
        // The Internet the gateway plays serves virtual hosts on http://…:80
        // (and https through CONNECT on 443): another scheme or port reaches
        // nothing, as it would not on the real host.
        if req.uri().scheme_str() != Some("http") || req.uri().port_u16().is_some_and(|p| p != 80) {
            return Ok(error_response(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "idprop gateway: {} is not served (virtual hosts: http on port 80, https via CONNECT on 443)",
                    req.uri()
                ),
            ));
        }
        let Some(route) = self.routes.lookup(&host) else {
            return Ok(self.unknown_host(&host, req.method().as_str(), req.uri().path()));
        };
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnInfo::default());
        let resp = route.router.oneshot(req).await.unwrap_or_else(|e: Infallible| match e {});
        if resp.extensions().get::<CloseConnection>().is_some() {
            return Err(ClosedOnPurpose);
        }
        Ok(resp)
    }

    async fn connect(self, req: hyper::Request<hyper::body::Incoming>) -> Response<Body> {
        let authority = req.uri().authority().map(|a| a.as_str().to_string()).unwrap_or_default();
        let host = strip_port(&authority).to_ascii_lowercase();
        if req.uri().port_u16() != Some(443) {
            return error_response(
                StatusCode::BAD_GATEWAY,
                &format!("idprop gateway: CONNECT {authority}: virtual hosts serve https on port 443 only"),
            );
        }
        let Some(route) = self.routes.lookup(&host) else {
            return self.unknown_host(&host, "CONNECT", &authority);
        };
        let delay = route.connect_delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let tls = match self.pki.server_config(&host) {
            Ok(c) => c,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    &format!("idprop gateway: no certificate for {host}: {e}"),
                )
            }
        };
        let life = self.life.clone();
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            // A tunnel that never starts its handshake is closed.
            let Ok(Ok(stream)) =
                tokio::time::timeout(life.limits.tls_handshake(), acceptor.accept(TokioIo::new(upgraded))).await
            else {
                return;
            };
            let mut info = tls_conn_info(stream.get_ref().1);
            info.tunnel_host = Some(host);
            serve_connection(stream, route.router, info, &life).await;
        });
        Response::new(Body::empty())
    }

    /// 502 naming the host, recorded in the journal as a finding.
    fn unknown_host(&self, host: &str, method: &str, path: &str) -> Response<Body> {
        let reason = format!("idprop gateway: unknown host {host:?}; routed hosts: {}", self.routes.hosts().join(", "));
        let _ = self.journal.record(JournalEntry {
            seq: 0,
            time_ms: now_ms(),
            component: crate::journal::Component::Gateway,
            host: host.to_string(),
            tls: false,
            method: method.to_string(),
            path: path.to_string(),
            query: vec![],
            headers: vec![],
            form: vec![],
            body: None,
            client_cert: None,
            ssl_client_cert: None,
            status: 502,
            latency_ms: 0,
            note: Some(format!("unknown host {host}")),
        });
        error_response(StatusCode::BAD_GATEWAY, &reason)
    }
}

/// A static asset of the page (compiled in: the page loads nothing from elsewhere).
fn page(content_type: &'static str, body: &'static str) -> Response<Body> {
    Response::builder()
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("static response")
}

/// Entries serialised per page of this many: the answer streams, so a full
/// journal is never copied whole into memory.
const JOURNAL_PAGE: usize = 256;

/// `GET /__idprop/journal`: a JSON array written page by page, up to the
/// newest entry that existed when the request came.
fn journal_stream(journal: Journal, since: u64) -> Response<Body> {
    let upto = journal.last_seq();
    // (cursor, wrote an entry yet, finished)
    let stream = futures::stream::unfold((journal, since, None::<bool>), move |(j, cursor, state)| async move {
        let wrote_any = match state {
            Some(true) => return None,
            Some(false) => true,
            None => false,
        };
        let page: Vec<JournalEntry> = j.page(cursor, JOURNAL_PAGE).into_iter().take_while(|e| e.seq <= upto).collect();
        let mut out = Vec::new();
        if cursor == since && !wrote_any {
            out.push(b'[');
        }
        let mut any = wrote_any;
        for e in &page {
            if any {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut out, e);
            any = true;
        }
        let next = page.last().map_or(cursor, |e| e.seq);
        let finished = page.len() < JOURNAL_PAGE || next >= upto;
        if finished {
            out.push(b']');
        }
        // `Some(true)`: the array is closed; `Some(false)`: more to come.
        let state = if finished { Some(true) } else { Some(false) };
        Some((Ok::<_, Infallible>(bytes::Bytes::from(out)), (j, next, state)))
    });
    Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("static response")
}

/// The gateway's admin API (`/__idprop/…`) and the page at `/__idprop/`.
pub fn admin_router(journal: Journal, info: Arc<RwLock<serde_json::Value>>, jwks: serde_json::Value) -> Router {
    use axum::routing::get;
    let j1 = journal.clone();
    let j3 = journal.clone();
    let j2 = journal;
    Router::new()
        .route(
            "/__idprop/journal",
            get(move |q: axum::extract::Query<std::collections::HashMap<String, String>>| {
                let j = j1.clone();
                // `?since=N`: only entries after sequence number N.
                let since = q.get("since").and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                async move { journal_stream(j, since) }
            })
            .delete(move || {
                let j = j2.clone();
                async move {
                    j.clear();
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/__idprop/journal/stats",
            get(move || {
                let j = j3.clone();
                async move { axum::Json(j.stats()) }
            }),
        )
        .route(
            "/__idprop/info",
            get(move || {
                let i = info.clone();
                async move { axum::Json(i.read().expect("info lock").clone()) }
            }),
        )
        .route(
            "/__idprop/jwks",
            get(move || {
                let k = jwks.clone();
                async move { axum::Json(k) }
            }),
        )
        .route("/__idprop/health", get(|| async { "ok\n" }))
        .route("/__idprop/", get(|| async { page("text/html; charset=utf-8", include_str!("ui/index.html")) }))
        .route("/__idprop", get(|| async { axum::response::Redirect::permanent("/__idprop/") }))
        .route("/__idprop/app.js", get(|| async { page("text/javascript; charset=utf-8", include_str!("ui/app.js")) }))
        .route("/__idprop/app.css", get(|| async { page("text/css; charset=utf-8", include_str!("ui/app.css")) }))
}
