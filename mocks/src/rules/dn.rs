//! Distinguished names as RFC 4514 writes them (`SP-4`).
//!
//! RFC 4514 §2.4 says which characters MUST be escaped and lets an
//! implementation escape any other one (as `\c` or `\XX`): `CN=a\,b`,
//! `CN=a\2Cb` and, for a newline, a raw newline or `\0A` are all the same
//! name. A verdict on a subject must therefore compare parsed names, which
//! [`parse`] and [`same_name`] do; [`escape_value`] is the one spelling idprop
//! itself writes.

/// One attribute: its type (upper-cased, aliases folded) and raw value.
pub type Attribute = (String, String);

/// A name that is not a valid RFC 4514 string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 4514 distinguished name at byte {at}: {what}")]
pub struct DnError {
    pub at: usize,
    pub what: &'static str,
}

/// How a DN is spelled: RFC 4514 §2.4 allows several escapings of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spelling {
    /// idprop's: `\c` for the characters that must be escaped, `\XX` for
    /// control characters.
    Idprop,
    /// The other: `\XX` for the characters that must be escaped, control
    /// characters other than NUL left as they are.
    Hex,
}

/// [`escape_value`] in the given spelling.
pub fn escape_value_as(v: &str, spelling: Spelling) -> String {
    if spelling == Spelling::Idprop {
        return escape_value(v);
    }
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let must = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '\0')
            || (c == '#' && i == 0)
            || (c == ' ' && (i == 0 || i == last));
        if must {
            out.push_str(&format!("\\{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// [`to_string`] in the given spelling.
pub fn to_string_as(attrs: &[Attribute], spelling: Spelling) -> String {
    attrs.iter().map(|(a, v)| format!("{a}={}", escape_value_as(v, spelling))).collect::<Vec<_>>().join(",")
}

/// Escapes an attribute value per RFC 4514 §2.4: the characters that must
/// be escaped as `\c`, a leading `#` or leading/trailing space, NUL and other
/// control characters as `\XX` (a choice: §2.4 only *permits* that).
pub fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The RFC 4514 string of attributes, one RDN each, in order.
pub fn to_string(attrs: &[Attribute]) -> String {
    attrs.iter().map(|(a, v)| format!("{a}={}", escape_value(v))).collect::<Vec<_>>().join(",")
}

/// Attribute type names that denote the same attribute, folded to one.
fn canonical_type(t: &str) -> String {
    let up = t.trim().to_ascii_uppercase();
    match up.as_str() {
        "2.5.4.3" => "CN".into(),
        "2.5.4.6" => "C".into(),
        "2.5.4.7" => "L".into(),
        "2.5.4.8" => "ST".into(),
        "2.5.4.10" => "O".into(),
        "2.5.4.11" => "OU".into(),
        "E" | "EMAIL" | "EMAILADDRESS" | "1.2.840.113549.1.9.1" => "EMAIL".into(),
        _ => up,
    }
}

/// Parses an RFC 4514 string into its RDNs (each a set of attributes, kept
/// in the order written). Unescaped spaces around `=`, `,` and `+` are
/// tolerated, as most LDAP libraries do.
pub fn parse(dn: &str) -> Result<Vec<Vec<Attribute>>, DnError> {
    let b = dn.as_bytes();
    let mut i = 0;
    let mut rdns: Vec<Vec<Attribute>> = Vec::new();
    if dn.trim().is_empty() {
        return Ok(rdns);
    }
    let mut rdn: Vec<Attribute> = Vec::new();
    loop {
        // attribute type
        let start = i;
        while i < b.len() && b[i] != b'=' {
            if matches!(b[i], b',' | b'+' | b'\\') {
                return Err(DnError { at: i, what: "expected `=` after the attribute type" });
            }
            i += 1;
        }
        if i >= b.len() {
            return Err(DnError { at: start, what: "attribute without `=`" });
        }
        let ty = dn[start..i].trim();
        if ty.is_empty() {
            return Err(DnError { at: start, what: "empty attribute type" });
        }
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        // value
        let mut bytes: Vec<u8> = Vec::new();
        let mut trailing_unescaped_spaces = 0usize;
        if i < b.len() && b[i] == b'#' {
            // hexstring: kept as written (lower case), compared as such
            let s = i;
            while i < b.len() && !matches!(b[i], b',' | b'+') {
                i += 1;
            }
            bytes.extend(dn[s..i].trim_end().to_ascii_lowercase().bytes());
        } else {
            while i < b.len() && !matches!(b[i], b',' | b'+') {
                if b[i] == b'\\' {
                    let n = *b.get(i + 1).ok_or(DnError { at: i, what: "trailing backslash" })?;
                    let hex = |c: u8| (c as char).to_digit(16);
                    if let (Some(h), Some(l)) = (hex(n), b.get(i + 2).and_then(|c| hex(*c))) {
                        bytes.push((h * 16 + l) as u8);
                        i += 3;
                    } else {
                        bytes.push(n);
                        i += 2;
                    }
                    trailing_unescaped_spaces = 0;
                } else {
                    trailing_unescaped_spaces = if b[i] == b' ' { trailing_unescaped_spaces + 1 } else { 0 };
                    bytes.push(b[i]);
                    i += 1;
                }
            }
            bytes.truncate(bytes.len() - trailing_unescaped_spaces);
        }
        let value = String::from_utf8(bytes).map_err(|_| DnError { at: i, what: "escaped bytes are not UTF-8" })?;
        rdn.push((canonical_type(ty), value));
        match b.get(i) {
            None => {
                rdns.push(std::mem::take(&mut rdn));
                return Ok(rdns);
            }
            Some(b'+') => {}
            Some(_) => rdns.push(std::mem::take(&mut rdn)),
        }
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
    }
}

/// Whether two RFC 4514 strings name the same entry: the same RDNs in the
/// same order, attribute types compared case-insensitively with aliases
/// folded, values compared after unescaping, multi-valued RDNs as sets.
pub fn same_name(a: &str, b: &str) -> Result<bool, DnError> {
    let norm = |dn: &str| -> Result<Vec<Vec<Attribute>>, DnError> {
        let mut v = parse(dn)?;
        v.iter_mut().for_each(|rdn| rdn.sort());
        Ok(v)
    };
    Ok(norm(a)? == norm(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_escaping_is_the_same_name() {
        for (a, b) in [
            ("CN=a\\,O=evil", "CN=a\\2CO=evil"),
            ("CN=a\\0AO=evil", "CN=a\nO=evil"),
            ("cn=Alice", "CN=Alice"),
            ("EMAIL=a@b.test,CN=x", "emailAddress=a@b.test, CN=x"),
            ("CN=a+OU=b", "OU=b+CN=a"),
            ("CN=\\ lead", "CN=\\20lead"),
            ("CN=\\#hash", "CN=\\23hash"),
            ("CN=caf\\C3\\A9", "CN=café"),
        ] {
            assert!(same_name(a, b).unwrap(), "{a} vs {b}");
        }
    }

    #[test]
    fn different_values_or_attributes_differ() {
        for (a, b) in
            [("CN=a\\,O=evil", "CN=a,O=evil"), ("CN=alice", "CN=bob"), ("CN=a,OU=b", "OU=b,CN=a"), ("CN=\\ x", "CN=x")]
        {
            assert!(!same_name(a, b).unwrap(), "{a} vs {b}");
        }
    }

    #[test]
    fn escaping_round_trips_through_parsing() {
        for v in ["a,O=evil", "a\nb", " x ", "#h", "q\"<>;+\\", "${name}", "\u{0}"] {
            let dn = to_string(&[("CN".into(), v.into())]);
            assert_eq!(parse(&dn).unwrap(), vec![vec![("CN".to_string(), v.to_string())]], "{dn}");
        }
    }

    #[test]
    fn both_spellings_name_the_same_entry() {
        for v in ["a,O=evil", "a\nb", " x ", "#h", "q\"<>;+\\", "${name}", "\u{0}", "café"] {
            let attrs = [("CN".to_string(), v.to_string())];
            let (a, b) = (to_string_as(&attrs, Spelling::Idprop), to_string_as(&attrs, Spelling::Hex));
            assert!(same_name(&a, &b).unwrap(), "{a:?} vs {b:?}");
            assert_eq!(parse(&b).unwrap(), vec![attrs.to_vec()], "{b:?}");
        }
    }

    #[test]
    fn malformed_names_are_errors_not_panics() {
        for bad in ["CN", "=x", "CN=a\\", "CN=\\FF", ",,"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
