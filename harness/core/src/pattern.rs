//! Patterns that select cells: pods (`x/*`), targets (`*/a`, `ext:web`, `dns:*`) and ports
//! (`80/tcp`, `http`, `*`). Pure parsing and matching.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{PodId, PortProto, Protocol, Scenario, Target, Via};
use crate::names::check_port_name;

/// A name with `*` wildcards (each `*` matches any run of characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// Wraps a pattern.
    pub fn new(s: impl Into<String>) -> Self {
        Glob(s.into())
    }

    /// Whether it has no wildcard.
    pub fn is_literal(&self) -> bool {
        !self.0.contains('*')
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or("");
        let Some(mut rest) = s.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty();
        };
        for m in middle {
            match rest.find(m) {
                Some(i) => rest = &rest[i + m.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// `ns/pod` with wildcards; `*` alone means `*/*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodPattern {
    /// Namespace part.
    pub ns: Glob,
    /// Pod part.
    pub name: Glob,
}

impl PodPattern {
    /// Parses `ns/pod` or `*`.
    ///
    /// # Errors
    /// A sentence saying what would be right.
    pub fn parse(s: &str) -> Result<PodPattern, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(PodPattern {
                ns: Glob::new("*"),
                name: Glob::new("*"),
            });
        }
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(PodPattern {
                    ns: Glob::new(ns),
                    name: Glob::new(name),
                })
            }
            _ => Err(format!(
                "`{s}` is not a pod pattern; write `namespace/pod`, with `*` as a wildcard in either part (e.g. `x/a`, `x/*`, `*/db`), or `*` for every pod"
            )),
        }
    }

    /// Whether it names exactly one pod (no wildcard).
    pub fn is_literal(&self) -> bool {
        self.ns.is_literal() && self.name.is_literal()
    }

    /// Whether `ns/name` matches.
    pub fn matches(&self, ns: &str, name: &str) -> bool {
        self.ns.matches(ns) && self.name.matches(name)
    }
}

impl fmt::Display for PodPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns.0, self.name.0)
    }
}

/// A target pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPattern {
    /// Pods.
    Pod(PodPattern),
    /// External endpoints (`ext:<glob>`).
    External(Glob),
    /// DNS-resolution targets (`dns:<glob>`).
    Name(Glob),
}

impl TargetPattern {
    /// Parses `ns/pod`, `*`, `ext:<name>` or `dns:<name>`.
    ///
    /// # Errors
    /// A sentence saying what would be right.
    pub fn parse(s: &str) -> Result<TargetPattern, String> {
        let s = s.trim();
        if let Some(e) = s.strip_prefix("ext:") {
            if e.is_empty() {
                return Err("`ext:` needs an endpoint name, e.g. `ext:web` or `ext:*`".into());
            }
            return Ok(TargetPattern::External(Glob::new(e)));
        }
        if let Some(n) = s.strip_prefix("dns:") {
            if n.is_empty() {
                return Err("`dns:` needs a name, e.g. `dns:kubernetes.default` or `dns:*`".into());
            }
            return Ok(TargetPattern::Name(Glob::new(n)));
        }
        PodPattern::parse(s).map(TargetPattern::Pod).map_err(|_| {
            format!(
                "`{s}` is not a target; write `namespace/pod` (wildcards allowed, `*` for every pod), `ext:<endpoint>` or `dns:<name>`"
            )
        })
    }

    /// Whether `t` matches.
    pub fn matches(&self, t: &Target) -> bool {
        match (self, t) {
            (TargetPattern::Pod(p), Target::Pod(id)) => p.matches(&id.ns, &id.name),
            (TargetPattern::External(g), Target::External(e)) => g.matches(e),
            (TargetPattern::Name(g), Target::Name(n)) => g.matches(n),
            _ => false,
        }
    }

    /// Whether it names exactly one target.
    pub fn is_literal(&self) -> bool {
        match self {
            TargetPattern::Pod(p) => p.is_literal(),
            TargetPattern::External(g) | TargetPattern::Name(g) => g.is_literal(),
        }
    }
}

/// A port pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortPattern {
    /// Every port.
    Any,
    /// One number and protocol.
    Exact(PortProto),
    /// A port name, matched against the target's declared port names.
    Named(String),
}

