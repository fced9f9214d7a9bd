//! Which scenarios run: filters, tags, roles, rules, partitions.

use super::*;

/// Which scenarios to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Substring of the id or title.
    pub filter: Option<String>,
    pub tags: Vec<String>,
    /// Scenarios with any of these tags are left out.
    pub exclude_tags: Vec<String>,
    pub roles: Vec<Role>,
    pub rules: Vec<String>,
    /// `(k, n)`: the k-th of n partitions (1-based).
    pub partition: Option<(usize, usize)>,
}

impl Selection {
    /// The selected scenarios, in id order.
    pub fn apply(&self, mut all: Vec<Loaded>) -> Vec<Loaded> {
        all.sort_by(|a, b| a.scenario.id.cmp(&b.scenario.id));
        let picked: Vec<Loaded> = all
            .into_iter()
            .filter(|l| {
                let s = &l.scenario;
                self.filter.as_deref().is_none_or(|f| s.id.contains(f) || s.title.contains(f))
                    && (self.tags.is_empty()
                        || self
                            .tags
                            .iter()
                            .any(|t| s.tags.contains(t) || l.path.to_string_lossy().contains(&format!("/{t}/"))))
                    && !self.exclude_tags.iter().any(|t| s.tags.contains(t))
                    && (self.roles.is_empty() || self.roles.contains(&s.role))
                    && (self.rules.is_empty() || self.rules.iter().any(|r| s.rules.contains(r)))
            })
            .collect();
        match self.partition {
            Some((k, n)) if n > 0 => {
                picked.into_iter().enumerate().filter(|(i, _)| i % n == k - 1).map(|(_, l)| l).collect()
            }
            _ => picked,
        }
    }
}

/// Parses `k/n`.
pub fn parse_partition(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or_else(|| format!("--partition {s:?}: expected k/n"))?;
    let (k, n): (usize, usize) = (
        k.parse().map_err(|_| format!("--partition {s:?}: k"))?,
        n.parse().map_err(|_| format!("--partition {s:?}: n"))?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(format!("--partition {s:?}: need 1 <= k <= n"));
    }
    Ok((k, n))
}
