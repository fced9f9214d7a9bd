//! The oracle: what the rules say an implementation should have sent and
//! answered, under every reading the pages allow.

use super::*;

/// The readings a correct implementation may take where the pages leave a
/// choice that shows on the wire: `CA-4` and an absent `tokenServiceURLType`.
pub(super) fn retrieval_readings() -> Vec<Readings> {
    let mut out = Vec::new();
    for ca4 in [Ca4::BasicAndBody, Ca4::BasicAlone] {
        for absent_url_type in [UrlType::Dedicated, UrlType::Common] {
            out.push(Readings { ca4, absent_url_type, ..Readings::IDPROP });
        }
    }
    out
}

/// `(k, v)` pairs compared as a set, values trimmed, blank ones dropped: no
/// page says whether a blank property is absent or an empty value, nor
/// whether values are trimmed — both readings pass.
fn lenient(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> =
        pairs.iter().filter(|(_, v)| !v.trim().is_empty()).map(|(k, v)| (k.clone(), v.trim().to_string())).collect();
    v.sort();
    v
}

/// What the token server saw against what the rules say it should have:
/// the observed request must match the oracle under one of the readings.
/// A mismatch is reported against the first (idprop's) reading.
pub fn judge_retrieval(
    d: &Destination,
    expected: &[TokenRequest],
    answers: &[Value],
    seen: &[JournalEntry],
) -> Result<(), Broken> {
    let mut first_miss = None;
    for tr in expected {
        match judge_request(d, tr, answers, seen) {
            Ok(()) => return judge_answers(d, answers),
            Err(b) => {
                first_miss.get_or_insert(b);
            }
        }
    }
    Err(first_miss.unwrap_or_else(|| broken("FD-1", "no oracle plan".into())))
}

fn judge_request(
    d: &Destination,
    expected: &TokenRequest,
    answers: &[Value],
    seen: &[JournalEntry],
) -> Result<(), Broken> {
    let url = url::Url::parse(&expected.url).map_err(|e| broken("TU-1", format!("oracle URL: {e}")))?;
    // Which URL rule a wrong target breaks.
    let raw = d.get("tokenServiceURL").unwrap_or("");
    let common = d.get("tokenServiceURLType").is_some_and(|t| t.eq_ignore_ascii_case("common"));
    let url_rule = match (common, raw.find("{tenant}")) {
        (false, _) => "TU-1",
        (true, None) => "TU-4",
        (true, Some(i)) if raw[i..].contains('/') && raw[..i].matches('/').count() > 2 => "TU-3",
        (true, Some(_)) => "TU-2",
    };
    // Which credential rule a wrong placement breaks.
    let in_body = !d.get("tokenService.addClientCredentialsInBody").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let cred_rule = match (d.get("tokenServiceUser").is_some(), in_body) {
        (true, false) => "CA-3",
        (true, true) => "CA-4",
        (false, false) => "CA-2",
        (false, true) => "CA-1",
    };
    let Some(e) = seen.first() else {
        let err = answers.first().and_then(|a| a.pointer("/authTokens/0/error")).and_then(Value::as_str).unwrap_or("");
        return Err(broken(
            url_rule,
            format!("no token request reached a token server (expected {}); authTokens error: {err:?}", expected.url),
        ));
    };
    if seen.len() != 1 {
        return Err(broken("CH-1", format!("{} token requests for {} lookup(s)", seen.len(), answers.len())));
    }
    let host = url.host_str().unwrap_or_default();
    if e.host != host || e.path != url.path() {
        return Err(broken(
            url_rule,
            format!("token request went to {}{} — expected {host}{}", e.host, e.path, url.path()),
        ));
    }
    let want_q: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let (want_q, got_q) = (lenient(&want_q), lenient(&e.query));
    if want_q != got_q {
        let rule =
            if got_q.iter().any(|(k, _)| d.0.contains_key(&format!("URL.queries.{k}"))) { "PX-4" } else { "PX-2" };
        return Err(broken(rule, format!("query {got_q:?} — expected {want_q:?}")));
    }
    for (k, v) in &expected.headers {
        if e.header(k).map(str::trim) != Some(v.trim()) {
            return Err(broken("PX-1", format!("header {k}: {:?} — expected {v:?}", e.header(k))));
        }
    }
    if let Some((k, _)) = e.headers.iter().find(|(k, _)| k.starts_with("tokenserviceurl.")) {
        return Err(broken("PX-1", format!("header {k} still carries the prefix")));
    }
    if let Some((k, _)) = e.headers.iter().find(|(k, _)| k.starts_with("u-")) {
        return Err(broken("PX-4", format!("URL.headers.{k} reached the token service")));
    }
    let trim = |b: Option<(String, String)>| b.map(|(u, p)| (u.trim().to_string(), p.trim().to_string()));
    let basic = trim(e.basic_credentials());
    if basic != trim(expected.basic.clone()) {
        return Err(broken(cred_rule, format!("Basic {basic:?} — expected {:?}", expected.basic)));
    }
    let (want_f, got_f) = (lenient(&expected.form), lenient(&e.form));
    if want_f != got_f {
        let differs = |k: &str| want_f.iter().filter(|(f, _)| f == k).ne(got_f.iter().filter(|(f, _)| f == k));
        let rule = if differs("client_id") || differs("client_secret") {
            cred_rule
        } else if differs("scope") {
            "CA-9"
        } else if differs("grant_type") || differs("assertion") {
            if expected.auth == idprop_mocks::rules::AuthenticationType::OAuth2JWTBearer {
                "AT-1"
            } else {
                "CA-8"
            }
        } else {
            "PX-3"
        };
        return Err(broken(rule, format!("form {got_f:?} — expected {want_f:?}")));
    }
    Ok(())
}

