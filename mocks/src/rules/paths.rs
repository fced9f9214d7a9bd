//! Which request paths a Cloud Connector mapping lets through
//! (configure-access-control-http-e7d4927.md).
//!
//! The page: "The Cloud Connector checks that the path part of the URL …
//! is exactly as specified in the configuration", and with *Path and all
//! sub-paths* "allows all requests for which the URL path … starts with the
//! specified string" — a string prefix, so `/production/accounting-plus-…`
//! passes `/production/accounting`, as its example says. What the page
//! leaves to the implementation is which path is compared: idprop compares
//! and forwards the *normalised* path (RFC 3986 §6.2.2: unreserved
//! characters decoded, dot segments removed), so `/public/%2e%2e/secret`
//! is `/secret` both for the check and for the backend; paths that cannot
//! be normalised unambiguously (an encoded `/` or `\`, a backslash, a
//! control character) are refused.

/// A path the connector will not judge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path {path:?} is refused: {why}")]
pub struct PathError {
    pub path: String,
    pub why: &'static str,
}

/// The normalised form of a request path (without query).
pub fn normalise(path: &str) -> Result<String, PathError> {
    let err = |why| PathError { path: path.to_string(), why };
    if !path.starts_with('/') {
        return Err(err("not an absolute path"));
    }
    if path.contains('\\') {
        return Err(err("backslashes are not path separators here"));
    }
    // Decode the unreserved characters; keep every other escape as written
    // (upper-cased), refusing escaped separators.
    let b = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = path.get(i + 1..i + 3).filter(|h| h.bytes().all(|x| x.is_ascii_hexdigit()));
            let Some(hex) = hex else { return Err(err("a % that is not a percent-encoding")) };
            let v = u8::from_str_radix(hex, 16).expect("two hex digits");
            match v {
                b'/' | b'\\' => return Err(err("an encoded / or \\ would change the path's segments")),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => decoded.push(v as char),
                0..=0x1f | 0x7f => return Err(err("an encoded control character")),
                _ => decoded.push_str(&format!("%{}", hex.to_ascii_uppercase())),
            }
            i += 3;
        } else if c < 0x20 || c == 0x7f {
            return Err(err("a control character"));
        } else {
            decoded.push(c as char);
            i += 1;
        }
    }
    // RFC 3986 §5.2.4: remove dot segments.
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (n, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if n == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if n == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    Ok(format!("/{}", out.join("/")))
}

/// Whether `path` (normalised) is allowed by one of `prefixes` ("Path and
/// all sub-paths": the path starts with the configured string).
pub fn allowed(path: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| path.starts_with(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_in_every_spelling_is_resolved_before_the_check() {
        for raw in [
            "/echo/public/../secret",
            "/echo/public/%2e%2e/secret",
            "/echo/public/.%2e/secret",
            "/echo/public/%2E%2E/secret",
            "/echo/public/./../secret",
        ] {
            assert_eq!(normalise(raw).unwrap(), "/echo/secret", "{raw}");
        }
        assert_eq!(normalise("/echo/public/%2e%2e/%2e%2e/admin").unwrap(), "/admin");
        assert_eq!(normalise("/echo/public;/../secret").unwrap(), "/echo/secret");
        assert_eq!(normalise("/a/b/..").unwrap(), "/a/");
        assert_eq!(normalise("/../../x").unwrap(), "/x");
        assert_eq!(normalise("/echo/%7euser/a%20b").unwrap(), "/echo/~user/a%20b");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for raw in
            ["/echo/public\\..\\secret", "/echo/public%2f..%2fsecret", "/echo/%5c", "/a%", "/a%zz", "/a%00b", "x"]
        {
            assert!(normalise(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn sub_paths_are_string_prefixes_as_the_page_says() {
        let p = vec!["/production/accounting".to_string()];
        assert!(allowed("/production/accounting", &p));
        assert!(allowed("/production/accounting-plus-some-more-stuff-here", &p));
        assert!(!allowed("/production/other", &p));
        assert!(!allowed(&normalise("/production/accounting/../../admin").unwrap(), &p));
    }
}
