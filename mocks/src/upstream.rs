//! A virtual host whose answers come from a server of the user's (a
//! `wiremock::MockServer`, any loopback HTTP server): each request that
//! reaches the host through the gateway is forwarded there as it came, and
//! the answer goes back as it was given. See [`Stack::route_to`](crate::Stack::route_to).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Response, StatusCode};
use axum::Router;

use crate::http::{error_response, BufferedBody};

/// Headers of one hop (and the length, which the next hop sets again).
fn relayed(name: &str) -> bool {
    !crate::rules::connectivity::HOP_BY_HOP.contains(&name) && name != "host" && name != "content-length"
}

/// Where a routed host's requests go.
#[derive(Clone, Debug)]
pub struct Upstream {
    base: url::Url,
    client: reqwest::Client,
}

impl Upstream {
    /// `base` must be a loopback `http://` URL (nothing leaves the machine).
    pub fn new(base: &str) -> Result<Self, String> {
        let url = url::Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if url.scheme() != "http" || !loopback {
            return Err(format!("{base:?}: an upstream must be http:// on loopback"));
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { base: url, client })
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(forward).with_state(self.clone())
    }
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let body = parts.extensions.get::<BufferedBody>().map(|b| b.0.clone()).unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Ok(url) = up.base.join(path) else {
        return error_response(StatusCode::BAD_REQUEST, "request path cannot be forwarded");
    };
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut rb = up.client.request(method, url).body(body);
    for (k, v) in &parts.headers {
        if relayed(k.as_str()) {
            rb = rb.header(k.as_str(), v.as_bytes());
        }
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_GATEWAY, &format!("upstream {}: {e}", up.base)),
    };
    let mut out = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if relayed(k.as_str()) {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    out.body(Body::from(bytes)).unwrap_or_else(|_| error_response(StatusCode::BAD_GATEWAY, "bad upstream answer"))
}
