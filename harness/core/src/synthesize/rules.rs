//! The rules of one side (ingress or egress) of a group of pods that share a policy.
//!
//! A rule admits its peers × its ports. Each needed (peer, port) gets a port *token*: the port's
//! name when the destination pod names it, else its number; a token is checked against every
//! member of the group (a name means each destination's own port of that name). Peers with the
//! same tokens share a rule; rules are merged while the merge admits nothing blocked (a port the
//! peer does not serve admits nothing, so `to: [a, b], ports: [80, 9090]` is fine when a serves
//! only 80 and b only 9090). A token that admits a blocked triple is taken only when no other
//! can express the need: those triples are returned as leaks for the other side to block.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::{End, Model, Triple};
use super::select;
use crate::model::{PortProto, Protocol};
use crate::policy::{AddrExpr, IpBlock, Peer, PolicyPort, PolicyType, PortValue, Rule};

/// A port as a rule names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Tok {
    Num(PortProto),
    Name(String, Protocol),
}

impl Tok {
    fn policy_port(&self) -> PolicyPort {
        match self {
            Tok::Num(p) => PolicyPort {
                protocol: p.protocol,
                port: Some(PortValue::Number(p.port)),
                end_port: None,
            },
            Tok::Name(n, protocol) => PolicyPort {
                protocol: *protocol,
                port: Some(PortValue::Name(n.clone())),
                end_port: None,
            },
        }
    }
}

/// A finished rule and the allowed triples it exists for.
#[derive(Debug)]
pub(crate) struct SideRule {
    pub rule: Rule,
    pub covers: BTreeSet<Triple>,
}

/// The rules of a side, and what they admit that should be blocked.
#[derive(Debug, Default)]
pub(crate) struct SideOut {
    pub rules: Vec<SideRule>,
    pub leaks: BTreeSet<Triple>,
}

/// At most this many draft rules are merged pairwise (the merge is quadratic).
const MERGE_LIMIT: usize = 48;

/// How acceptable a (peer, token) is for every member: 0 admits nothing blocked, 1 only what
/// the other side blocks (slack), 2 something blocked.
type Level = (u8, Vec<Triple>);

struct Side<'s, 'm> {
    m: &'s Model<'m>,
    dir: PolicyType,
    members: &'s [usize],
    slack: &'s dyn Fn(&Triple) -> bool,
    /// Whether ipBlock peers may share a rule with pod peers.
    mix: bool,
    cache: HashMap<(End, Tok), Level>,
}

#[derive(Clone, Debug)]
struct Draft {
    peers: BTreeSet<End>,
    toks: BTreeSet<Tok>,
}

impl Side<'_, '_> {
    fn admitted(&self, member: usize, peer: End, tok: &Tok, out: &mut Vec<Triple>) {
        let m = self.m;
        match self.dir {
            PolicyType::Egress => {
                let port = match (peer, tok) {
                    (_, Tok::Num(p)) => m.serves(peer, *p).then_some(*p),
                    (End::Pod(d), Tok::Name(n, proto)) => m.named(d, n, *proto),
                    (End::Ext(_), Tok::Name(..)) => None,
                };
                if let Some(port) = port {
                    out.push(Triple {
                        src: member,
                        dst: peer,
                        port,
                    });
                }
            }
            PolicyType::Ingress => {
                let End::Pod(q) = peer else { return };
                let port = match tok {
                    Tok::Num(p) => m.serves(End::Pod(member), *p).then_some(*p),
                    Tok::Name(n, proto) => m.named(member, n, *proto),
                };
                if let Some(port) = port {
                    out.push(Triple {
                        src: q,
                        dst: End::Pod(member),
                        port,
                    });
                }
            }
        }
    }

    fn level(&mut self, peer: End, tok: &Tok) -> u8 {
        if let Some(l) = self.cache.get(&(peer, tok.clone())) {
            return l.0;
        }
        let mut ts = Vec::new();
        for &mem in self.members {
            self.admitted(mem, peer, tok, &mut ts);
        }
        let mut level = 0;
        let mut bad = Vec::new();
        for t in ts {
            if self.m.blocked(&t) {
                if (self.slack)(&t) {
                    level = level.max(1);
                } else {
                    level = 2;
                    bad.push(t);
                }
            }
        }
        self.cache.insert((peer, tok.clone()), (level, bad));
        level
    }

    fn bad(&mut self, peer: End, tok: &Tok) -> Vec<Triple> {
        self.level(peer, tok);
        self.cache
            .get(&(peer, tok.clone()))
            .map(|l| l.1.clone())
            .unwrap_or_default()
    }

    fn mergeable(&mut self, a: &Draft, b: &Draft) -> bool {
        let kind = |d: &Draft| d.peers.iter().next().map(|e| matches!(e, End::Ext(_)));
        if kind(a) != kind(b) && !self.mix {
            return false;
        }
        let peers: BTreeSet<End> = a.peers.union(&b.peers).copied().collect();
        let toks: BTreeSet<Tok> = a.toks.union(&b.toks).cloned().collect();
        for q in &peers {
            for t in &toks {
                let had = (a.peers.contains(q) && a.toks.contains(t))
                    || (b.peers.contains(q) && b.toks.contains(t));
                if !had && self.level(*q, t) != 0 {
                    return false;
                }
            }
        }
        true
    }
}

