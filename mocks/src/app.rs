//! The application of seed 000 (`app.example.test`): a Cloud Foundry
//! application that external systems call with a UAA token.
//!
//! Seed 000: "the bearer assertion flow or client credentials identify the
//! external application at the UAA, which can then issue a JSON web token.
//! The external application can use this JSON web token when it makes the
//! API calls to applications in the Cloud Foundry environment." Unlike the
//! echo server `api.example.test`, this one validates the token (signature
//! from the tenant's `token_keys`, issuer, expiry: `TV-*`), then audience,
//! tenant and the path's scope (`AP-1`..`AP-3`), answers 401/403 as RFC 6750
//! says, and tells who called.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Response, StatusCode};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::rules::app_access::{self, Caller, Policy, Refusal};
use crate::uaa::MockUaa;

/// Host of the application behind the gateway.
pub const APP_HOST: &str = "app.example.test";

/// A path prefix and the scope it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PathScope {
    /// Path prefix (`/read` covers `/read/…`); the longest match wins.
    pub path: String,
    /// Scope needed, `$XSAPPNAME.` expanded.
    pub scope: String,
}

/// Configuration of the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// Its `xsappname`; the UAA's when absent.
    pub xsappname: Option<String>,
    /// The client id of its `xsuaa` binding.
    pub client_id: String,
    /// Tenant subdomains it serves; every tenant when empty.
    pub tenants: Vec<String>,
    /// Scopes per path; other paths need only a valid token.
    pub scopes: Vec<PathScope>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            xsappname: None,
            client_id: crate::uaa::APP_CLIENT.0.into(),
            tenants: vec!["mytenant".into()],
            scopes: vec![
                PathScope { path: "/read".into(), scope: "$XSAPPNAME.Read".into() },
                PathScope { path: "/admin".into(), scope: "$XSAPPNAME.Admin".into() },
            ],
        }
    }
}

/// The application. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Application {
    uaa: MockUaa,
    config: AppConfig,
}

impl Application {
    pub fn new(uaa: MockUaa, config: AppConfig) -> Self {
        Self { uaa, config }
    }

    /// Its `xsappname`.
    pub fn xsappname(&self) -> String {
        self.config.xsappname.clone().unwrap_or_else(|| self.uaa.config().xsappname.clone())
    }

    /// Every method and path goes to one handler.
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// The scope `path` needs (longest prefix on a segment boundary).
    fn required_scope(&self, path: &str, xsappname: &str) -> Option<String> {
        self.config
            .scopes
            .iter()
            .filter(|p| {
                let pre = p.path.trim_end_matches('/');
                path == pre || path.starts_with(&format!("{pre}/")) || pre.is_empty()
            })
            .max_by_key(|p| p.path.len())
            .map(|p| crate::identity::expand_xsappname(&p.scope, xsappname))
    }

    fn answer(&self, req: &Request) -> Result<serde_json::Value, Refusal> {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::authorization::bearer)
            .ok_or(Refusal::NoToken)?;
        let valid = self.uaa.validate(token).map_err(|r| Refusal::InvalidToken(r.to_string()))?;
        // One read of the UAA's configuration per request.
        let uaa = self.uaa.config();
        let zones: Vec<String> = self
            .config
            .tenants
            .iter()
            .map(|t| {
                uaa.tenants
                    .iter()
                    .find(|x| x.subdomain.eq_ignore_ascii_case(t))
                    .map(|x| x.zid.clone())
                    .unwrap_or_else(|| format!("unknown tenant {t}"))
            })
            .collect();
        let xsappname = self.config.xsappname.clone().unwrap_or_else(|| uaa.xsappname.clone());
        let needed = self.required_scope(req.uri().path(), &xsappname);
        let policy = Policy {
            xsappname: &xsappname,
            client_id: &self.config.client_id,
            zones: &zones,
            required_scope: needed.as_deref(),
        };
        let (caller, scopes) = app_access::decide(&valid.claims, &policy)?;
        let c = &valid.claims;
        let s = |k: &str| c.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let caller = match caller {
            Caller::User { user_name, origin } => {
                json!({"type": "user", "user_name": user_name, "origin": origin, "email": s("email")})
            }
            Caller::Client { client_id } => json!({"type": "client", "client_id": client_id}),
        };
        let zdn = c.get("ext_attr").and_then(|e| e.get("zdn")).cloned().unwrap_or_default();
        Ok(json!({
            "caller": caller,
            "scopes": scopes,
            "grant_type": s("grant_type"),
            "tenant": {"zid": s("zid"), "subdomain": zdn},
            "method": req.method().as_str(),
            "path": req.uri().path(),
        }))
    }
}

async fn handle(State(app): State<Application>, req: Request) -> Response<Body> {
    match app.answer(&req) {
        Ok(body) => crate::http::json_response(StatusCode::OK, &body),
        Err(refusal) => {
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let body = match &refusal {
                Refusal::NoToken => json!({"error": "unauthorized", "error_description": refusal.to_string()}),
                Refusal::InvalidToken(_) => json!({"error": "invalid_token", "error_description": refusal.to_string()}),
                Refusal::InsufficientScope(_) => {
                    json!({"error": "insufficient_scope", "error_description": refusal.to_string()})
                }
            };
            let mut resp = crate::http::json_response(status, &body);
            if let Ok(v) = refusal.www_authenticate(APP_HOST).parse() {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            resp
        }
    }
}
