//! The report of a synthesis: text for people, [`Report`] as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Comparison, Isolation, Measured, Note, NoteKind, Proof, Synthesis};

/// Everything `netreach synthesize --json` prints.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Where the intent came from.
    pub source: &'a str,
    /// Isolation used.
    pub isolation: Isolation,
    /// Every cell met.
    pub proven: bool,
    /// Cell by cell.
    pub proof: &'a Proof,
    /// Obstacles in the intent.
    pub notes: &'a [Note],
    /// Least privilege, measured.
    pub comparison: &'a Comparison,
    /// Files written, relative to the output folder.
    pub files: Vec<&'a str>,
}

impl<'a> Report<'a> {
    /// The report of `s`, measured by `c`.
    pub fn new(s: &'a Synthesis, c: &'a Comparison) -> Report<'a> {
        Report {
            source: &s.source,
            isolation: s.isolation,
            proven: s.proof.holds(),
            proof: &s.proof,
            notes: &s.notes,
            comparison: c,
            files: s.files.keys().map(String::as_str).collect(),
        }
    }
}

fn row(out: &mut String, who: &str, m: &Measured) {
    let _ = writeln!(
        out,
        "  {who:<12} {:>3} policies {:>3} rules {:>3} selectors {:>3} ipBlocks   allow {:>4} cells, {} beyond the intent{}{}",
        m.stats.policies,
        m.stats.rules,
        m.stats.selectors,
        m.stats.ip_blocks,
        m.reach.allowed,
        m.reach.beyond_intent,
        if m.reach.intent_missed > 0 {
            format!(", {} intended cells not allowed", m.reach.intent_missed)
        } else {
            String::new()
        },
        if m.reach.unspecified > 0 {
            format!(", {} unspecified", m.reach.unspecified)
        } else {
            String::new()
        },
    );
}

/// The text report.
pub fn render_text(s: &Synthesis, c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Synthesized from {} (isolation: {})",
        s.source,
        s.isolation.as_str()
    );
    let files: Vec<&str> = s.files.keys().map(String::as_str).collect();
    let _ = writeln!(out, "  files: {}", files.join(", "));
    out.push('\n');
    let p = &s.proof;
    if p.holds() {
        let _ = writeln!(
            out,
            "Proof: the policy engine meets all {} cells of the intent with only these policies.",
            p.cells
        );
    } else {
        let _ = writeln!(
            out,
            "Proof FAILED: {} of {} cells of the intent are not met:",
            p.unmet.len(),
            p.cells
        );
        for u in &p.unmet {
            let _ = writeln!(
                out,
                "  {}: want {}, engine: {}",
                u.cell,
                u.want.as_str(),
                u.why
            );
            for n in &u.notes {
                let _ = writeln!(out, "      {n}");
            }
        }
    }
    out.push('\n');
    let total = c.synthesized.reach.universe;
    let _ = writeln!(
        out,
        "Least privilege, over {total} cells ({} listed, {} unlisted and meant blocked):",
        total - c.unlisted,
        c.unlisted
    );
    let _ = writeln!(out, "  {:<12} allows {} cells", "intent", c.intent_allowed);
    row(&mut out, "synthesized", &c.synthesized);
    match &c.scenario {
        Some(sc) => {
            row(&mut out, "scenario", sc);
            let _ = writeln!(
                out,
                "  The scenario's policies allow {} cells beyond the intent; the synthesized ones allow {}.",
                sc.reach.beyond_intent, c.synthesized.reach.beyond_intent
            );
        }
        None => {
            let _ = writeln!(out, "  (the scenario applies no policies at this step)");
        }
    }
    let general: Vec<&Note> = s
        .notes
        .iter()
        .filter(|n| {
            n.kind == NoteKind::UnlistedAllowed
                || !n.cells.iter().any(|c| p.unmet.iter().any(|u| &u.cell == c))
        })
        .collect();
    if !general.is_empty() {
        out.push_str("\nNotes:\n");
        for n in general {
            let _ = writeln!(out, "  {}", n.message);
            if let Some(sg) = &n.suggestion {
                let _ = writeln!(out, "    {sg}");
            }
            for cell in n.cells.iter().take(8) {
                let _ = writeln!(out, "    {cell}");
            }
            if n.cells.len() > 8 {
                let _ = writeln!(out, "    ... and {} more", n.cells.len() - 8);
            }
        }
    }
    out
}
