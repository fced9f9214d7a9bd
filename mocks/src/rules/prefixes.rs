//! Prefixed properties (rules `PX-1`..`PX-4`): static headers, query
//! parameters and body fields, for the token request and for the target.

use super::properties::Destination;

pub const TOKEN_HEADERS: &str = "tokenServiceURL.headers.";
pub const TOKEN_QUERIES: &str = "tokenServiceURL.queries.";
pub const TOKEN_BODY: &str = "tokenService.body.";
pub const URL_HEADERS: &str = "URL.headers.";
pub const URL_QUERIES: &str = "URL.queries.";

/// Every prefixed property of a destination, prefix stripped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefixed {
    /// `PX-1`: headers on the token request.
    pub token_headers: Vec<(String, String)>,
    /// `PX-2`: query parameters on the token request.
    pub token_queries: Vec<(String, String)>,
    /// `PX-3`: form fields in the token request body.
    pub token_body: Vec<(String, String)>,
    /// `PX-4`/`PX-5`: for the client's call to the target, never the token service.
    pub url_headers: Vec<(String, String)>,
    pub url_queries: Vec<(String, String)>,
}

impl Prefixed {
    /// Collects the five prefix families. The prefix is matched exactly
    /// (case-sensitive, with its dot); the rest of the key, whatever it
    /// holds (dots, spaces, non-ASCII), is the name.
    pub fn of(d: &Destination) -> Self {
        let take = |p: &str| d.with_prefix(p).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self {
            token_headers: take(TOKEN_HEADERS),
            token_queries: take(TOKEN_QUERIES),
            token_body: take(TOKEN_BODY),
            url_headers: take(URL_HEADERS),
            url_queries: take(URL_QUERIES),
        }
    }
}
