//! Kubernetes name rules, and the mapping of logical namespace names to real ones.
//!
//! A scenario speaks of logical namespaces (`x`, `app`). A run maps each to a real name: by
//! default `<logical>-<run id>`, so two runs never collide; verbatim on request. Real names stay
//! within Kubernetes' 63 characters. Namespaces marked `existing` (e.g. `kube-system`) keep their
//! name in every mode.

use std::collections::BTreeMap;

use thiserror::Error;

/// Longest namespace name Kubernetes accepts (an RFC 1123 DNS label).
pub const MAX_NAMESPACE_LEN: usize = 63;

/// Why a name is not valid; the text says what would be.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Empty.
    #[error("is empty")]
    Empty,
    /// Too long.
    #[error("is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Contains a character that is not allowed or starts/ends wrongly.
    #[error("{0}")]
    Charset(&'static str),
    /// One part of a compound name is wrong.
    #[error("has a {part} that {inner}")]
    Part {
        /// Which part.
        part: &'static str,
        /// What is wrong with it.
        inner: Box<NameError>,
    },
}

/// Label on everything netreach creates (namespaces, probe pods, external containers): the run
/// id.
pub const RUN_LABEL: &str = "netreach.dev/run";
/// Label on probe pods placed by a scenario's `node:`: their group of pods sharing a node
/// (`g0`, `g1`, …), which pod affinity and anti-affinity select on.
pub const NODE_GROUP_LABEL: &str = "netreach.dev/node-group";
/// The labels netreach sets on what it creates: scenarios may not set them (a policy could
/// select on them), and snapshots leave them out (a replay sets its own).
pub const OWN_LABELS: [&str; 2] = [RUN_LABEL, NODE_GROUP_LABEL];

/// Checks an RFC 1123 DNS label (namespace names, pod names, Service names).
///
/// # Errors
/// Says what is wrong with the name.
pub fn check_dns_label(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > 63 {
        return Err(NameError::TooLong {
            len: s.len(),
            max: 63,
        });
    }
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends =
        s.bytes().next().is_some_and(|b| b != b'-') && s.bytes().last().is_some_and(|b| b != b'-');
    if !ok_chars || !ok_ends {
        return Err(NameError::Charset(
            "must consist of lowercase letters, digits and '-', and start and end with a letter or digit",
        ));
    }
    Ok(())
}

/// Checks an RFC 1123 DNS subdomain (policy names, label-key prefixes).
///
/// # Errors
/// Says what is wrong with the name.
pub fn check_dns_subdomain(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > 253 {
        return Err(NameError::TooLong {
            len: s.len(),
            max: 253,
        });
    }
    for part in s.split('.') {
        if part.is_empty() {
            return Err(NameError::Charset("must not have empty parts between dots"));
        }
        let ok_chars = part
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_ends = part.bytes().next().is_some_and(|b| b != b'-')
            && part.bytes().last().is_some_and(|b| b != b'-');
        if !ok_chars || !ok_ends {
            return Err(NameError::Charset(
                "must consist of lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit",
            ));
        }
    }
    Ok(())
}

/// Checks a port name (IANA_SVC_NAME): at most 15 characters, lowercase letters, digits and '-',
/// at least one letter, no leading, trailing or doubled '-'.
///
/// # Errors
/// Says what is wrong with the name.
pub fn check_port_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > 15 {
        return Err(NameError::TooLong {
            len: s.len(),
            max: 15,
        });
    }
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(NameError::Charset(
            "must be lowercase letters, digits and '-', with at least one letter and no leading, trailing or doubled '-'",
        ))
    }
}

fn check_label_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > 63 {
        return Err(NameError::TooLong {
            len: s.len(),
            max: 63,
        });
    }
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ok_ends = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok_chars && ok_ends {
        Ok(())
    } else {
        Err(NameError::Charset(
            "must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
        ))
    }
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters.
///
/// # Errors
/// Says what is wrong with the key.
pub fn check_label_key(s: &str) -> Result<(), NameError> {
    match s.split_once('/') {
        Some((prefix, name)) => {
            check_dns_subdomain(prefix).map_err(|e| NameError::Part {
                part: "prefix (before '/')",
                inner: Box::new(e),
            })?;
            check_label_name(name).map_err(|e| NameError::Part {
                part: "name (after '/')",
                inner: Box::new(e),
            })
        }
        None => check_label_name(s),
    }
}

/// Checks a label value: empty, or a label name.
///
/// # Errors
/// Says what is wrong with the value.
pub fn check_label_value(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        Ok(())
    } else {
        check_label_name(s)
    }
}

/// How a run names its namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `<logical>-<run id>` (shortened to fit 63 characters).
    PerRun {
        /// The run's id: lowercase letters and digits.
        run_id: String,
    },
    /// The logical name itself.
    Verbatim,
}

/// The logical-to-real namespace mapping of one run.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct NamespaceMap {
    map: BTreeMap<String, String>,
}

