//! The normalized transcript of what the mocks observed: stable across
//! runs and implementations (tokens, ports, times and ids redacted), so it
//! can be snapshotted for the reference and diffed against anybody.

use idprop_mocks::JournalEntry;

/// Headers that say nothing about conformance (or differ by HTTP client).
const IGNORED_HEADERS: [&str; 11] = [
    "date",
    "user-agent",
    "content-length",
    "accept",
    "accept-encoding",
    "connection",
    "host",
    "te",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

/// One line per request, then its details, indented.
pub fn transcript(entries: &[JournalEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let scheme = if e.tls { "https" } else { "http" };
        let status = if e.status == 0 { "---".to_string() } else { e.status.to_string() };
        out.push_str(&format!("{status} {} {scheme}://{}{} [{}]\n", e.method, e.host, e.path, e.component));
        let mut query: Vec<String> = e.query.iter().map(|(k, v)| format!("{k}={}", redact(v))).collect();
        query.sort();
        if !query.is_empty() {
            out.push_str(&format!("    query: {}\n", query.join("&")));
        }
        let mut headers: Vec<String> = e
            .headers
            .iter()
            .filter(|(k, _)| !IGNORED_HEADERS.contains(&k.as_str()))
            .map(|(k, v)| {
                let v = match (k.as_str(), crate::checks::basic_of(v), &e.ssl_client_cert) {
                    // A fresh certificate each run: its subject and issuer stand for it.
                    ("ssl_client_cert", _, Some(c)) => format!("<certificate {} (issuer {})>", c.subject, c.issuer),
                    (_, Some(b), _) => format!("Basic <{b}>"),
                    _ => redact(v),
                };
                format!("{k}: {v}")
            })
            .collect();
        headers.sort();
        for h in headers {
            out.push_str(&format!("    {h}\n"));
        }
        let mut form: Vec<String> = e
            .form
            .iter()
            .map(|(k, v)| match idprop_mocks::saml::decode(v) {
                // A SAML assertion is signed anew each time: its subject
                // and issuer are what a reader compares.
                Ok(xml) if k == "assertion" && xml.contains(":Assertion") => {
                    format!("{k}=<SAML assertion{}>", saml_summary(&xml))
                }
                _ => format!("{k}={}", redact(v)),
            })
            .collect();
        form.sort();
        if !form.is_empty() {
            out.push_str(&format!("    form: {}\n", form.join("&")));
        }
        if let Some(c) = &e.client_cert {
            out.push_str(&format!("    client certificate: {} (issuer {})\n", c.subject, c.issuer));
        }
    }
    out
}

/// ` of NAME-ID by ISSUER` when the assertion names them.
fn saml_summary(xml: &str) -> String {
    let text_of = |tag: &str| {
        let start = xml.find(&format!(":{tag}"))?;
        let rest = &xml[start..];
        let open_end = rest.find('>')? + 1;
        let close = rest.find("</")?;
        (open_end <= close).then(|| rest[open_end..close].to_string())
    };
    match (text_of("NameID"), text_of("Issuer")) {
        (Some(n), Some(i)) => format!(" of {n} by {i}"),
        _ => String::new(),
    }
}

/// Replaces JWTs, token-server tokens and loopback ports with placeholders.
pub fn redact(v: &str) -> String {
    v.split(' ')
        .map(|w| {
            if w.starts_with("eyJ") && w.matches('.').count() >= 2 {
                "<jwt>".to_string()
            } else if let Some(rest) = w.strip_prefix("ts.") {
                let host = rest.rsplitn(3, '.').nth(2).unwrap_or(rest);
                format!("<token of {host}>")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A readable line diff of two transcripts.
pub fn diff(reference: &str, other: &str) -> String {
    let d = similar::TextDiff::from_lines(reference, other);
    let mut out = String::new();
    for change in d.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        out.push_str(&format!("{sign} {change}"));
    }
    out
}
