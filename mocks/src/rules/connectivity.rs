//! The Connectivity proxy's rules (`CP-1`..`CP-5`, `TP-2`): which requests
//! it serves, which token opens it, which connector a request goes to, which
//! headers go on to the Cloud Connector and the backend.

use serde_json::{Map, Value};

/// `SAP-Connectivity-Authentication`: the user's token (`PP-1`).
pub const H_USER: &str = "sap-connectivity-authentication";
/// `SAP-Connectivity-Technical-Authentication` (`TP-1`).
pub const H_TECHNICAL: &str = "sap-connectivity-technical-authentication";
/// `SAP-Connectivity-SCC-Location_ID` (`CP-2`).
pub const H_LOCATION: &str = "sap-connectivity-scc-location_id";
/// Request line and headers above this are refused (`CP-3`).
pub const MAX_HEAD_BYTES: usize = 8192;
use super::auth_type::grant::JWT_BEARER as JWT_BEARER_GRANT;

/// `CP-3`: the proxy is plain HTTP; `CONNECT` and `https://` request URLs
/// are refused (313b215: "the Connectivity proxy … HTTP").
pub fn plain_http(method: &str, scheme: Option<&str>) -> bool {
    !method.eq_ignore_ascii_case("CONNECT") && scheme != Some("https")
}

/// `CP-1`: a `Proxy-Authorization` token opens the proxy only when it was
/// issued to the connectivity binding's client (`cid`).
pub fn proxy_token_client_ok(claims: &Map<String, Value>, binding_client_id: &str) -> bool {
    claims.get("cid").and_then(Value::as_str) == Some(binding_client_id)
}

/// `CP-6`: the `resource` an IAS proxy token is requested for (313b215:
/// "The token request must contain an additional parameter - "resource"
/// with value "urn:sap:identity:application:service:id:<instance_id>"").
pub fn ias_resource(instance_guid: &str) -> String {
    format!("urn:sap:identity:application:service:id:{instance_guid}")
}

/// `CP-6`: an IAS token (of an IAS tenant the subaccount trusts) opens the
/// proxy when it was issued for the Connectivity instance: its `aud` names
/// [`ias_resource`]. RFC 8707 §2: the resource "indicate[s] the target
/// service or resource to which access is being requested", which the
/// token's audience then names.
pub fn ias_proxy_token_ok(claims: &Map<String, Value>, instance_guid: &str) -> bool {
    let want = ias_resource(instance_guid);
    match claims.get("aud") {
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(want.as_str())),
        Some(Value::String(s)) => *s == want,
        _ => false,
    }
}

/// `CP-2`: the connector a request goes to: the location header, the
/// default (empty) location when absent (73194cc: "The default value is an
/// empty string identifying the Cloud Connector that is connected without
/// any location ID").
pub fn location(header: Option<&str>) -> &str {
    header.unwrap_or("")
}

/// `CP-5`: a `Proxy-Authorization` token obtained by jwt-bearer exchange
/// (or naming a user) carries the user by itself (39f538a).
pub fn carries_user(proxy_claims: &Map<String, Value>) -> bool {
    proxy_claims.contains_key("user_name")
        || proxy_claims.get("grant_type").and_then(Value::as_str) == Some(JWT_BEARER_GRANT)
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: never
/// forwarded by anything that relays a request.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// `CP-4`, `TP-2`: whether an application's header `name` (lower case)
/// goes on to the backend. `Proxy-Authorization`, hop-by-hop headers and
/// the `SAP-Connectivity-*` headers never do (f8d6f9a: "the Connectivity
/// service will drop Connectivity service-specific headers"); the
/// application's `Authorization` does not when an identity is propagated;
/// client-certificate headers do not, since only the Cloud Connector sets
/// them.
pub fn forwarded(name: &str, identity_propagated: bool) -> bool {
    let identity_header = matches!(name, "ssl_client_cert" | "ssl-client-cert" | "x-ssl-client-cert");
    !(identity_header
        || HOP_BY_HOP.contains(&name)
        || name.starts_with("sap-connectivity-")
        || name == "host"
        || name == "content-length"
        || (name == "authorization" && identity_propagated))
}

/// Whether a response header of the backend goes back to the application.
pub fn returned(name: &str) -> bool {
    !HOP_BY_HOP.contains(&name) && name != "content-length"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxys_headers_and_identity_headers_never_go_on() {
        for h in ["proxy-authorization", H_USER, H_TECHNICAL, H_LOCATION, "ssl_client_cert", "connection", "host"] {
            assert!(!forwarded(h, false), "{h}");
        }
        assert!(forwarded("authorization", false), "basic authentication to the backend passes");
        assert!(!forwarded("authorization", true), "TP-2");
        assert!(forwarded("x-custom", true));
    }

    #[test]
    fn the_proxy_rules() {
        assert!(plain_http("GET", Some("http")) && !plain_http("CONNECT", None) && !plain_http("GET", Some("https")));
        let mut c = Map::new();
        c.insert("cid".into(), "binding".into());
        assert!(proxy_token_client_ok(&c, "binding") && !proxy_token_client_ok(&c, "other"));
        assert_eq!(location(None), "");
        assert!(!carries_user(&c));
        c.insert("grant_type".into(), JWT_BEARER_GRANT.into());
        assert!(carries_user(&c));
    }
}
