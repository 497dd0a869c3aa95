//! The graph as SVG: one standalone document (presentation attributes, no stylesheet needed),
//! inline in the HTML page and as the `--svg` file. Arrows are quadratic curves bowed to the
//! right of their direction, so a pair's two directions never overlap; every kind of arrow has
//! its own dash pattern besides its colour, and the legend lists the kinds the graph uses.

use std::fmt::Write;

use super::esc;
use super::graph::{Edge, EdgeKind, Graph, MARGIN, chosen_step, graph};
use crate::report::ScenarioReport;

/// A number for SVG: whole pixels are precise enough, and short.
fn num(v: f64) -> String {
    let r = v.round();
    if r == 0.0 {
        "0".into()
    } else {
        format!("{r:.0}")
    }
}

/// The point where the ray from a box's centre towards `(tx, ty)` leaves the box.
fn border(cx: f64, cy: f64, tx: f64, ty: f64, hw: f64, hh: f64) -> (f64, f64) {
    let (dx, dy) = (tx - cx, ty - cy);
    let sx = if dx.abs() > 1e-9 {
        hw / dx.abs()
    } else {
        f64::INFINITY
    };
    let sy = if dy.abs() > 1e-9 {
        hh / dy.abs()
    } else {
        f64::INFINITY
    };
    let s = sx.min(sy).min(1.0);
    (cx + dx * s, cy + dy * s)
}

/// The curve of an arrow: start, control point, end (on the boxes' borders).
fn curve(g: &Graph, e: &Edge) -> [(f64, f64); 3] {
    let (a, b) = (&g.nodes[e.from], &g.nodes[e.to]);
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = dx.hypot(dy).max(1.0);
    // Bow to the right of the direction of travel: a -> b and b -> a curve apart.
    let bow = (len * 0.18).min(70.0);
    let (cx, cy) = (
        (a.x + b.x) / 2.0 - dy / len * bow,
        (a.y + b.y) / 2.0 + dx / len * bow,
    );
    let (hw, hh) = (g.node_w / 2.0 + 1.0, g.node_h / 2.0 + 1.0);
    let p0 = border(a.x, a.y, cx, cy, hw, hh);
    let p2 = border(b.x, b.y, cx, cy, hw + 2.0, hh + 2.0);
    [p0, (cx, cy), p2]
}

/// The graph as a standalone SVG document. `id` prefixes the element ids (arrowheads), so that
/// several graphs can share one page.
pub fn svg(g: &Graph, id: &str) -> String {
    let mut s = String::with_capacity(4096 + g.edges.len() * 120);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"nr-graph\" viewBox=\"0 0 {w} {h}\" \
         width=\"{w}\" height=\"{h}\" font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\" \
         font-size=\"12\">",
        w = num(g.width),
        h = num(g.height)
    );
    body(&mut s, g, id);
    s.push_str("</svg>");
    s
}

/// Several graphs stacked in one SVG document (the `--svg` file).
pub fn svg_stack(graphs: &[Graph]) -> String {
    let width = graphs.iter().map(|g| g.width).fold(600.0, f64::max);
    let height: f64 = graphs.iter().map(|g| g.height).sum::<f64>().max(60.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         class=\"nr-graph\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\" font-size=\"12\">",
        w = num(width),
        h = num(height)
    );
    if graphs.is_empty() {
        s.push_str("<text x=\"20\" y=\"36\">No step ran: nothing to draw.</text>");
    }
    let mut y = 0.0;
    for (i, g) in graphs.iter().enumerate() {
        let _ = write!(s, "<g transform=\"translate(0 {})\">", num(y));
        body(&mut s, g, &format!("nr{i}"));
        s.push_str("</g>");
        y += g.height;
    }
    s.push_str("</svg>\n");
    s
}

/// The `--svg` file: one graph per scenario (see [`chosen_step`]), stacked.
pub fn svg_document(reports: &[ScenarioReport]) -> String {
    let graphs: Vec<Graph> = reports
        .iter()
        .filter_map(|r| chosen_step(r).map(|st| graph(r, st)))
        .collect();
    svg_stack(&graphs)
}

