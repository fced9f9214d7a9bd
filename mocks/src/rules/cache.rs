//! When a cached token may be handed out again (rules `CH-1`..`CH-3`).

use std::time::Duration;

/// The most a token is renewed ahead of its expiry.
pub const MAX_RENEWAL_LEAD: Duration = Duration::from_secs(60);

/// How long a token fetched with `expires_in` may be served from the cache.
///
/// `CH-2`: "a new token is created shortly before the expiration of the old
/// one" gives no figure (facts (j)15). Ours: a tenth of the lifetime, at
/// most 60 s, so a one-hour token is renewed a minute early and a
/// two-second token 200 ms early; never beyond `expires_in` (`CH-1`). A
/// token without `expires_in` is not cached.
pub fn cacheable_for(expires_in: Option<u64>) -> Option<Duration> {
    let life = Duration::from_secs(expires_in?);
    let lead = (life / 10).min(MAX_RENEWAL_LEAD);
    let keep = life.saturating_sub(lead);
    (!keep.is_zero()).then_some(keep)
}

/// What a cached token is keyed by (`CH-3`): another tenant, user,
/// destination, client or token URL never shares an entry, and neither does
/// another configuration of the same destination (a fragment that changes
/// its secret, f56600a: the merged JSON "will be used for retrieving
/// tokens").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub tenant: String,
    pub destination: String,
    /// The user token's identity (`zid` + `sub`, or a hash of the token);
    /// empty for technical types.
    pub user: String,
    pub client_id: String,
    pub token_url: String,
    /// A digest of every property of the destination as read.
    pub properties: u64,
}

/// [`CacheKey::properties`]: FNV-1a over the sorted properties (not
/// cryptographic; it only tells configurations apart).
pub fn properties_digest(properties: &std::collections::BTreeMap<String, String>) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for (k, v) in properties {
        for b in k.bytes().chain([0u8]).chain(v.bytes()).chain([0u8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}
