//! Helpers shared by the integration tests.
#![allow(dead_code)]

use idprop::mocks::Stack;
use serde_json::Value;

pub const APP: (&str, &str) = idprop::mocks::uaa::APP_CLIENT;

pub async fn stack() -> Stack {
    Stack::start().await.expect("stack starts")
}

/// POSTs a form to `url` through the gateway; returns status and JSON body.
pub async fn post_form(
    stack: &Stack,
    url: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = stack.http_client().post(url).form(form);
    if let Some((u, p)) = basic {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.expect("request through the gateway");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The claims of a JWT, unverified.
pub fn claims(token: &str) -> serde_json::Map<String, Value> {
    idprop::mocks::tokens::peek_claims(token).expect("JWT payload decodes")
}
