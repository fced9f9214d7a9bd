//! Tokens that passed validation, remembered by the SHA-256 of their exact
//! bytes until they expire: a token presented again (every request of a
//! user's session, every call with the same proxy token) is not verified
//! again. Refusals are never remembered; the set is bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::rules::token_validation::ValidToken;

/// Tokens remembered at most (a few MB of claims); the oldest go first.
pub const MAX_REMEMBERED: usize = 4096;

type Digest = [u8; 32];

#[derive(Default)]
struct Inner {
    tokens: HashMap<Digest, (i64, ValidToken)>,
    order: VecDeque<Digest>,
}

/// See the module documentation.
#[derive(Default)]
pub struct ValidatedTokens {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ValidatedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedTokens").finish_non_exhaustive()
    }
}

fn digest(token: &str) -> Digest {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.trim().as_bytes());
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

impl ValidatedTokens {
    /// The validation of `token` if it passed before and `now` is before
    /// `valid_until` as remembered.
    pub fn get(&self, token: &str, now: i64) -> Option<ValidToken> {
        let inner = self.inner.lock().expect("validated tokens lock");
        inner.tokens.get(&digest(token)).filter(|(until, _)| now < *until).map(|(_, v)| v.clone())
    }

    /// Remembers that `token` validated to `valid`, until `valid_until`
    /// (its `exp`, plus any tolerance the caller grants).
    pub fn put(&self, token: &str, valid_until: i64, valid: &ValidToken) {
        let key = digest(token);
        let mut inner = self.inner.lock().expect("validated tokens lock");
        if inner.tokens.insert(key, (valid_until, valid.clone())).is_none() {
            inner.order.push_back(key);
        }
        while inner.tokens.len() > MAX_REMEMBERED {
            let Some(old) = inner.order.pop_front() else { break };
            inner.tokens.remove(&old);
        }
    }

    /// Forgets everything (the trusted keys changed).
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("validated tokens lock");
        inner.tokens.clear();
        inner.order.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().expect("validated tokens lock").tokens.len()
    }
}

/// `exp` of validated claims (validation guarantees a number).
pub fn exp_of(v: &ValidToken) -> i64 {
    v.claims.get("exp").and_then(|e| e.as_i64().or_else(|| e.as_f64().map(|f| f as i64))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(exp: i64) -> ValidToken {
        let mut claims = serde_json::Map::new();
        claims.insert("exp".into(), exp.into());
        ValidToken { header: Default::default(), claims }
    }

    #[test]
    fn remembered_until_expiry_and_bounded() {
        let v = ValidatedTokens::default();
        v.put("a.b.c", 100, &valid(100));
        assert!(v.get("a.b.c", 99).is_some());
        assert!(v.get("a.b.c", 100).is_none(), "expired");
        assert!(v.get("a.b.x", 50).is_none(), "another token");
        for i in 0..MAX_REMEMBERED + 10 {
            v.put(&format!("t{i}"), 100, &valid(100));
        }
        assert_eq!(v.len(), MAX_REMEMBERED);
        assert!(v.get("a.b.c", 1).is_none(), "the oldest went first");
        assert!(v.get(&format!("t{}", MAX_REMEMBERED + 9), 1).is_some());
    }
}