impl NamespaceMap {
    /// Maps `logical` names (the scenario's own) and keeps `existing` ones verbatim.
    pub fn new<'a>(
        naming: &Naming,
        logical: impl IntoIterator<Item = &'a str>,
        existing: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut map = BTreeMap::new();
        for l in logical {
            map.insert(l.to_owned(), real_name(naming, l));
        }
        for e in existing {
            map.insert(e.to_owned(), e.to_owned());
        }
        NamespaceMap { map }
    }

    /// Maps the logical namespaces in `given` onto the real names given to the run instead.
    #[must_use]
    pub fn with_given(mut self, given: &BTreeMap<String, String>) -> Self {
        for (l, r) in given {
            if self.map.contains_key(l) {
                self.map.insert(l.clone(), r.clone());
            }
        }
        self
    }

    /// The real name of a logical namespace, if the map knows it.
    pub fn real(&self, logical: &str) -> Option<&str> {
        self.map.get(logical).map(String::as_str)
    }

    /// The logical name of a real namespace, if it is one of ours.
    pub fn logical(&self, real: &str) -> Option<&str> {
        self.map
            .iter()
            .find(|(_, r)| r.as_str() == real)
            .map(|(l, _)| l.as_str())
    }

    /// Every (logical, real) pair.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(l, r)| (l.as_str(), r.as_str()))
    }
}

/// The real name of one logical namespace. Names that would exceed 63 characters are shortened
/// and given a hash of the full logical name, so two long names that share a prefix stay apart.
pub fn real_name(naming: &Naming, logical: &str) -> String {
    let run_id = match naming {
        Naming::Verbatim => return logical.to_owned(),
        Naming::PerRun { run_id } => run_id,
    };
    let full = format!("{logical}-{run_id}");
    if full.len() <= MAX_NAMESPACE_LEN {
        return full;
    }
    let hash = format!("{:06x}", fnv1a(logical) & 0xff_ffff);
    // <prefix>-<hash>-<run id>
    let keep = MAX_NAMESPACE_LEN.saturating_sub(run_id.len() + hash.len() + 2);
    let prefix = logical[..keep.min(logical.len())].trim_end_matches('-');
    format!("{prefix}-{hash}-{run_id}")
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Makes a run id from a seed: 6 characters of lowercase letters and digits. The caller supplies
/// the seed (time, process id, randomness) so this stays pure and testable.
pub fn run_id_from_seed(seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(6);
    // First character is a letter so the id never looks like a number.
    for i in 0..6 {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 29;
        let n = if i == 0 { 26 } else { ALPHABET.len() as u64 };
        out.push(ALPHABET[(x % n) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for ok in ["a", "x", "kube-system", "a1-b2", &"a".repeat(63)] {
            assert_eq!(check_dns_label(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subdomains_port_names_and_labels() {
        assert!(check_dns_subdomain("allow-dns.v1").is_ok());
        assert!(check_dns_subdomain("a..b").is_err());
        assert!(check_port_name("http").is_ok());
        assert!(check_port_name("h2c-tls").is_ok());
        for bad in ["80", "HTTP", "-http", "ht--tp", "a-very-long-port-name"] {
            assert!(check_port_name(bad).is_err(), "{bad}");
        }
        assert!(check_label_key("app").is_ok());
        assert!(check_label_key("kubernetes.io/metadata.name").is_ok());
        assert!(check_label_key("Bad Key").is_err());
        assert!(check_label_key("/x").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1.2_3").is_ok());
        assert!(check_label_value("-x").is_err());
    }

    #[test]
    fn per_run_names_get_the_suffix() {
        let n = Naming::PerRun {
            run_id: "k3x9qa".into(),
        };
        let m = NamespaceMap::new(&n, ["x", "y"], ["kube-system"]);
        assert_eq!(m.real("x"), Some("x-k3x9qa"));
        assert_eq!(m.real("kube-system"), Some("kube-system"));
        assert_eq!(m.logical("y-k3x9qa"), Some("y"));
        assert_eq!(m.real("z"), None);
    }

    #[test]
    fn verbatim_names_are_unchanged() {
        let m = NamespaceMap::new(&Naming::Verbatim, ["x"], ["kube-system"]);
        assert_eq!(m.real("x"), Some("x"));
        assert_eq!(m.real("kube-system"), Some("kube-system"));
    }

    #[test]
    fn long_names_stay_within_63_and_distinct() {
        let n = Naming::PerRun {
            run_id: "abcdef".into(),
        };
        let a = "a".repeat(63);
        let b = format!("{}b", "a".repeat(62));
        let (ra, rb) = (real_name(&n, &a), real_name(&n, &b));
        assert!(ra.len() <= MAX_NAMESPACE_LEN, "{ra}");
        assert!(rb.len() <= MAX_NAMESPACE_LEN, "{rb}");
        assert_ne!(ra, rb);
        assert!(check_dns_label(&ra).is_ok());
        assert!(ra.ends_with("-abcdef"));
        // A prefix ending in '-' is trimmed so the result stays a valid label.
        let c = format!("{}-{}", "a".repeat(40), "b".repeat(22));
        assert!(check_dns_label(&real_name(&n, &c)).is_ok());
    }

    #[test]
    fn every_length_gives_a_valid_label() {
        let n = Naming::PerRun {
            run_id: run_id_from_seed(42),
        };
        for len in 1..=63 {
            let l = "n".repeat(len);
            let r = real_name(&n, &l);
            assert!(
                r.len() <= MAX_NAMESPACE_LEN && check_dns_label(&r).is_ok(),
                "{len}: {r}"
            );
        }
    }

    #[test]
    fn run_ids_are_labels_and_vary() {
        let ids: std::collections::BTreeSet<_> = (0..100).map(run_id_from_seed).collect();
        assert!(ids.len() > 95);
        for id in ids {
            assert_eq!(id.len(), 6);
            assert!(id.as_bytes()[0].is_ascii_lowercase());
            assert!(check_dns_label(&id).is_ok());
        }
    }
}
