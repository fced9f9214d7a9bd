//! Which URL the token request goes to (rules `TU-1`..`TU-4`).

use super::RuleError;

/// `tokenServiceURLType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlType {
    /// One tenant: the URL as is (`TU-1`). Also the default when absent.
    Dedicated,
    /// Many tenants: the caller's subdomain goes into the URL.
    Common,
}

impl UrlType {
    /// Reads `tokenServiceURLType`; absent means `Dedicated` (`TU-1`).
    /// Matching is case-insensitive: the cockpit writes `Common`, people
    /// write `common`.
    pub fn parse(value: Option<&str>) -> Result<Self, RuleError> {
        Self::parse_with(value, UrlType::Dedicated)
    }

    /// [`UrlType::parse`] with the type an absent property means: no page
    /// gives a default (idprop: `Dedicated`).
    pub fn parse_with(value: Option<&str>, absent: UrlType) -> Result<Self, RuleError> {
        match value.map(str::trim) {
            None | Some("") => Ok(absent),
            Some(v) if v.eq_ignore_ascii_case("dedicated") => Ok(Self::Dedicated),
            Some(v) if v.eq_ignore_ascii_case("common") => Ok(Self::Common),
            Some(v) => Err(RuleError::Invalid {
                property: "tokenServiceURLType",
                message: format!("{v:?} is neither Dedicated nor Common"),
            }),
        }
    }
}

/// The literal placeholder of the `Common` URL type.
pub const TENANT_PLACEHOLDER: &str = "{tenant}";

/// Resolves the token service URL for a call on behalf of `tenant`.
///
/// - `TU-1` `Dedicated`: as is, whatever the tenant (a `{tenant}` in it stays).
/// - `TU-2`/`TU-3` `Common`: every `{tenant}`, in host or path, becomes the
///   tenant's subdomain.
/// - `TU-4` `Common` without placeholder: the subdomain is inserted before
///   the host: `https://authentication.x/…` → `https://mytenant.authentication.x/…`.
///
/// Spec note (facts (j)2, "inserted" vs "processed" as a subdomain): we
/// prepend one label to the whole host, which is what the documentation's
/// only example does; we never replace an existing label.
pub fn resolve(url: &str, url_type: UrlType, tenant: &str) -> Result<String, RuleError> {
    if url.trim().is_empty() {
        return Err(RuleError::Missing("tokenServiceURL"));
    }
    let url = url.trim();
    match url_type {
        UrlType::Dedicated => Ok(url.to_string()),
        UrlType::Common => {
            if tenant.is_empty() {
                return Err(RuleError::Invalid {
                    property: "tokenServiceURLType",
                    message: "Common needs the caller's tenant subdomain, and none is known".into(),
                });
            }
            if url.contains(TENANT_PLACEHOLDER) {
                return Ok(url.replace(TENANT_PLACEHOLDER, tenant));
            }
            let (scheme, rest) = url.split_once("://").ok_or_else(|| RuleError::Invalid {
                property: "tokenServiceURL",
                message: format!("{url:?} is not an absolute URL"),
            })?;
            // Userinfo is not expected in a token URL; the host starts right
            // after the scheme.
            Ok(format!("{scheme}://{tenant}.{rest}"))
        }
    }
}
