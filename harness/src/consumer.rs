//! The reference business application (`consumer` role): reads its service
//! bindings, looks the destination up, fetches what tokens it needs and
//! calls the target, through the Connectivity proxy for `OnPremise`.

use std::collections::BTreeMap;

use idprop_mocks::retrieval::Network;
use serde_json::{json, Value};

/// Headers of the Connectivity proxy.
const PROXY_USER: &str = "SAP-Connectivity-Authentication";
const PROXY_LOCATION: &str = "SAP-Connectivity-SCC-Location_ID";

/// Credentials of one binding.
#[derive(Debug, Clone)]
struct Binding(serde_json::Map<String, Value>);

impl Binding {
    fn get(&self, k: &str) -> Result<String, String> {
        self.0.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| format!("binding credentials lack {k}"))
    }
}

pub struct Consumer {
    /// Through the gateway (the Internet), trusting the test CA.
    internet: reqwest::Client,
    vcap: Option<String>,
}

impl Consumer {
    pub fn new(network: &Network, vcap: Option<String>) -> Result<Self, String> {
        let cas = reqwest::Certificate::from_pem_bundle(network.ca_pem.as_bytes()).map_err(|e| e.to_string())?;
        let internet = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(&network.proxy).map_err(|e| e.to_string())?)
            .tls_certs_only(cas)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { internet, vcap })
    }

    /// The bindings it was made with (a `call` may bring its own).
    pub fn vcap(&self) -> Option<String> {
        self.vcap.clone()
    }

    fn binding(vcap: &Value, label: &str) -> Result<Binding, String> {
        vcap.get(label)
            .and_then(|b| b.get(0))
            .and_then(|b| b.get("credentials"))
            .and_then(Value::as_object)
            .map(|m| Binding(m.clone()))
            .ok_or_else(|| format!("VCAP_SERVICES has no {label} binding"))
    }

    /// `https://<tenant>.<uaadomain>` for a binding.
    fn tenant_uaa(b: &Binding, tenant: &str) -> Result<String, String> {
        Ok(format!("https://{tenant}.{}", b.get("uaadomain")?))
    }

    async fn client_token(&self, uaa: &str, b: &Binding) -> Result<String, String> {
        self.token(uaa, b, &[("grant_type", "client_credentials")]).await
    }

    /// POSTs `form` to the binding's token endpoint for `uaa`; the access token.
    async fn token(&self, uaa: &str, b: &Binding, form: &[(&str, &str)]) -> Result<String, String> {
        let resp = self
            .internet
            .post(format!("{uaa}/oauth/token"))
            .basic_auth(b.get("clientid")?, Some(b.get("clientsecret")?))
            .form(form)
            .send()
            .await
            .map_err(|e| format!("token request to {uaa} failed: {e}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| format!("token answer of {uaa}: {e}"))?;
        v.get("access_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("{uaa} answered {status}: {v}"))
    }

    async fn find(&self, uri: &str, name: &str, token: &str, user_token: Option<&str>) -> Result<Value, String> {
        let mut find =
            self.internet.get(format!("{uri}/destination-configuration/v1/destinations/{name}")).bearer_auth(token);
        if let Some(u) = user_token {
            find = find.header("X-user-token", u);
        }
        let resp = find.send().await.map_err(|e| format!("Find Destination failed: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("Find Destination answer: {e}"))?;
        if !status.is_success() {
            return Err(format!("Find Destination answered {status}: {}", text.trim()));
        }
        serde_json::from_str(&text).map_err(|e| format!("Find Destination answer is not JSON: {e}"))
    }

    /// The user exchange token: jwt-bearer with the connectivity client (39f538a).
    async fn exchange_token(&self, uaa: &str, b: &Binding, user_token: &str) -> Result<String, String> {
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("token_format", "jwt"),
            ("response_type", "token"),
            ("assertion", user_token),
        ];
        self.token(uaa, b, &form).await
    }

    /// Answers a `call` message: `{status, headers, body}` or `{error}`.
    pub async fn call(&self, req: &crate::protocol::Call) -> Result<Value, String> {
        let vcap_text = Some(req.env.vcap_services.clone())
            .filter(|v| !v.is_empty())
            .or_else(|| self.vcap.clone())
            .ok_or("no VCAP_SERVICES")?;
        let vcap: Value = serde_json::from_str(&vcap_text).map_err(|e| format!("VCAP_SERVICES is not JSON: {e}"))?;
        let tenant = req.tenant.as_str();
        let name = req.destination.as_str();
        let user_token = req.user_token.as_deref().filter(|t| !t.is_empty());
        let request = if req.request.is_null() { json!({}) } else { req.request.clone() };
        let user_exchange = req.principal_propagation.as_deref() == Some("user-exchange");
        Ok(match self.call_inner(&vcap, tenant, name, user_token, &request, user_exchange).await {
            Ok(v) => v,
            Err(e) => json!({"error": e}),
        })
    }

    async fn call_inner(
        &self,
        vcap: &Value,
        tenant: &str,
        name: &str,
        user_token: Option<&str>,
        request: &Value,
        user_exchange: bool,
    ) -> Result<Value, String> {
        // CO-1: the destination, with a token of the destination binding for the tenant.
        let dest_binding = Self::binding(vcap, "destination")?;
        let token = self.client_token(&Self::tenant_uaa(&dest_binding, tenant)?, &dest_binding).await?;
        let uri = dest_binding.get("uri")?;
        // CO-1: X-user-token only for the user-based types; the type is
        // known from a first lookup without it.
        let mut found = self.find(&uri, name, &token, None).await?;
        let auth = found.pointer("/destinationConfiguration/Authentication").and_then(Value::as_str).unwrap_or("");
        if matches!(auth, "OAuth2JWTBearer" | "OAuth2UserTokenExchange" | "OAuth2SAMLBearerAssertion") {
            if let Some(u) = user_token {
                found = self.find(&uri, name, &token, Some(u)).await?;
            }
        }
        let cfg = found.get("destinationConfiguration").cloned().unwrap_or(json!({}));
        let prop = |k: &str| cfg.get(k).and_then(Value::as_str).map(str::to_string);
        if let Some(e) = found.pointer("/authTokens/0/error").and_then(Value::as_str).filter(|e| !e.is_empty()) {
            return Err(format!("destination {name}: no token: {e}"));
        }
        // PX-5: URL.queries.* and URL.headers.* on the target call.
        let base = prop("URL").ok_or("destination has no URL")?;
        let path = request.get("path").and_then(Value::as_str).unwrap_or("/");
        let mut url = url::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
            .map_err(|e| format!("target URL: {e}"))?;
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        if let Some(obj) = cfg.as_object() {
            for (k, v) in obj {
                let Some(v) = v.as_str() else { continue };
                if let Some(q) = k.strip_prefix("URL.queries.") {
                    url.query_pairs_mut().append_pair(q, v);
                }
                if let Some(h) = k.strip_prefix("URL.headers.") {
                    headers.insert(h.to_string(), v.to_string());
                }
            }
        }
        if let Some(h) = request.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                if let Some(v) = v.as_str() {
                    headers.insert(k.clone(), v.to_string());
                }
            }
        }
        // CO-4: the auth token's header, as given.
        if let (Some(k), Some(v)) = (
            found.pointer("/authTokens/0/http_header/key").and_then(Value::as_str),
            found.pointer("/authTokens/0/http_header/value").and_then(Value::as_str),
        ) {
            headers.insert(k.to_string(), v.to_string());
        }
        let on_premise = prop("ProxyType").is_some_and(|p| p.eq_ignore_ascii_case("OnPremise"));
        let client = if on_premise {
            // CO-2: through the Connectivity proxy with its own token.
            let conn = Self::binding(vcap, "connectivity")?;
            let conn_uaa = Self::tenant_uaa(&conn, tenant)?;
            let pp = prop("Authentication").as_deref() == Some("PrincipalPropagation");
            let proxy_token = if pp && user_exchange {
                // CP-5: the user exchange token carries the user by itself.
                let u = user_token.ok_or("PrincipalPropagation needs the user's token")?;
                self.exchange_token(&conn_uaa, &conn, u).await?
            } else {
                self.client_token(&conn_uaa, &conn).await?
            };
            let proxy_url =
                format!("http://{}:{}", conn.get("onpremise_proxy_host")?, conn.get("onpremise_proxy_http_port")?);
            let auth =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {proxy_token}")).map_err(|e| e.to_string())?;
            // CO-3: the user's token for principal propagation.
            if pp && !user_exchange {
                let u = user_token.ok_or("PrincipalPropagation needs the user's token")?;
                headers.insert(PROXY_USER.into(), format!("Bearer {u}"));
            }
            // CO-5: the location id.
            if let Some(loc) = prop("CloudConnectorLocationId") {
                headers.insert(PROXY_LOCATION.into(), loc);
            }
            reqwest::Client::builder()
                .proxy(reqwest::Proxy::http(&proxy_url).map_err(|e| e.to_string())?.custom_http_auth(auth))
                .build()
                .map_err(|e| e.to_string())?
        } else {
            self.internet.clone()
        };
        let method =
            reqwest::Method::from_bytes(request.get("method").and_then(Value::as_str).unwrap_or("GET").as_bytes())
                .map_err(|e| e.to_string())?;
        let mut rb = client.request(method, url.as_str());
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(b) = request.get("body").and_then(Value::as_str) {
            rb = rb.body(b.to_string());
        }
        let resp = rb.send().await.map_err(|e| format!("calling {url}: {e}"))?;
        let status = resp.status().as_u16();
        let rh: BTreeMap<String, String> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp.text().await.unwrap_or_default();
        Ok(json!({"status": status, "headers": rh, "body": body}))
    }
}