impl PortPattern {
    /// Parses `*`, `80`, `80/tcp`, `53/UDP` or a port name.
    ///
    /// # Errors
    /// A sentence saying what would be right.
    pub fn parse(s: &str) -> Result<PortPattern, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(PortPattern::Any);
        }
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            return parse_port_proto(s).map(PortPattern::Exact);
        }
        check_port_name(s).map_err(|e| {
            format!("`{s}` is neither a port like `80/tcp` nor a valid port name: a port name {e}")
        })?;
        Ok(PortPattern::Named(s.to_owned()))
    }

    /// Parses a bare number (TCP).
    ///
    /// # Errors
    /// When the number is out of range.
    pub fn from_number(n: i64) -> Result<PortPattern, String> {
        check_port_number(n).map(|port| {
            PortPattern::Exact(PortProto {
                port,
                protocol: Protocol::Tcp,
            })
        })
    }

    /// Whether the cell's port matches, given the target (for port names).
    pub fn matches(&self, scenario: &Scenario, target: &Target, port: Option<PortProto>) -> bool {
        match (self, port) {
            (PortPattern::Any, _) => true,
            (PortPattern::Exact(p), Some(q)) => *p == q,
            (PortPattern::Named(n), Some(q)) => scenario
                .served_ports(target)
                .iter()
                .any(|s| s.port == q && s.name.as_deref() == Some(n.as_str())),
            (_, None) => false,
        }
    }
}

/// A [`PortPattern`] ready to match many cells of one scenario: a port name is looked up once
/// per target instead of searching the scenario's pods for every cell.
#[derive(Debug)]
pub struct PortMatcher<'a> {
    pattern: &'a PortPattern,
    /// For a named pattern: the ports of that name.
    named: Option<NamedPorts<'a>>,
}

/// The ports of one name, per pod and per external endpoint.
#[derive(Debug)]
struct NamedPorts<'a> {
    pods: BTreeMap<&'a PodId, Vec<PortProto>>,
    externals: BTreeMap<&'a str, Vec<PortProto>>,
}

impl<'a> PortMatcher<'a> {
    /// Prepares `pattern` for the cells of `scenario`.
    pub fn new(pattern: &'a PortPattern, scenario: &'a Scenario) -> Self {
        let named = match pattern {
            PortPattern::Named(n) => {
                let with_name = |ports: &[crate::model::ServedPort]| -> Vec<PortProto> {
                    ports
                        .iter()
                        .filter(|p| p.name.as_deref() == Some(n.as_str()))
                        .map(|p| p.port)
                        .collect()
                };
                let mut pods = BTreeMap::new();
                for p in &scenario.pods {
                    pods.entry(&p.id).or_insert_with(|| with_name(&p.ports));
                }
                let mut externals = BTreeMap::new();
                for e in &scenario.externals {
                    externals
                        .entry(e.name.as_str())
                        .or_insert_with(|| with_name(&e.ports));
                }
                Some(NamedPorts { pods, externals })
            }
            _ => None,
        };
        PortMatcher { pattern, named }
    }

    /// Whether the cell's port matches, as [`PortPattern::matches`] decides it.
    pub fn matches(&self, target: &Target, port: Option<PortProto>) -> bool {
        match (self.pattern, port, &self.named) {
            (PortPattern::Any, _, _) => true,
            (PortPattern::Exact(p), Some(q), _) => *p == q,
            (PortPattern::Named(_), Some(q), Some(named)) => {
                let ports = match target {
                    Target::Pod(id) => named.pods.get(id),
                    Target::External(e) => named.externals.get(e.as_str()),
                    Target::Name(_) => None,
                };
                ports.is_some_and(|ps| ps.contains(&q))
            }
            _ => false,
        }
    }
}

impl fmt::Display for PortPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortPattern::Any => f.write_str("*"),
            PortPattern::Exact(p) => p.fmt(f),
            PortPattern::Named(n) => f.write_str(n),
        }
    }
}

/// Checks a port number is within 1-65535.
///
/// # Errors
/// Says what is allowed.
pub fn check_port_number(n: i64) -> Result<u16, String> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("port {n} is out of range; ports are 1-65535"))
}

/// Parses `80`, `80/tcp`, `53/UDP`, `9/sctp`.
///
/// # Errors
/// A sentence saying what would be right.
pub fn parse_port_proto(s: &str) -> Result<PortProto, String> {
    let (num, proto) = match s.split_once('/') {
        Some((n, p)) => (n, Some(p)),
        None => (s, None),
    };
    let n: i64 = num.trim().parse().map_err(|_| {
        format!(
            "`{s}` is not a port; write a number and protocol like `80/tcp`, `53/udp` or `9/sctp`"
        )
    })?;
    let port = check_port_number(n)?;
    let protocol = match proto {
        None => Protocol::Tcp,
        Some(p) => Protocol::parse(p.trim())
            .ok_or_else(|| format!("`{p}` is not a protocol; use `tcp`, `udp` or `sctp`"))?,
    };
    Ok(PortProto { port, protocol })
}