/// The answers themselves: a token under the right header key, the same
/// token from the cache, `URL.*` returned for the client.
fn judge_answers(d: &Destination, answers: &[Value]) -> Result<(), Broken> {
    let technical = d.get("Authentication") == Some("OAuth2TechnicalUserPropagation");
    let (key, rule) =
        if technical { ("SAP-Connectivity-Technical-Authentication", "FD-2") } else { ("Authorization", "FD-3") };
    let mut values = Vec::new();
    for a in answers {
        let t = a.pointer("/authTokens/0").cloned().unwrap_or(Value::Null);
        if t.get("error").and_then(Value::as_str).is_some_and(|x| !x.is_empty())
            || t.pointer("/http_header/key").and_then(Value::as_str) != Some(key)
        {
            return Err(broken(rule, format!("authTokens[0] = {t}")));
        }
        values.push(t.get("value").and_then(Value::as_str).unwrap_or("").to_string());
        for (k, v) in d.0.iter().filter(|(k, _)| k.starts_with("URL.")) {
            if a.pointer("/destinationConfiguration").and_then(|c| c.get(k)).and_then(Value::as_str) != Some(v) {
                return Err(broken("PX-4", format!("destinationConfiguration.{k} is not {v:?} as configured")));
            }
        }
    }
    if values.windows(2).any(|w| w[0] != w[1]) {
        return Err(broken("CH-1", "the second lookup returned another token than the cached one".into()));
    }
    Ok(())
}

/// The answer to `map_principal` against the rules. Where the pages leave a
/// choice (a pattern variable the token lacks, `${mail}` without a `mail`
/// claim), either answer passes; subjects are compared as parsed DNs
/// (RFC 4514: any escaping of the same values).
pub fn judge_mapping(
    claims: &Map<String, Value>,
    pattern: &str,
    forged: Option<Forgery>,
    trusted: bool,
    technical: bool,
    answer: &Value,
) -> Result<(), Broken> {
    use idprop_mocks::rules::principal::UserType;
    let accepted = answer.get("accepted").and_then(Value::as_bool);
    // A `kid` naming no key, on a token the issuer's real key signed: RFC
    // 7515 makes `kid` a hint, so refusing and verifying with the issuer's
    // keys are both readings; an acceptance is judged like any other.
    let forged = forged.filter(|f| !(*f == Forgery::UnknownKid && accepted == Some(true)));
    if forged == Some(Forgery::UnknownKid) {
        return Ok(());
    }
    if let Some(f) = forged {
        let rule = match f {
            Forgery::Expired | Forgery::NotYetValid => "TV-3",
            _ => "TV-2",
        };
        return match accepted {
            Some(false) => Ok(()),
            _ => Err(broken(rule, format!("a {f:?} token was accepted: {answer}"))),
        };
    }
    if !trusted {
        return match accepted {
            Some(false) => Ok(()),
            _ => Err(broken("TV-1", format!("a token of an untrusted issuer was accepted: {answer}"))),
        };
    }
    let user_type = if technical { UserType::Technical } else { UserType::Business };
    let mail_fallback = pattern.contains("${mail}") && !claims.contains_key("mail");
    let rules = principal_mapping::single(pattern);
    match principal_mapping::map_claims_with(claims, &rules, &Readings::IDPROP, Some(user_type)) {
        Ok(m) => {
            let rule = if user_type == UserType::Technical { "PP-3" } else { "PP-2" };
            if accepted == Some(false) && mail_fallback {
                return Ok(()); // `${mail}` without `mail`: refusing is a reading too.
            }
            if accepted != Some(true) {
                return Err(broken(rule, format!("refused, expected {} ({}): {answer}", m.subject, m.principal)));
            }
            let p = answer.get("principal").and_then(Value::as_str).unwrap_or("");
            if p != m.principal {
                return Err(broken(rule, format!("principal {p:?} — expected {:?}", m.principal)));
            }
            if mail_fallback {
                return Ok(());
            }
            let s = answer.get("subject").and_then(Value::as_str).unwrap_or("");
            if !idprop_mocks::rules::dn::same_name(s, &m.subject).unwrap_or(false) {
                let rule = if s.contains("${") && !m.subject.contains("${") { "SP-2" } else { "SP-4" };
                return Err(broken(rule, format!("subject {s:?} — expected the same name as {:?}", m.subject)));
            }
            Ok(())
        }
        // TV-4: no principal claim, no identity to propagate.
        Err(r) if r.code == "no_principal" => match accepted {
            Some(false) => Ok(()),
            _ => Err(broken("TV-4", format!("accepted, expected a refusal ({}): {answer}", r.reason))),
        },
        // A pattern variable the token lacks: the pages do not say.
        Err(_) => Ok(()),
    }
}
