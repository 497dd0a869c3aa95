//! The graph of who may reach whom: edge kinds, the three-tier scenario's arrows, layout
//! invariants, the SVG as XML.

use super::graph::{self, EdgeKind, chosen_step, graph};
use super::svg;
use super::tests::{cell, following_spec, load, three_tier};
use crate::model::Verdict;
use crate::outcome::Outcome;
use crate::report::{ScenarioReport, testdata};
use crate::verdict::Observed;

#[test]
fn edge_kinds() {
    use EdgeKind as E;
    use Observed as O;
    use Verdict as V;
    let cases = [
        (V::Allow, O::Allowed, false, Some(E::Allowed)),
        (V::Block, O::Blocked, false, None),
        (V::Unresolved, O::DnsFailure, false, None),
        (V::Block, O::Allowed, false, Some(E::Unexpected)),
        (V::Allow, O::Blocked, false, Some(E::Missing)),
        (V::Allow, O::DnsFailure, false, Some(E::Missing)),
        (V::Block, O::DnsFailure, false, Some(E::OtherMismatch)),
        (V::Unresolved, O::Blocked, false, Some(E::OtherMismatch)),
        (V::Block, O::Blocked, true, Some(E::Flaky)),
        // A flaky cell that disagreed is a mismatch first.
        (V::Allow, O::Blocked, true, Some(E::Missing)),
        (V::Allow, O::Error, false, Some(E::Undecided)),
        (V::Allow, O::Unsupported, false, Some(E::Undecided)),
    ];
    for (e, o, f, want) in cases {
        assert_eq!(EdgeKind::of(&cell(e, o, f)), want, "{e:?} {o:?} flaky={f}");
    }
    // Precedence: a pair shows its most important cell.
    assert!(E::Missing > E::Unexpected && E::Unexpected > E::Flaky);
    assert!(E::Flaky > E::Allowed && E::Allowed > E::Undecided);
}

fn edges(g: &graph::Graph) -> Vec<(String, String, EdgeKind)> {
    g.edges
        .iter()
        .map(|e| (g.nodes[e.from].id.clone(), g.nodes[e.to].id.clone(), e.kind))
        .collect()
}

fn pairs(list: &[(&str, &str)], kind: EdgeKind) -> Vec<(String, String, EdgeKind)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned(), kind))
        .collect();
    v.sort();
    v
}

#[test]
fn the_three_tier_graph_has_the_tables_allowed_paths() {
    let r = three_tier();
    let g = graph(&r, &r.steps[2]);
    let ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ops/impostor",
            "ops/monitor",
            "shop/api",
            "shop/db",
            "shop/frontend"
        ]
    );
    assert_eq!(
        g.groups.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
        ["ops", "shop"]
    );
    assert_eq!(g.groups[1].real.as_deref(), Some("shop-t1"));
    // The scenario's table for step 3, off the diagonal (a pod reaching itself is not drawn).
    assert_eq!(
        edges(&g),
        pairs(
            &[
                ("ops/impostor", "ops/monitor"),
                ("ops/impostor", "shop/frontend"),
                ("ops/monitor", "shop/frontend"),
                ("shop/api", "shop/db"),
                ("shop/frontend", "shop/api"),
            ],
            EdgeKind::Allowed
        )
    );
    // frontend -> api is allowed by pod IP and by the Service: one arrow, both ports listed.
    let fa = g
        .edges
        .iter()
        .find(|e| g.nodes[e.from].id == "shop/frontend" && g.nodes[e.to].id == "shop/api")
        .expect("frontend -> api");
    assert_eq!(
        fa.cells,
        ["8080/tcp: allowed", "8080/tcp via service: allowed"]
    );
    // Default deny: only ops talks, to itself.
    assert_eq!(
        edges(&graph(&r, &r.steps[1])),
        pairs(&[("ops/impostor", "ops/monitor")], EdgeKind::Allowed)
    );
    assert!(g.nodes.iter().all(|n| !n.mismatch));
}