/// Optional `via` as a pattern: `None` matches every route.
pub fn via_matches(pattern: Option<Via>, via: Option<Via>) -> bool {
    match pattern {
        None => true,
        Some(p) => via == Some(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PodId;

    #[test]
    fn globs() {
        let cases = [
            ("*", "", true),
            ("*", "abc", true),
            ("a*", "abc", true),
            ("a*", "bac", false),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abcbc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("ab*ab", "ab", false),
        ];
        for (p, s, want) in cases {
            assert_eq!(Glob::new(p).matches(s), want, "{p} ~ {s}");
        }
    }

    #[test]
    fn pod_patterns() {
        let p = PodPattern::parse("x/*").expect("valid");
        assert!(p.matches("x", "a") && !p.matches("y", "a"));
        assert!(PodPattern::parse("*").expect("valid").matches("q", "r"));
        assert!(PodPattern::parse("x").is_err());
        assert!(PodPattern::parse("x/").is_err());
        assert!(PodPattern::parse("x/a/b").is_err());
        assert!(PodPattern::parse("x/a").expect("valid").is_literal());
    }

    #[test]
    fn target_patterns() {
        let pod = Target::Pod(PodId::new("x", "a"));
        let ext = Target::External("web".into());
        let name = Target::Name("kubernetes.default".into());
        let all_pods = TargetPattern::parse("*").expect("valid");
        assert!(all_pods.matches(&pod) && !all_pods.matches(&ext) && !all_pods.matches(&name));
        assert!(TargetPattern::parse("ext:*").expect("valid").matches(&ext));
        assert!(
            TargetPattern::parse("dns:kube*")
                .expect("valid")
                .matches(&name)
        );
        assert!(TargetPattern::parse("*/a").expect("valid").matches(&pod));
        assert!(TargetPattern::parse("ext:").is_err());
        assert!(TargetPattern::parse("nonsense").is_err());
    }

    #[test]
    fn ports() {
        let tcp80 = PortProto {
            port: 80,
            protocol: Protocol::Tcp,
        };
        assert_eq!(PortPattern::parse("80"), Ok(PortPattern::Exact(tcp80)));
        assert_eq!(PortPattern::parse("80/TCP"), Ok(PortPattern::Exact(tcp80)));
        assert_eq!(
            PortPattern::parse("53/udp"),
            Ok(PortPattern::Exact(PortProto {
                port: 53,
                protocol: Protocol::Udp
            }))
        );
        assert_eq!(
            PortPattern::parse("http"),
            Ok(PortPattern::Named("http".into()))
        );
        assert_eq!(PortPattern::parse("*"), Ok(PortPattern::Any));
        for bad in ["0", "65536", "80/icmp", "80/", "HTTP", "-1"] {
            assert!(PortPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(PortPattern::from_number(70000).is_err());
        assert_eq!(PortPattern::from_number(80), Ok(PortPattern::Exact(tcp80)));
    }

    /// The matcher decides every cell as `PortPattern::matches` does.
    #[test]
    fn port_matchers_agree_with_matching_by_search() {
        use crate::model::{External, Loopback, Pod, ServedPort};
        let port = |n: u16, p: Protocol, name: Option<&str>| ServedPort {
            port: PortProto {
                port: n,
                protocol: p,
            },
            name: name.map(str::to_owned),
        };
        let s = Scenario {
            id: "s".into(),
            group: "g".into(),
            path: "s.yaml".into(),
            title: "s".into(),
            description: None,
            namespaces: Vec::new(),
            pods: vec![
                Pod {
                    id: PodId::new("x", "a"),
                    labels: Default::default(),
                    ports: vec![
                        port(80, Protocol::Tcp, Some("http")),
                        port(53, Protocol::Udp, Some("dns")),
                    ],
                },
                Pod {
                    id: PodId::new("x", "b"),
                    labels: Default::default(),
                    ports: vec![port(8080, Protocol::Tcp, Some("http"))],
                },
            ],
            externals: vec![External {
                name: "web".into(),
                ports: vec![port(443, Protocol::Tcp, Some("http"))],
                address: None,
            }],
            placement: Default::default(),
            workloads: Default::default(),
            absent_at_start: Default::default(),
            loopback: Loopback::Allow,
            pod_cidrs: Vec::new(),
            cells: Vec::new(),
            steps: Vec::new(),
        };
        let targets = [
            Target::Pod(PodId::new("x", "a")),
            Target::Pod(PodId::new("x", "b")),
            Target::Pod(PodId::new("x", "nope")),
            Target::External("web".into()),
            Target::Name("kubernetes.default".into()),
        ];
        let ports = [80, 53, 8080, 443, 1].into_iter().flat_map(|n| {
            [Protocol::Tcp, Protocol::Udp].map(|protocol| Some(PortProto { port: n, protocol }))
        });
        let ports: Vec<Option<PortProto>> = ports.chain([None]).collect();
        for pattern in ["*", "80", "53/udp", "http", "dns", "nope"] {
            let pp = PortPattern::parse(pattern).expect("valid");
            let m = PortMatcher::new(&pp, &s);
            for t in &targets {
                for p in &ports {
                    assert_eq!(
                        m.matches(t, *p),
                        pp.matches(&s, t, *p),
                        "{pattern} {t} {p:?}"
                    );
                }
            }
        }
    }
}
