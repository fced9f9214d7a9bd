//! A failing property as a ready-to-save scenario, and the text report.

use super::*;

pub(super) fn retrieval_yaml(case: &RetrievalCase, rule: &str) -> String {
    let d = case.destination();
    let jwt = case.auth == AuthKind::JwtBearer;
    let expected = match plan(&d, case.call_tenant(), jwt.then_some("(user token)")) {
        Ok(Plan::Fetch(mut tr)) => {
            // The assertion is the minted user token: not known here.
            tr.form.retain(|(k, _)| k != "assertion");
            tr
        }
        _ => return String::new(),
    };
    let url = url::Url::parse(&expected.url).expect("oracle URL parses");
    let mut first = Map::new();
    first.insert("host".into(), json!(url.host_str()));
    first.insert("path".into(), json!(url.path()));
    let q: BTreeMap<String, String> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if !q.is_empty() {
        first.insert("query".into(), json!(q));
    }
    let h: BTreeMap<String, String> = expected.headers.iter().cloned().collect();
    if !h.is_empty() {
        first.insert("headers".into(), json!(h));
    }
    first.insert("form".into(), json!(expected.form.iter().cloned().collect::<BTreeMap<String, String>>()));
    first.insert(
        "basic".into(),
        json!(expected.basic.as_ref().map(|(u, p)| format!("{u}:{p}")).unwrap_or("none".into())),
    );
    let rule = if rule.is_empty() { "TU-1" } else { rule };
    let scenario = json!({
        "id": format!("property-counterexample-{}", rule.to_ascii_lowercase()),
        "title": "Shrunk counterexample of the token-retrieval property",
        "role": "token-retrieval",
        "tags": ["property-counterexample"],
        "rules": [rule],
        "given": {"token_servers": [{"host": HOST}]},
        "when": [{"find_destination": {
            "tenant": case.call_tenant(),
            "destination": d.to_json(),
            "user_token": if jwt { json!({"user": "alice"}) } else { Value::Null },
            "repeat": case.lookups,
        }}],
        "then": [{"rule": rule, "requests": {"component": "token-server", "count": 1, "first": first}}],
    });
    idprop_mocks::yaml::to_string(&scenario)
}

pub(super) fn mapping_yaml(case: &MappingCase, rule: &str) -> String {
    let spec = case.token_spec();
    let rule = if rule.is_empty() { "PP-2" } else { rule };
    let mut only = spec.only_claims.clone().unwrap_or_default();
    only.remove("iat");
    only.insert("exp".into(), json!(4_102_444_800u64));
    let mut token = json!({"only_claims": only, "tenant": if case.trusted { "mytenant" } else { "stranger" }});
    if let Some(f) = case.forgery {
        token["forge"] = json!(f);
    }
    let mut claims = spec.only_claims.clone().unwrap_or_default();
    claims.insert("iss".into(), json!("(issuer)"));
    let check = match (
        case.forgery.filter(|_| case.trusted),
        principal_mapping::map_claims(&claims, &principal_mapping::single(&case.pattern)),
    ) {
        (None, Ok(m)) if case.trusted => json!({"accepted": true, "principal": m.principal, "subject_dn": m.subject}),
        _ => json!({"accepted": false}),
    };
    let scenario = json!({
        "id": format!("property-counterexample-{}", rule.to_ascii_lowercase()),
        "title": "Shrunk counterexample of the principal-mapping property",
        "role": "principal-mapping",
        "tags": ["property-counterexample"],
        "rules": [rule],
        "when": [{"map_principal": {
            "token": token,
            "subject_pattern": case.pattern,
            "propagation": if case.technical { json!("technical") } else { Value::Null },
        }}],
        "then": [{"rule": rule, "mapping": check}],
    });
    idprop_mocks::yaml::to_string(&scenario)
}

/// The report of a property run.
pub fn report(outcomes: &[PropertyOutcome], implementation: &str) -> String {
    let mut out = String::new();
    for o in outcomes {
        match (&o.skipped, &o.failure) {
            (Some(s), _) => out.push_str(&format!("skip {} — {s}\n", o.name)),
            (None, None) => {
                out.push_str(&format!("ok   {} — {} cases, seed {}, {} ms\n", o.name, o.cases, o.seed, o.duration_ms))
            }
            (None, Some(f)) => {
                out.push_str(&format!("FAIL {} — seed {} ({} ms)\n", o.name, o.seed, o.duration_ms));
                out.push_str(&format!("  [{}] {}\n", f.rule, crate::report::rule_text(&f.rule)));
                out.push_str(&format!("  minimal failing input: {}\n", f.message));
                out.push_str(&format!(
                    "  reproduce: idprop run --properties --seed {} --impl '{implementation}'\n",
                    o.seed
                ));
                out.push_str("  as a scenario (save under scenarios/):\n");
                for l in f.scenario_yaml.lines() {
                    out.push_str(&format!("    {l}\n"));
                }
            }
        }
    }
    out
}
