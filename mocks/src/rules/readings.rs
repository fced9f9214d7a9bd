//! The points where SAP's pages are silent or contradict each other, and
//! the two readings idprop knows of each.
//!
//! The mocks and `builtin:reference` take [`Readings::IDPROP`];
//! `builtin:reference/alt` takes [`Readings::ALTERNATIVE`], the other
//! documented or reasonable reading at every point. The suite must pass
//! both at its default profile: that is the standing proof that it does not
//! encode idprop's readings as requirements. Each point is an enum in the
//! module of its rule; this struct only gathers them.

use super::client_auth::Ca4;
use super::dn::Spelling;
use super::principal::{UnknownHeader, WrongTypeClaim};
use super::timeouts::ZeroTimeout;
use super::token_url::UrlType;
use super::token_validation;

/// `CH-3` for `Dedicated` token URLs: every tenant gets the same URL, so
/// whether the cache is per tenant is not stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DedicatedCache {
    /// idprop's reading: per tenant, like every other key part.
    PerTenant,
    /// The other: one entry for every tenant (the token service is one).
    Shared,
}

/// `CH-4`: concurrent lookups of the same key (no page mentions them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConcurrentLookups {
    /// idprop's reading: one token request, the others wait for it.
    SingleFlight,
    /// The other: each lookup may fetch its own token.
    Independent,
}

/// One reading at every open point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Readings {
    /// `TV-2`/`TV-3`: size limit, duplicate keys, future `iat`, foreign `jku`.
    pub validation: token_validation::Readings,
    /// `TV-4`: a principal claim of the wrong type.
    pub wrong_type_claim: WrongTypeClaim,
    /// `SP-4`: how subjects are spelled (RFC 4514 allows several).
    pub dn: Spelling,
    /// `CA-4`: service user with credentials in the body.
    pub ca4: Ca4,
    pub dedicated_cache: DedicatedCache,
    pub concurrent_lookups: ConcurrentLookups,
    /// `TO-5`: a timeout of 0.
    pub zero_timeout: ZeroTimeout,
    /// `TU-1`: what an absent `tokenServiceURLType` means.
    pub absent_url_type: UrlType,
    /// `PP-3`: the user type when the propagation header is not known.
    pub unknown_header: UnknownHeader,
}

impl Readings {
    pub const IDPROP: Readings = Readings {
        validation: token_validation::Readings::IDPROP,
        wrong_type_claim: WrongTypeClaim::Refuse,
        dn: Spelling::Idprop,
        ca4: Ca4::BasicAndBody,
        dedicated_cache: DedicatedCache::PerTenant,
        concurrent_lookups: ConcurrentLookups::SingleFlight,
        zero_timeout: ZeroTimeout::Default,
        absent_url_type: UrlType::Dedicated,
        unknown_header: UnknownHeader::FromClaims,
    };
    pub const ALTERNATIVE: Readings = Readings {
        validation: token_validation::Readings::ALTERNATIVE,
        wrong_type_claim: WrongTypeClaim::Skip,
        dn: Spelling::Hex,
        ca4: Ca4::BasicAlone,
        dedicated_cache: DedicatedCache::Shared,
        concurrent_lookups: ConcurrentLookups::Independent,
        zero_timeout: ZeroTimeout::Infinite,
        absent_url_type: UrlType::Common,
        unknown_header: UnknownHeader::Business,
    };
}

impl Default for Readings {
    fn default() -> Self {
        Readings::IDPROP
    }
}