fn body(s: &mut String, g: &Graph, id: &str) {
    let _ = write!(s, "<title>{}</title>", esc(&g.caption));
    // Arrowheads, one per kind used (markers take their colour from here, not from the path).
    s.push_str("<defs>");
    for k in EdgeKind::ALL {
        if !g.legend.iter().any(|(l, _, _)| *l == k) {
            continue;
        }
        let (colour, _, _) = k.stroke();
        let _ = write!(
            s,
            "<marker id=\"{id}-{k}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" \
             markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\" \
             markerUnits=\"userSpaceOnUse\"><path d=\"M0 0L10 5L0 10z\" fill=\"{colour}\"/></marker>",
            k = k.as_str()
        );
    }
    s.push_str("</defs>");
    let _ = write!(
        s,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\
         <text x=\"{MARGIN}\" y=\"{}\" font-size=\"15\" font-weight=\"bold\" fill=\"#222\">{}</text>",
        num(MARGIN + 16.0),
        esc(&g.caption)
    );
    // Groups.
    s.push_str("<g class=\"nr-groups\">");
    for gr in &g.groups {
        let _ = write!(
            s,
            "<g data-group=\"{name}\"><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"10\" \
             fill=\"#f3f5f8\" stroke=\"#aab4bf\"/><text x=\"{tx}\" y=\"{ty}\" font-weight=\"bold\" \
             fill=\"#333\">{name}",
            name = esc(&gr.name),
            x = num(gr.x),
            y = num(gr.y),
            w = num(gr.w),
            h = num(gr.h),
            tx = num(gr.x + 10.0),
            ty = num(gr.y + 18.0),
        );
        if let Some(r) = &gr.real {
            let _ = write!(
                s,
                "<tspan font-weight=\"normal\" fill=\"#666\" font-size=\"11\"> ({})</tspan>",
                esc(r)
            );
        }
        s.push_str("</text></g>");
    }
    s.push_str("</g>");
    // Arrows, grouped by kind: a group carries the stroke, so each path is short.
    for k in EdgeKind::ALL {
        let edges: Vec<&Edge> = g.edges.iter().filter(|e| e.kind == k).collect();
        if edges.is_empty() {
            continue;
        }
        let (colour, width, dash) = k.stroke();
        let _ = write!(
            s,
            "<g class=\"nr-edges nr-e-{k}\" data-kind=\"{k}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"{width}\"{dash} marker-end=\"url(#{id}-{k})\">",
            k = k.as_str(),
            dash = dash.map_or(String::new(), |d| format!(" stroke-dasharray=\"{d}\""))
        );
        for e in edges {
            let [p0, c, p2] = curve(g, e);
            let _ = write!(
                s,
                "<path data-from=\"{}\" data-to=\"{}\" d=\"M{}Q{} {}\"",
                esc(&g.nodes[e.from].id),
                esc(&g.nodes[e.to].id),
                pt(p0),
                pt(c),
                pt(p2),
            );
            // Allowed arrows are most of a graph and say what they are; the others carry every
            // cell of the pair as a tooltip.
            if k == EdgeKind::Allowed {
                s.push_str("/>");
            } else {
                let _ = write!(s, "><title>{}</title></path>", esc(&e.cells.join("; ")));
            }
        }
        s.push_str("</g>");
    }
    // Nodes: boxes (a disagreeing node's border is thick and vermillion), then their names.
    s.push_str("<g class=\"nr-nodes\" fill=\"#ffffff\" stroke=\"#4d5966\">");
    for n in &g.nodes {
        let _ = write!(
            s,
            "<rect data-node=\"{id}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"6\"{mm}>\
             <title>{id}</title></rect>",
            id = esc(&n.id),
            x = num(n.x - g.node_w / 2.0),
            y = num(n.y - g.node_h / 2.0),
            w = num(g.node_w),
            h = num(g.node_h),
            mm = if n.mismatch {
                " stroke=\"#D55E00\" stroke-width=\"2.5\""
            } else {
                ""
            },
        );
    }
    s.push_str("</g><g class=\"nr-names\" fill=\"#111\" text-anchor=\"middle\">");
    for n in &g.nodes {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            num(n.x),
            num(n.y + 4.0),
            esc(&n.label)
        );
    }
    s.push_str("</g>");
    // Labels on disagreeing arrows, on top of everything.
    s.push_str(
        "<g class=\"nr-labels\" font-size=\"11\" font-weight=\"bold\" fill=\"#a33f00\" \
         stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\" text-anchor=\"middle\">",
    );
    for e in g.edges.iter().filter(|e| e.kind.is_mismatch()) {
        let [p0, c, p2] = curve(g, e);
        // The curve's midpoint (t = 1/2).
        let (mx, my) = (
            0.25 * p0.0 + 0.5 * c.0 + 0.25 * p2.0,
            0.25 * p0.1 + 0.5 * c.1 + 0.25 * p2.1,
        );
        let mark = if e.kind == EdgeKind::Missing {
            "\u{2715}"
        } else {
            "!"
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\">{mark} {}</text>",
            num(mx),
            num(my + 4.0),
            esc(&e.mismatched.join(", "))
        );
    }
    s.push_str("</g>");
    // Legend: the kinds this graph uses.
    let _ = write!(
        s,
        "<g class=\"nr-legend\" font-size=\"11\" fill=\"#333\" transform=\"translate({MARGIN} {})\">",
        num(g.legend_y + 6.0)
    );
    if g.legend.is_empty() {
        s.push_str("<text y=\"4\">no connection between different nodes was allowed</text>");
    }
    for (k, lx, ly) in &g.legend {
        let (colour, width, dash) = k.stroke();
        let _ = write!(
            s,
            "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"{colour}\" stroke-width=\"{width}\"{dash} \
             marker-end=\"url(#{id}-{k})\"/><text x=\"{tx}\" y=\"{ty}\">{label}</text>",
            x1 = num(*lx),
            x2 = num(lx + 34.0),
            tx = num(lx + 42.0),
            y = num(*ly),
            ty = num(ly + 4.0),
            k = k.as_str(),
            dash = dash.map_or(String::new(), |d| format!(" stroke-dasharray=\"{d}\"")),
            label = esc(k.legend()),
        );
    }
    s.push_str("</g>");
}

fn pt((x, y): (f64, f64)) -> String {
    format!("{} {}", num(x), num(y))
}
