//! Which pods to isolate, in which direction.
//!
//! A blocked connection needs one side to refuse it: the source's egress or the destination's
//! ingress must be isolated (selected by a policy of that type) and not admit it. With
//! [`Isolation::All`] every class is isolated both ways (a default deny per namespace). With
//! [`Isolation::Needed`] the choice is a minimum-weight vertex cover of the bipartite graph
//! "egress of a source class — ingress of a destination class", one edge per blocked pair,
//! weighted by the rules that isolating the node costs (plus one, so that among covers with as
//! many rules the one isolating fewer pods wins). Bipartite vertex cover is a minimum cut
//! (König), found here with Dinic's max-flow.

use std::collections::BTreeSet;

use super::Isolation;
use super::model::{End, Model};
use crate::policy::PolicyType;

/// Isolation per class and direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Isolated {
    pub ingress: Vec<bool>,
    pub egress: Vec<bool>,
}

impl Isolated {
    pub fn get(&self, class: usize, dir: PolicyType) -> bool {
        match dir {
            PolicyType::Ingress => self.ingress[class],
            PolicyType::Egress => self.egress[class],
        }
    }
}

/// Chooses the isolated classes; `cost(class, dir)` estimates the rules isolating it needs.
pub(crate) fn choose(
    m: &Model<'_>,
    mode: Isolation,
    cost: &mut dyn FnMut(usize, PolicyType) -> usize,
) -> Isolated {
    let n = m.classes.len();
    if mode == Isolation::All {
        return Isolated {
            ingress: vec![true; n],
            egress: vec![true; n],
        };
    }
    let mut iso = Isolated {
        ingress: vec![false; n],
        egress: vec![false; n],
    };
    // Forced: egress alone can block external endpoints and name resolution.
    for (t, _) in m.want.iter().filter(|(t, _)| m.blocked(t)) {
        if matches!(t.dst, End::Ext(_)) {
            iso.egress[m.class_of[t.src]] = true;
        }
    }
    for (c, d) in m.dns.iter().enumerate() {
        if *d == Some(false) {
            iso.egress[c] = true;
        }
    }
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    for t in m.want.keys().filter(|t| m.blocked(t)) {
        if let End::Pod(d) = t.dst {
            let (a, b) = (m.class_of[t.src], m.class_of[d]);
            if !iso.egress[a] {
                edges.insert((a, b));
            }
        }
    }
    if edges.is_empty() {
        return iso;
    }
    // Nodes: 0 source, 1 sink, 2..2+n egress of class c, 2+n.. ingress of class c.
    let k = 2 * n as i64 + 2;
    let mut g = Flow::new(2 + 2 * n);
    let used_e: BTreeSet<usize> = edges.iter().map(|e| e.0).collect();
    let used_i: BTreeSet<usize> = edges.iter().map(|e| e.1).collect();
    for &c in &used_e {
        let w = cost(c, PolicyType::Egress) as i64 * k + 1;
        g.add(0, 2 + c, w);
    }
    for &c in &used_i {
        let w = cost(c, PolicyType::Ingress) as i64 * k + 1;
        g.add(2 + n + c, 1, w);
    }
    for &(a, b) in &edges {
        g.add(2 + a, 2 + n + b, i64::MAX / 4);
    }
    g.max_flow(0, 1);
    let reach = g.reachable(0);
    for &c in &used_e {
        if !reach[2 + c] {
            iso.egress[c] = true;
        }
    }
    for &c in &used_i {
        if reach[2 + n + c] {
            iso.ingress[c] = true;
        }
    }
    iso
}

/// Dinic's maximum flow on a small graph.
#[derive(Debug)]
struct Flow {
    to: Vec<usize>,
    cap: Vec<i64>,
    adj: Vec<Vec<usize>>,
}

impl Flow {
    fn new(n: usize) -> Flow {
        Flow {
            to: Vec::new(),
            cap: Vec::new(),
            adj: vec![Vec::new(); n],
        }
    }

    fn add(&mut self, a: usize, b: usize, c: i64) {
        self.adj[a].push(self.to.len());
        self.to.push(b);
        self.cap.push(c);
        self.adj[b].push(self.to.len());
        self.to.push(a);
        self.cap.push(0);
    }

    fn levels(&self, s: usize) -> Vec<i64> {
        let mut level = vec![-1; self.adj.len()];
        level[s] = 0;
        let mut queue = std::collections::VecDeque::from([s]);
        while let Some(v) = queue.pop_front() {
            for &e in &self.adj[v] {
                if self.cap[e] > 0 && level[self.to[e]] < 0 {
                    level[self.to[e]] = level[v] + 1;
                    queue.push_back(self.to[e]);
                }
            }
        }
        level
    }

    fn push(&mut self, v: usize, t: usize, f: i64, level: &[i64], it: &mut [usize]) -> i64 {
        if v == t {
            return f;
        }
        while it[v] < self.adj[v].len() {
            let e = self.adj[v][it[v]];
            let u = self.to[e];
            if self.cap[e] > 0 && level[u] == level[v] + 1 {
                let d = self.push(u, t, f.min(self.cap[e]), level, it);
                if d > 0 {
                    self.cap[e] -= d;
                    self.cap[e ^ 1] += d;
                    return d;
                }
            }
            it[v] += 1;
        }
        0
    }

    fn max_flow(&mut self, s: usize, t: usize) -> i64 {
        let mut total = 0;
        loop {
            let level = self.levels(s);
            if level[t] < 0 {
                return total;
            }
            let mut it = vec![0; self.adj.len()];
            loop {
                let f = self.push(s, t, i64::MAX, &level, &mut it);
                if f == 0 {
                    break;
                }
                total += f;
            }
        }
    }

    /// Nodes reachable from `s` in the residual graph (the source side of a minimum cut).
    fn reachable(&self, s: usize) -> Vec<bool> {
        self.levels(s).iter().map(|l| *l >= 0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Flow;

    #[test]
    fn max_flow_and_cut() {
        // s -> a (3), s -> b (2), a -> t (2), b -> t (3), a -> b (1): max flow 5.
        let mut g = Flow::new(4);
        g.add(0, 2, 3);
        g.add(0, 3, 2);
        g.add(2, 1, 2);
        g.add(3, 1, 3);
        g.add(2, 3, 1);
        assert_eq!(g.max_flow(0, 1), 5);
        // Saturated: the sink is not reachable any more.
        assert!(!g.reachable(0)[1]);
        let mut h = Flow::new(3);
        h.add(0, 2, 7);
        h.add(2, 1, 4);
        assert_eq!(h.max_flow(0, 1), 4);
        assert_eq!(h.reachable(0), vec![true, false, true]);
    }
}
