//! What a scenario asks of the stack (`given`), the `{{…}}` values its
//! strings may use, and the tokens it mints.

use super::*;

/// The stack configuration a scenario's `given` asks for.
pub fn stack_config(s: &Scenario) -> StackConfig {
    let g = &s.given;
    let mut c = StackConfig::default();
    for t in &g.tenants {
        if !c.uaa.tenants.iter().any(|x| &x.subdomain == t) {
            c.uaa.tenants.push(idprop_mocks::identity::Tenant::new(t));
        }
    }
    for u in &g.users {
        c.uaa.users.retain(|x| x.user_name != u.user_name);
        c.uaa.users.push(u.clone());
    }
    for cl in &g.clients {
        c.uaa.clients.retain(|x| x.client_id != cl.client_id);
        c.uaa.clients.push(cl.clone());
    }
    if !g.token_servers.is_empty() {
        let mut servers: Vec<TokenServerConfig> =
            c.token_servers.into_iter().filter(|d| g.token_servers.iter().all(|t| t.host != d.host)).collect();
        servers.extend(g.token_servers.iter().cloned());
        c.token_servers = servers;
    }
    if let Some(d) = &g.destinations {
        // Destinations may name the UAA domain: {{uaa_domain}}.
        let mut v = serde_json::to_value(d).expect("destinations serialise");
        let vars = BTreeMap::from([("uaa_domain".to_string(), c.uaa.domain.clone())]);
        render_value(&mut v, &vars);
        c.destinations = Some(serde_json::from_value(v).expect("rendered destinations keep their shape"));
    }
    if let Some(cs) = &g.connectors {
        c.connectors = cs.clone();
    }
    if let Some(b) = &g.backend {
        c.backend = b.clone();
    }
    c
}

/// Values `{{…}}` in scenario strings may use.
pub(crate) fn variables(stack: &Stack, s: &Scenario) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("uaa_domain".into(), stack.uaa().domain());
    v.insert("tenant".into(), "mytenant".into());
    v.insert("gateway".into(), stack.gateway_url());
    for t in stack.uaa().config().tenants.iter() {
        v.insert(format!("zid.{}", t.subdomain), t.zid.clone());
        v.insert(format!("issuer.{}", t.subdomain), stack.uaa().factory().issuer(&t.subdomain));
    }
    if let Some(zid) = v.get("zid.mytenant").cloned() {
        v.insert("zid".into(), zid);
    }
    let first =
        s.given.token_servers.first().map(|t| t.host.clone()).unwrap_or_else(|| "authserver.example.test".into());
    v.insert("token_server.host".into(), first.clone());
    v.insert("token_server.url".into(), format!("https://{first}/oauth/token"));
    v
}

pub(crate) fn render(text: &str, vars: &BTreeMap<String, String>) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

/// Renders every string inside a JSON value.
pub(crate) fn render_value(v: &mut Value, vars: &BTreeMap<String, String>) {
    match v {
        Value::String(s) => *s = render(s, vars),
        Value::Array(a) => a.iter_mut().for_each(|x| render_value(x, vars)),
        Value::Object(o) => o.values_mut().for_each(|x| render_value(x, vars)),
        _ => {}
    }
}

/// Mints the token a spec describes.
pub fn mint(stack: &Stack, spec: &TokenSpec) -> String {
    if let Some(l) = &spec.literal {
        return l.clone();
    }
    if let Some(issuer) = &spec.issuer {
        return mint_of_provider(stack, spec, issuer);
    }
    let tenant = spec.tenant.as_deref().unwrap_or("mytenant");
    let mut b = if let Some(only) = &spec.only_claims {
        let mut claims = only.clone();
        claims.entry("iss").or_insert_with(|| json!(stack.uaa().factory().issuer(tenant)));
        stack.uaa().factory().builder(tenant, claims)
    } else if let Some(client) = &spec.client {
        stack.uaa().client_token(tenant, client)
    } else {
        stack.uaa().user_token(tenant, spec.user.as_deref().unwrap_or("alice"))
    };
    for (k, v) in &spec.claims {
        b = b.claim(k.clone(), v.clone());
    }
    for k in &spec.drop {
        b = b.without(k);
    }
    if let Some(k) = &spec.kid {
        b = b.kid(k.clone());
    }
    match spec.forge {
        Some(f) => b.forge(f),
        None => b.sign(),
    }
}

/// A token of the identity provider `issuer` (see [`TokenSpec::issuer`]).
fn mint_of_provider(stack: &Stack, spec: &TokenSpec, issuer: &str) -> String {
    let provider = stack.identity_provider(issuer);
    let mut claims = match (&spec.only_claims, provider) {
        (Some(only), _) => only.clone(),
        (None, Some(p)) => {
            let user = p.config().users.iter().find(|u| Some(u.user_name.as_str()) == spec.user.as_deref()).cloned();
            let user = user.unwrap_or_else(|| idprop_mocks::uaa::User::new(spec.user.as_deref().unwrap_or("alice")));
            let client = p.config().clients.first().map(|c| c.client_id.clone()).unwrap_or_default();
            p.claims(&client, Some(&user), 3600)
        }
        (None, None) => serde_json::Map::new(),
    };
    claims.entry("iss").or_insert_with(|| json!(issuer));
    claims.entry("exp").or_insert_with(|| json!(idprop_mocks::tokens::unix_now() + 3600));
    for (k, v) in &spec.claims {
        claims.insert(k.clone(), v.clone());
    }
    for k in &spec.drop {
        claims.remove(k);
    }
    let kid = spec
        .kid
        .clone()
        .or_else(|| provider.and_then(|p| p.config().keys.first().cloned()))
        .unwrap_or_else(|| "oidc-1".into());
    match stack.pki().signing_key(&kid) {
        Some(key) => key.sign_claims(&claims),
        // A kid no TEST ONLY key has: signed with another key under that name.
        None => stack.pki().signing_keys()[0].sign_jwt(
            &json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string(),
            &Value::Object(claims).to_string(),
        ),
    }
}

/// The identity providers `issuers` as `map_principal` trust entries.
pub(crate) fn trust_of_providers(stack: &idprop_mocks::Stack, issuers: &[String]) -> Vec<Trust> {
    issuers
        .iter()
        .filter_map(|i| stack.identity_provider(i))
        .map(|p| Trust {
            issuer: p.config().issuer.clone(),
            jwks_uri: Some(p.config().jwks_uri()),
            jwks: serde_json::to_value(p.jwks()).ok(),
        })
        .collect()
}

/// A JSON object's map (an empty one for anything else).
pub(crate) fn object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// The stack's tenants as `map_principal` trust entries, keys inline.
pub(crate) fn trust_of(stack: &idprop_mocks::Stack, tenants: &[String]) -> Vec<Trust> {
    let jwks = serde_json::to_value(stack.pki().jwks()).ok();
    tenants
        .iter()
        .map(|t| Trust {
            issuer: stack.uaa().factory().issuer(t),
            jwks_uri: Some(stack.uaa().factory().jku(t)),
            jwks: jwks.clone(),
        })
        .collect()
}
