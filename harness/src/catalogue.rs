//! The rule catalogue: every rule id with its text and source, read from
//! `harness/catalogue/rules.md` (a copy of the design's catalogue, compiled
//! in so the binary needs nothing beside it).

use std::sync::OnceLock;

/// One rule of the specification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    pub id: String,
    pub text: String,
    /// The documentation page (id suffix) or seed it comes from.
    pub source: String,
    /// The catalogue section, e.g. "Token-service URL (role token-retrieval)".
    pub section: String,
}

const CATALOGUE: &str = include_str!("../catalogue/rules.md");

/// Every rule, in catalogue order.
pub fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| parse(CATALOGUE))
}

/// The rule with `id` (exact).
pub fn rule(id: &str) -> Option<&'static Rule> {
    rules().iter().find(|r| r.id == id)
}

/// The area prefix of a rule id (`TU-4` → `TU`).
pub fn prefix(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

fn parse(md: &str) -> Vec<Rule> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_string();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `ID` | text | source |
        if cells.len() >= 5 {
            let id = cells[1].trim_matches('`');
            if id.contains('-') && id.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && id != "id" {
                out.push(Rule {
                    id: id.to_string(),
                    text: cells[2].to_string(),
                    source: cells[3].to_string(),
                    section: section.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalogue_parses_with_every_section() {
        let r = super::rules();
        assert!(r.len() > 60, "{}", r.len());
        let tu4 = super::rule("TU-4").unwrap();
        assert!(tu4.text.contains("subdomain"));
        assert_eq!(tu4.source, "8634e21 example 1");
        assert!(super::rule("PT-2").is_some());
        assert!(super::rule("XX-1").is_none());
    }
}