#[test]
fn the_layout_is_deterministic_and_nothing_overlaps() {
    for rel in [
        "scenarios/three-tier.yaml",
        "scenarios/dns-egress.yaml",
        "scenarios/egress-external.yaml",
        "scenarios/cross-namespace.yaml",
    ] {
        let r = following_spec(rel);
        for st in &r.steps {
            let g = graph(&r, st);
            assert_eq!(g, graph(&r, st), "{rel}");
            assert_eq!(svg::svg(&g, "a"), svg::svg(&graph(&r, st), "a"));
            for (i, a) in g.nodes.iter().enumerate() {
                let gr = &g.groups[a.group];
                let (hw, hh) = (g.node_w / 2.0, g.node_h / 2.0);
                assert!(
                    a.x - hw >= gr.x && a.x + hw <= gr.x + gr.w,
                    "{rel}: {} in its group",
                    a.id
                );
                assert!(
                    a.y - hh >= gr.y && a.y + hh <= gr.y + gr.h,
                    "{rel}: {} in its group",
                    a.id
                );
                assert!(
                    gr.x + gr.w <= g.width && gr.y + gr.h <= g.height,
                    "{rel}: inside"
                );
                for b in &g.nodes[i + 1..] {
                    let apart = (a.x - b.x).abs() >= g.node_w || (a.y - b.y).abs() >= g.node_h;
                    assert!(apart, "{rel}: {} and {} overlap", a.id, b.id);
                }
            }
            for (i, a) in g.groups.iter().enumerate() {
                for b in &g.groups[i + 1..] {
                    let apart = a.x + a.w <= b.x
                        || b.x + b.w <= a.x
                        || a.y + a.h <= b.y
                        || b.y + b.h <= a.y;
                    assert!(apart, "{rel}: groups {} and {} overlap", a.name, b.name);
                }
            }
        }
    }
}

#[test]
fn mismatches_are_marked_in_the_graph() {
    // Everything connects: x/a -> x/b was expected blocked.
    let r = testdata::mismatch();
    let g = graph(&r, &r.steps[0]);
    assert_eq!(
        edges(&g),
        vec![
            ("x/a".into(), "x/b".into(), EdgeKind::Unexpected),
            ("x/b".into(), "x/a".into(), EdgeKind::Allowed),
        ]
    );
    assert!(g.nodes.iter().all(|n| n.mismatch));
    assert_eq!(g.edges[0].mismatched, ["80/tcp"]);
    let svg = svg::svg(&g, "t");
    assert!(svg.contains("data-kind=\"unexpected\""), "{svg}");
    assert!(svg.contains(">! 80/tcp</text>"), "{svg}");
    // Nothing connects: the allowed paths are missing (x/a -> x/b 80/tcp was to be blocked,
    // 53/udp allowed).
    let r = testdata::report(|_| Outcome::TimedOut);
    let g = graph(&r, &r.steps[0]);
    assert_eq!(
        edges(&g),
        vec![
            ("x/a".into(), "x/b".into(), EdgeKind::Missing),
            ("x/b".into(), "x/a".into(), EdgeKind::Missing),
        ]
    );
    assert_eq!(g.edges[0].mismatched, ["53/udp"]);
    assert_eq!(
        g.edges[0].cells,
        ["53/udp: blocked, expected allow", "80/tcp: blocked"]
    );
    assert!(svg::svg(&g, "t").contains("MISMATCH: blocked, expected allowed"));
}

fn value(a: &quick_xml::events::attributes::Attribute<'_>) -> String {
    let raw = a.value.to_string();
    quick_xml::escape::unescape(&raw)
        .expect("entities")
        .into_owned()
}

/// Elements with `attr`, by its value, from a parse of a whole SVG document.
fn svg_attrs(svg: &str, attr: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut out = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let name: String = e.name().into_inner().to_owned();
                if root.is_none() {
                    root = Some(name.clone());
                    let ns = e
                        .try_get_attribute("xmlns")
                        .expect("attribute")
                        .map(|a| value(&a));
                    assert_eq!(ns.as_deref(), Some("http://www.w3.org/2000/svg"));
                }
                if let Some(a) = e.try_get_attribute(attr).expect("attribute") {
                    out.push(value(&a));
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not XML at {}: {e}", reader.buffer_position()),
        }
    }
    assert_eq!(root.as_deref(), Some("svg"));
    out
}

#[test]
fn the_svg_file_parses_and_has_the_nodes_and_edges() {
    let r = three_tier();
    assert_eq!(chosen_step(&r).map(|s| s.index), Some(3));
    let doc = svg::svg_document(&[r.clone(), testdata::mismatch()]);
    assert!(doc.starts_with("<?xml"));
    let nodes = svg_attrs(&doc, "data-node");
    assert_eq!(
        nodes,
        [
            "ops/impostor",
            "ops/monitor",
            "shop/api",
            "shop/db",
            "shop/frontend",
            "x/a",
            "x/b"
        ]
    );
    assert_eq!(svg_attrs(&doc, "data-from").len(), 5 + 2);
    // The mismatch scenario's graph shows its failing step.
    assert_eq!(chosen_step(&testdata::mismatch()).map(|s| s.index), Some(1));
    // A scenario that never ran draws nothing, and the file still parses.
    let down = ScenarioReport::not_run(&load("scenarios/three-tier.yaml"), "down".into());
    assert!(chosen_step(&down).is_none());
    assert!(svg_attrs(&svg::svg_document(&[down]), "data-node").is_empty());
    // Names that need escaping stay well-formed.
    let mut odd = testdata::mismatch();
    odd.steps[0].name = "a <b> & \"c\"".into();
    svg_attrs(&svg::svg_document(&[odd]), "data-node");
}
