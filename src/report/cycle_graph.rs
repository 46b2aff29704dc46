//! A transactional anomaly's cycle as a small inline SVG graph: the transactions on a
//! circle in cycle order, each edge an arrow labelled with its relations (`ww`, `wr`, `rw`,
//! `process`, `realtime`), each node `T<id>` with its operations as a tooltip.

use splitbrain_checkers::txn::explain::Anomaly;
use std::fmt::Write as _;

/// Width and height of the drawing, in pixels.
const SIZE: f64 = 320.0;
/// Radius of a node's circle.
const NODE_RADIUS: f64 = 22.0;

/// The SVG of `anomaly`'s cycle, or `None` when the anomaly is not a cycle.
pub fn cycle_svg(anomaly: &Anomaly) -> Option<String> {
    let n = anomaly.cycle.len();
    if n == 0 {
        return None;
    }
    let center = SIZE / 2.0;
    let ring = if n == 1 { 0.0 } else { SIZE / 2.0 - 50.0 };
    // Node i at the top, then clockwise.
    let position = |i: usize| {
        let angle = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / n as f64;
        (center + ring * angle.cos(), center + ring * angle.sin())
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="cycle-graph" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}" role="img" aria-label="{}">"#,
        escape(&format!("{} cycle of {n} transactions", anomaly.kind))
    );
    svg.push_str(
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>"#,
    );
    for (i, step) in anomaly.cycle.iter().enumerate() {
        let (x1, y1) = position(i);
        let (x2, y2) = position((i + 1) % n);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let length = (dx * dx + dy * dy).sqrt().max(1.0);
        // From circle edge to circle edge.
        let (ux, uy) = (dx / length, dy / length);
        let (sx, sy) = (x1 + ux * NODE_RADIUS, y1 + uy * NODE_RADIUS);
        let (ex, ey) = (x2 - ux * NODE_RADIUS, y2 - uy * NODE_RADIUS);
        // Bent outwards a little, so that the two edges of a 2-cycle do not overlap.
        let (mx, my) = ((sx + ex) / 2.0 - uy * 24.0, (sy + ey) / 2.0 + ux * 24.0);
        let label: Vec<&str> = step.rels.iter().map(|r| r.name()).collect();
        let label = escape(&label.join(","));
        let class = if step.rels.iter().any(|r| r.name() == "rw") {
            "edge rw"
        } else {
            "edge"
        };
        let _ = write!(
            svg,
            r#"<g class="{class}"><path d="M {sx:.1} {sy:.1} Q {mx:.1} {my:.1} {ex:.1} {ey:.1}" fill="none" stroke="currentColor" marker-end="url(#arrow)"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{label}</text></g>"#,
            (sx + ex) / 4.0 + mx / 2.0,
            (sy + ey) / 4.0 + my / 2.0,
        );
    }
    for (i, step) in anomaly.cycle.iter().enumerate() {
        let (x, y) = position(i);
        let title = anomaly
            .txns
            .iter()
            .find(|t| t.id == step.from)
            .map_or_else(|| format!("T{}", step.from), |t| t.to_string());
        let _ = write!(
            svg,
            r#"<g class="node"><title>{}</title><circle cx="{x:.1}" cy="{y:.1}" r="{NODE_RADIUS}" fill="white" stroke="currentColor"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="13">T{}</text></g>"#,
            escape(&title),
            y + 4.5,
            step.from
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// Text made safe for SVG/XML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitbrain_checkers::txn::anomaly::AnomalyKind;
    use splitbrain_checkers::txn::consistency::ConsistencyModel;
    use splitbrain_checkers::txn::generate::{self, GenOptions};
    use splitbrain_checkers::txn::{self, TxnCheckOptions, Workload};

    /// The anomalies found in a generated history with `kind` hidden in it.
    fn anomalies_with(kind: AnomalyKind) -> Vec<Anomaly> {
        let mut h = generate::list_append(&GenOptions {
            txns: 200,
            ..GenOptions::default()
        });
        generate::inject(&mut h, kind, 100, 1 << 40, 1 << 40);
        let opts = TxnCheckOptions::new(Workload::ListAppend, ConsistencyModel::Serializable);
        txn::check(&h, &opts).unwrap().anomalies
    }

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn a_cycle_is_one_node_per_transaction_and_one_labelled_arrow_per_edge() {
        let anomalies = anomalies_with(AnomalyKind::GSingle);
        let a = anomalies
            .iter()
            .find(|a| a.kind == AnomalyKind::GSingle)
            .expect("the G-single is found");
        let svg = cycle_svg(a).expect("a cycle has a graph");
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert_eq!(count(&svg, "<circle "), a.cycle.len());
        assert_eq!(count(&svg, "marker-end="), a.cycle.len());
        assert_eq!(count(&svg, r#"<g class="edge rw">"#), 1, "{svg}");
        for step in &a.cycle {
            assert!(svg.contains(&format!(">T{}</text>", step.from)), "{svg}");
        }
        assert!(
            svg.contains(">ww</text>") || svg.contains(">wr</text>"),
            "{svg}"
        );
        assert!(svg.contains(">rw</text>"), "{svg}");
        // Every opened group is closed.
        assert_eq!(count(&svg, "<g "), count(&svg, "</g>"));
        // The tooltip is the transaction in words.
        assert!(svg.contains("[append "), "{svg}");
        assert!(svg.contains("G-single cycle of 2 transactions"), "{svg}");
    }

    #[test]
    fn nodes_are_apart_and_inside_the_drawing() {
        let anomalies = anomalies_with(AnomalyKind::G1c);
        let a = anomalies.iter().find(|a| !a.cycle.is_empty()).unwrap();
        let svg = cycle_svg(a).unwrap();
        let centers: Vec<(f64, f64)> = svg
            .split("<circle cx=\"")
            .skip(1)
            .map(|rest| {
                let x: f64 = rest.split('"').next().unwrap().parse().unwrap();
                let y: f64 = rest
                    .split("cy=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                (x, y)
            })
            .collect();
        assert_eq!(centers.len(), a.cycle.len());
        for (i, &(x, y)) in centers.iter().enumerate() {
            assert!((NODE_RADIUS..=SIZE - NODE_RADIUS).contains(&x), "{x}");
            assert!((NODE_RADIUS..=SIZE - NODE_RADIUS).contains(&y), "{y}");
            for &(u, v) in &centers[i + 1..] {
                assert!(((x - u).powi(2) + (y - v).powi(2)).sqrt() > 2.0 * NODE_RADIUS);
            }
        }
    }

    #[test]
    fn an_anomaly_without_a_cycle_has_no_graph() {
        let anomalies = anomalies_with(AnomalyKind::G1a);
        let a = anomalies
            .iter()
            .find(|a| a.kind == AnomalyKind::G1a)
            .expect("the G1a is found");
        assert!(a.cycle.is_empty());
        assert_eq!(cycle_svg(a), None);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a & "b" 'c'>"#),
            "&lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;"
        );
    }
}