/// The rules for `members` (pods of namespace `ns` that share a policy) in direction `dir`.
/// `slack` says which blocked triples the other side blocks anyway.
///
/// An ipBlock peer makes every connection through a Service that the rule's ports match
/// unspecified, so external endpoints share a rule with pod peers only when no member is the
/// source of a cell by Service or DNS name, or of a resolution cell.
pub(crate) fn build(
    m: &Model<'_>,
    dir: PolicyType,
    members: &[usize],
    ns: &str,
    slack: &dyn Fn(&Triple) -> bool,
) -> SideOut {
    let mut side = Side {
        m,
        dir,
        members,
        slack,
        mix: members.iter().all(|p| !m.translated[*p]),
        cache: HashMap::new(),
    };
    let mut needs: BTreeMap<End, BTreeSet<(PortProto, Option<&str>)>> = BTreeMap::new();
    for &mem in members {
        let ts = match dir {
            PolicyType::Egress => &m.allowed_from[mem],
            PolicyType::Ingress => &m.allowed_to[mem],
        };
        for t in ts {
            let (peer, dest) = match dir {
                PolicyType::Egress => (
                    t.dst,
                    match t.dst {
                        End::Pod(d) => Some(d),
                        End::Ext(_) => None,
                    },
                ),
                PolicyType::Ingress => (End::Pod(t.src), Some(mem)),
            };
            let name = dest.and_then(|d| m.name_of(d, t.port));
            needs.entry(peer).or_default().insert((t.port, name));
        }
    }
    // No selector tells a pod from its class mates: a peer stands for its whole class, and a
    // token must suit every one of them.
    let mates = |e: End| -> Vec<End> {
        match e {
            End::Pod(q) => m.classes[m.class_of[q]]
                .members
                .iter()
                .map(|p| End::Pod(*p))
                .collect(),
            End::Ext(_) => vec![e],
        }
    };
    let key = |e: End| match e {
        End::Pod(q) => End::Pod(m.classes[m.class_of[q]].members[0]),
        End::Ext(_) => e,
    };
    let mut chosen: BTreeMap<End, BTreeSet<Tok>> = BTreeMap::new();
    for (peer, ports) in &needs {
        let group = mates(*peer);
        for (p, name) in ports {
            let mut cands = Vec::new();
            if let Some(n) = name {
                cands.push(Tok::Name((*n).to_owned(), p.protocol));
            }
            cands.push(Tok::Num(*p));
            let score: Vec<(u8, usize)> = cands
                .iter()
                .map(|c| {
                    group.iter().fold((0, 0), |(l, b), q| {
                        (l.max(side.level(*q, c)), b + side.bad(*q, c).len())
                    })
                })
                .collect();
            let pick = (0..cands.len())
                .min_by_key(|i| (score[*i], *i))
                .unwrap_or(0);
            chosen
                .entry(key(*peer))
                .or_default()
                .insert(cands[pick].clone());
        }
    }
    let mut by_toks: BTreeMap<(bool, BTreeSet<Tok>), BTreeSet<End>> = BTreeMap::new();
    for (peer, toks) in chosen {
        by_toks
            .entry((matches!(peer, End::Ext(_)), toks))
            .or_default()
            .extend(mates(peer));
    }
    let mut drafts: Vec<Draft> = by_toks
        .into_iter()
        .map(|((_, toks), peers)| Draft { peers, toks })
        .collect();
    'merge: while drafts.len() <= MERGE_LIMIT {
        for i in 0..drafts.len() {
            for j in i + 1..drafts.len() {
                if side.mergeable(&drafts[i], &drafts[j]) {
                    let b = drafts.remove(j);
                    drafts[i].peers.extend(b.peers);
                    drafts[i].toks.extend(b.toks);
                    continue 'merge;
                }
            }
        }
        break;
    }
    let mut out = SideOut::default();
    for d in drafts {
        out.rules.push(finish(&mut side, ns, &d, &mut out.leaks));
    }
    out
}

fn finish(side: &mut Side<'_, '_>, ns: &str, d: &Draft, leaks: &mut BTreeSet<Triple>) -> SideRule {
    let m = side.m;
    let mut matched: BTreeSet<End> = d.peers.clone();
    let want: BTreeSet<usize> = d
        .peers
        .iter()
        .filter_map(|e| match e {
            End::Pod(p) => Some(*p),
            End::Ext(_) => None,
        })
        .collect();
    let mut peers: Vec<Peer> = Vec::new();
    if !want.is_empty() {
        let levels: Vec<u8> = (0..m.pods.len())
            .map(|p| {
                d.toks
                    .iter()
                    .map(|t| side.level(End::Pod(p), t))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut sel = select::peers(m, ns, &want, &|p| levels[p] > 0);
        if !sel.clashes.is_empty() {
            sel = select::peers(m, ns, &want, &|p| levels[p] > 1);
        }
        matched.extend(sel.leaked.iter().map(|p| End::Pod(*p)));
        peers = sel.peers;
    }
    for e in &d.peers {
        if let End::Ext(x) = e {
            peers.push(Peer::IpBlock(IpBlock {
                cidr: AddrExpr::ExternalIp {
                    name: m.exts[*x].0.clone(),
                    prefix: 32,
                },
                except: Vec::new(),
            }));
        }
    }
    for q in &matched {
        for t in &d.toks {
            leaks.extend(side.bad(*q, t));
        }
    }
    let mut covers = BTreeSet::new();
    let mut ts = Vec::new();
    for q in &d.peers {
        for t in &d.toks {
            for &mem in side.members {
                side.admitted(mem, *q, t, &mut ts);
            }
        }
    }
    covers.extend(
        ts.into_iter()
            .filter(|t| !m.blocked(t) && m.want.contains_key(t)),
    );
    let ports = d.toks.iter().map(Tok::policy_port).collect();
    SideRule {
        rule: Rule {
            peers: Some(peers),
            ports: Some(ports),
            line: 0,
        },
        covers,
    }
}
