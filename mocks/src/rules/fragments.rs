//! Destination fragments (rules `FR-1`..`FR-3`, f56600a, 78ba73a): which
//! fragments a lookup asks for, and how they extend the destination.

use super::properties::Destination;
use super::RuleError;

/// The property that names a fragment, and that lists the applied ones in
/// the result.
pub const FRAGMENT_NAME: &str = "FragmentName";

/// What `X-fragment-name` / `X-fragment-optional` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentRequest {
    /// Names in header order, each with its `@level` if given (v2, 78ba73a:
    /// "If not specified, the level of the destination is assumed").
    pub names: Vec<(String, Option<String>)>,
    /// Only for a single fragment (`FR-2`).
    pub optional: bool,
}

/// `FR-1`/`FR-2`: reads the headers. f56600a: "The names of the destination
/// fragment as a comma-separated list"; "If multiple fragments are listed in
/// the X-Fragment-Name request header, the X-Fragment-Optional header will be
/// disabled"; its value is "true/false", and absent is false (d716d41: "If
/// this header is applicable but not provided, the default value will be
/// false").
pub fn request(name_header: Option<&str>, optional_header: Option<&str>) -> Result<Option<FragmentRequest>, RuleError> {
    let Some(raw) = name_header else { return Ok(None) };
    let names: Vec<(String, Option<String>)> = raw
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| match n.split_once('@') {
            Some((name, level)) => (name.trim().to_string(), Some(level.trim().to_string())),
            None => (n.to_string(), None),
        })
        .collect();
    if names.is_empty() {
        return Err(RuleError::Invalid { property: "X-fragment-name", message: "names no fragment".into() });
    }
    let optional = match optional_header.map(str::trim) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(RuleError::Invalid {
                property: "X-fragment-optional",
                message: format!("{v:?}: must be true or false"),
            })
        }
    };
    Ok(Some(FragmentRequest { optional: optional && names.len() == 1, names }))
}

/// `FR-1`: the destination extended by `fragments`, in order. f56600a: "If
/// any fragment property uses the same key name as a destination property,
/// the combined JSON object will use the value of the fragment property"; "the
/// destination JSON will be merged with each fragment in the order of how the
/// fragments are listed"; the result "will include FragmentName, containing
/// a comma-separated list of all applied fragments". Every key may come from
/// a fragment (the page bars none).
pub fn merge(destination: &Destination, fragments: &[&Destination]) -> Destination {
    let mut out = destination.clone();
    let mut applied = Vec::new();
    for f in fragments {
        for (k, v) in &f.0 {
            if k == FRAGMENT_NAME {
                applied.push(v.clone());
            } else {
                out.0.insert(k.clone(), v.clone());
            }
        }
    }
    if !applied.is_empty() {
        out.0.insert(FRAGMENT_NAME.into(), applied.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(pairs: &[(&str, &str)]) -> Destination {
        Destination(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn the_headers_name_fragments_in_order_and_optional_only_alone() {
        let r = request(Some("a, b@instance"), Some("true")).unwrap().unwrap();
        assert_eq!(r.names, vec![("a".into(), None), ("b".into(), Some("instance".into()))]);
        assert!(!r.optional, "several fragments disable X-fragment-optional");
        assert!(request(Some("a"), Some("TRUE")).unwrap().unwrap().optional);
        assert!(!request(Some("a"), None).unwrap().unwrap().optional);
        assert!(request(Some("a"), Some("maybe")).is_err());
        assert!(request(Some(" , "), None).is_err());
        assert_eq!(request(None, Some("true")).unwrap(), None);
    }

    /// f56600a's own example: the last fragment wins a conflict, and
    /// `FragmentName` lists what was applied.
    #[test]
    fn fragments_win_in_header_order_and_are_listed() {
        let dest = d(&[("Name", "n"), ("conflicting-property", "destination-value"), ("kept", "1")]);
        let f1 = d(&[("FragmentName", "example-fragment-1"), ("conflicting-property", "conflicting-value-1")]);
        let f2 = d(&[("FragmentName", "example-fragment-2"), ("conflicting-property", "conflicting-value-2")]);
        let m = merge(&dest, &[&f1, &f2]);
        assert_eq!(m.get("conflicting-property"), Some("conflicting-value-2"));
        assert_eq!(m.get("kept"), Some("1"));
        assert_eq!(m.get("FragmentName"), Some("example-fragment-1,example-fragment-2"));
        assert_eq!(merge(&dest, &[]), dest);
    }
}
