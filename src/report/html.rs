//! `report.html`: one self-contained page per run (inline CSS, SVG and a little script; no
//! network), readable offline and in a CI artifact viewer.
//!
//! * the verdict, the checkers, availability in and out of faults, latency, the faults with
//!   their evidence (those that did not take effect in red);
//! * operations per client slot on a timeline, fault windows hatched (colour-blind-safe
//!   palette: a fault never looks like a failed operation);
//! * a nemesis lane and a lane per node with its role over time (when the system says);
//! * latency of every operation over time and throughput over time, by function and
//!   outcome, with the same hatching;
//! * for `invalid`: the offending key's operations, each bar labelled with its operation,
//!   the longest linearizable prefix numbered in linearization order, the operation that
//!   breaks it marked; hovering one shows the model state after it.
//! * for `valid`, when the history is small enough (see [`crate::analysis::drawable_keys`]):
//!   a lane per key under the timeline with its operations in linearization order, each
//!   at a point within its interval; hovering one shows the model state after it.
//!
//! Large runs stay usable: the timeline and the latency plot draw an evenly spaced sample
//! (every n-th operation) beyond a cap, and the page says so; throughput is binned from
//! every operation.

use super::Checked;
use crate::analysis::{ClientOp, CounterexampleText, FaultWindow, OpOutcome, RunFacts};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use splitbrain_checkers::models::ModelKind;
use splitbrain_checkers::verdict::Linearization;
use splitbrain_checkers::{Counterexample, History, Value, Verdict};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Operations drawn on the timeline at most.
pub const MAX_TIMELINE_OPS: usize = 3000;
/// Points in the latency plot at most.
pub const MAX_SCATTER_POINTS: usize = 5000;
/// Operations of the offending key drawn at most (around the one that breaks it).
pub const MAX_COUNTEREXAMPLE_OPS: usize = 200;
/// Prefix operations drawn before the one that breaks it.
const PREFIX_DRAWN: usize = 12;

const PLOT_LEFT: f64 = 90.0;
const PLOT_WIDTH: f64 = 1000.0;
const SVG_WIDTH: f64 = PLOT_LEFT + PLOT_WIDTH + 20.0;

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1160px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.verdict { display: inline-block; padding: .2em .8em; border-radius: .3em; font-weight: bold; color: #fff; }
.verdict.valid { background: #2a8a3a; } .verdict.invalid { background: #c62828; } .verdict.unknown { background: #d08300; }
.note { color: #555; font-style: italic; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; }
svg { display: block; background: #fff; border: 1px solid #eee; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
rect.op.ok { fill: #009e73; } rect.op.fail { fill: #d55e00; }
rect.op.info { fill: #e69f00; } rect.op.pending { fill: #999; }
rect.op:hover, rect.cex:hover { stroke: #000; stroke-width: 1.5; }
rect.fault-window { fill: url(#fault-hatch); }
text.fault-label { fill: #0b4f7a; }
rect.nemesis-fault { fill: #56b4e9; stroke: #0b4f7a; } rect.nemesis-fault.not-in-effect { fill: #fff; stroke: #b00020; stroke-width: 2; stroke-dasharray: 4 2; }
rect.role.leader { fill: #0072b2; } rect.role.follower { fill: #d9d9d9; } rect.role.unknown { fill: #fff; stroke: #999; stroke-dasharray: 2 2; }
.pt { stroke-width: 1.3; } .pt.ok { stroke: none; } .pt.fail, .pt.info, .pt.pending { fill: none; }
pre.table { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; line-height: 1.15; font-size: 12.5px; }
.axis line, .grid { stroke: #ccc; stroke-width: 1; }
.legend span { display: inline-block; width: .9em; height: .9em; margin: 0 .3em 0 1em; vertical-align: -.1em; }
rect.cex.prefix { fill: #b3dfd2; stroke: #00795a; } rect.cex.culprit { fill: #f6c3a6; stroke: #d55e00; stroke-width: 3; }
rect.cex.other { fill: #e0e0e0; stroke: #9e9e9e; }
svg text.cex-label { font: 10px "DejaVu Sans Mono", monospace; pointer-events: none; }
tr.fault.not-in-effect td, p.not-in-effect { background: #fde2e2; color: #b00020; font-weight: bold; }
rect.lin { fill: #00795a; } rect.lin.indeterminate { fill: #e69f00; } rect.lin:hover { fill: #000; }
#op-detail, #cex-detail, #lin-detail { min-height: 1.4em; font-family: monospace; white-space: pre-wrap; }
#script-errors { color: #b71c1c; }
"#;

/// Installed first, so that an error in any later script is shown on the page (and found by
/// the browser test) instead of passing silently.
const ERROR_HOOK: &str = r#"
window.splitbrainErrors = [];
window.addEventListener('error', function (e) {
  var msg = (e.message || 'script error') + (e.lineno ? ' (line ' + e.lineno + ')' : '');
  var box = document.getElementById('script-errors');
  if (box) { box.textContent += msg + '\n'; box.hidden = false; } else { window.splitbrainErrors.push(msg); }
});
"#;

/// Click an operation (or a fault) to read its details; marks the page as rendered.
const PAGE_SCRIPT: &str = r#"
(function () {
  var box = document.getElementById('script-errors');
  window.splitbrainErrors.forEach(function (m) { box.textContent += m + '\n'; box.hidden = false; });
  var detail = document.getElementById('op-detail');
  var cexDetail = document.getElementById('cex-detail');
  var linDetail = document.getElementById('lin-detail');
  var show = function (el) {
    var t = el.querySelector('title');
    var text = t ? t.textContent : '';
    if (el.classList.contains('cex') && cexDetail) {
      cexDetail.textContent = text + '\n' + (el.getAttribute('data-state') || '');
    } else if (el.classList.contains('lin') && linDetail) {
      linDetail.textContent = text + '\n' + (el.getAttribute('data-state') || '');
    } else if (detail) {
      detail.textContent = text;
    }
  };
  var pointable = document.querySelectorAll('rect.op, rect.cex, rect.lin, rect.fault-window, rect.nemesis-fault, rect.role');
  pointable.forEach(function (el) {
    el.style.cursor = 'pointer';
    el.addEventListener('mouseenter', function () { show(el); });
    el.addEventListener('click', function () { show(el); });
  });
  var ops = document.querySelectorAll('#timeline rect.op').length;
  var windows = document.querySelectorAll('#timeline rect.fault-window').length;
  document.querySelectorAll('#linearization g.linearization').forEach(function (g) {
    g.setAttribute('data-drawn', g.querySelectorAll('rect.lin').length);
  });
  document.getElementById('drawn-counts').textContent =
    ops + ' operations and ' + windows + ' fault windows drawn on the timeline.';
  document.body.setAttribute('data-rendered', 'yes');
})();
"#;

/// Maps run time (ns) to x.
#[derive(Clone, Copy)]
struct TimeScale {
    start: u64,
    end: u64,
}

impl TimeScale {
    fn x(&self, ns: u64) -> f64 {
        let span = (self.end.saturating_sub(self.start)).max(1) as f64;
        PLOT_LEFT + (ns.saturating_sub(self.start) as f64 / span).min(1.0) * PLOT_WIDTH
    }

    /// Ticks along the time axis at a round step, labelled in seconds.
    fn axis(&self, out: &mut String, y: f64) {
        let span_s = (self.end.saturating_sub(self.start)) as f64 / 1e9;
        let steps = [
            0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
            60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
        ];
        let step = steps
            .iter()
            .copied()
            .find(|s| span_s / s <= 12.0)
            .unwrap_or(3600.0);
        let _ = write!(
            out,
            r#"<g class="axis"><line x1="{PLOT_LEFT}" y1="{y}" x2="{}" y2="{y}"/>"#,
            PLOT_LEFT + PLOT_WIDTH
        );
        let first = (self.start as f64 / 1e9 / step).ceil() as i64;
        let last = (self.end as f64 / 1e9 / step).floor() as i64;
        for i in first..=last {
            let s = i as f64 * step;
            let x = self.x((s * 1e9) as u64);
            let label = if step < 1.0 {
                format!("{s:.3}")
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_owned()
                    + "s"
            } else {
                format!("{s:.0}s")
            };
            let _ = write!(
                out,
                r#"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}"/><text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                y + 4.0,
                y + 16.0
            );
        }
        out.push_str("</g>");
    }
}

/// An evenly spaced sample of at most `cap` items, and the stride used (1: all of them).
fn sample<T>(items: &[T], cap: usize) -> (Vec<&T>, usize) {
    if items.len() <= cap {
        return (items.iter().collect(), 1);
    }
    let stride = items.len().div_ceil(cap);
    (items.iter().step_by(stride).collect(), stride)
}

fn op_title(op: &ClientOp) -> String {
    let key = op
        .key
        .as_ref()
        .map_or_else(String::new, |k| format!(" key {k}"));
    let result = match (&op.output, &op.error) {
        (Some(out), _) => format!(" → {out}"),
        (None, Some(e)) => format!(" ({})", value_text(e)),
        _ => String::new(),
    };
    let latency = op.latency_ns().map_or_else(
        || "never completed".to_owned(),
        |l| format!("{:.1} ms", l as f64 / 1e6),
    );
    let node = op
        .node
        .as_ref()
        .map_or_else(String::new, |n| format!(" on {n}"));
    format!(
        "#{} process {}{node}{key}: {} {}{result} — {} at {:.3}s, {latency}",
        op.index,
        op.process,
        op.f,
        op.value,
        op.outcome.as_str(),
        op.start_ns as f64 / 1e9
    )
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) | Value::Keyword(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fault_title(w: &FaultWindow) -> String {
    let mut t = format!(
        "{}{}: {}",
        w.kind,
        w.id.map_or_else(String::new, |i| format!(" #{i}")),
        w.description
    );
    for e in &w.evidence {
        t.push('\n');
        t.push_str(e);
    }
    if let Some(e) = &w.error {
        t.push_str("\nerror: ");
        t.push_str(e);
    }
    t
}

/// The hatch fault windows are shaded with: blue diagonal stripes, told apart from failed
/// operations (vermillion) also without colour vision.
const FAULT_HATCH: &str = r##"<defs><pattern id="fault-hatch" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="#56b4e9" fill-opacity=".10"/><line x1="0" y1="0" x2="0" y2="8" stroke="#0072b2" stroke-opacity=".35" stroke-width="2.5"/></pattern></defs>"##;

/// Colours of operation functions (Okabe–Ito, safe for colour-blind readers).
fn function_colour(f: &str) -> &'static str {
    match f {
        "read" => "#0072b2",
        "write" => "#e69f00",
        "cas" => "#cc79a7",
        "add" | "append" => "#009e73",
        _ => "#000000",
    }
}

/// Shaded fault windows over a plot area, labelled on the timeline.
fn fault_shading(
    out: &mut String,
    faults: &[FaultWindow],
    scale: TimeScale,
    top: f64,
    height: f64,
    labels: bool,
) {
    for w in faults {
        let x0 = scale.x(w.start_ns);
        let x1 = scale.x(w.end_or(scale.end)).max(x0 + 1.0);
        let _ = write!(
            out,
            r#"<rect class="fault-window" data-kind="{}" x="{x0:.1}" y="{top}" width="{:.1}" height="{height}"><title>{}</title></rect>"#,
            attr(&w.kind),
            x1 - x0,
            text(&fault_title(w))
        );
        if labels {
            let _ = write!(
                out,
                r#"<text class="fault-label" x="{:.1}" y="{}">{}</text>"#,
                x0 + 2.0,
                top - 3.0,
                text(&w.kind)
            );
        }
    }
}

fn timeline(
    out: &mut String,
    ops: &[ClientOp],
    faults: &[FaultWindow],
    scale: TimeScale,
    slots: usize,
) {
    let (shown, stride) = sample(ops, MAX_TIMELINE_OPS);
    out.push_str("<h2>Timeline</h2>");
    let _ = write!(
        out,
        r#"<p class="note">Operations per client slot (a slot continues under a new process id after an indeterminate operation). Fault windows hatched blue. Hover an operation for its details. {}</p>"#,
        if stride > 1 {
            format!(
                "Sampled: 1 in {stride} operations is drawn ({} of {}), to keep the page usable.",
                shown.len(),
                ops.len()
            )
        } else {
            format!("All {} operations drawn.", ops.len())
        }
    );
    out.push_str(r#"<p class="legend"><span style="background:#009e73"></span>ok<span style="background:#d55e00"></span>fail<span style="background:#e69f00"></span>info (indeterminate)<span style="background:#999"></span>never completed<span style="background:repeating-linear-gradient(45deg,#9cc9e8 0 3px,#eef6fc 3px 6px)"></span>fault window</p>"#);
    let slots = slots.max(1);
    let lane = (560.0 / slots as f64).clamp(3.0, 16.0);
    let top = 20.0;
    let height = lane * slots as f64;
    let _ = write!(
        out,
        r#"<svg id="timeline" width="{SVG_WIDTH}" height="{}" viewBox="0 0 {SVG_WIDTH} {}">"#,
        top + height + 30.0,
        top + height + 30.0
    );
    fault_shading(out, faults, scale, top, height, true);
    if lane >= 8.0 {
        for s in 0..slots {
            let _ = write!(
                out,
                r#"<text x="{}" y="{:.1}" text-anchor="end">slot {s}</text>"#,
                PLOT_LEFT - 6.0,
                top + lane * (s as f64 + 0.75)
            );
        }
    }
    for op in shown {
        let slot = (op.process % slots as u64) as f64;
        let x0 = scale.x(op.start_ns);
        let x1 = scale.x(op.end_ns.unwrap_or(scale.end));
        let _ = write!(
            out,
            r#"<rect class="op {}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            op.outcome.as_str(),
            top + slot * lane + 1.0,
            (x1 - x0).max(1.0),
            (lane - 2.0).max(1.0),
            text(&op_title(op))
        );
    }
    scale.axis(out, top + height + 4.0);
    out.push_str("</svg>");
}

/// Every node's role sampled at fault boundaries: (time, roles) from each fault's
/// `roles_before` (at its start) and `roles_after` (at its heal), in time order.
fn role_samples(faults: &[FaultWindow]) -> Vec<(u64, &[String])> {
    let mut samples: Vec<(u64, &[String])> = Vec::new();
    for w in faults {
        if !w.roles_before.is_empty() {
            samples.push((w.start_ns, &w.roles_before));
        }
        if let (Some(end), false) = (w.end_ns, w.roles_after.is_empty()) {
            samples.push((end, &w.roles_after));
        }
    }
    samples.sort_by_key(|(t, _)| *t);
    samples
}

/// A nemesis lane (every fault as a bar) and a lane per node with its role over time.
fn lanes(out: &mut String, nodes: &[String], faults: &[FaultWindow], scale: TimeScale) {
    let samples = role_samples(faults);
    out.push_str("<h2>Nemesis and roles</h2>");
    let _ = write!(
        out,
        r#"<p class="note">The nemesis lane: every fault from its start to its heal (a fault that did not take effect: red dashed outline). {}</p>"#,
        if samples.is_empty() {
            "Roles are not known: the system has no role query, or no fault was injected."
                .to_owned()
        } else {
            format!(
                "Below, each node's role as the system reported it, sampled just before each fault and just after each heal ({} samples): dark blue leader, grey follower, dashed no answer.",
                samples.len()
            )
        }
    );
    let lane = 18.0;
    let top = 6.0;
    let rows = 1 + if samples.is_empty() { 0 } else { nodes.len() };
    let height = lane * rows as f64;
    let _ = write!(
        out,
        r#"<svg id="lanes" width="{SVG_WIDTH}" height="{}">"#,
        top + height + 30.0
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="{:.1}" text-anchor="end">nemesis</text>"#,
        PLOT_LEFT - 6.0,
        top + lane * 0.7
    );
    for w in faults {
        let x0 = scale.x(w.start_ns);
        let x1 = scale.x(w.end_or(scale.end)).max(x0 + 2.0);
        let class = if w.effective == Some(false) {
            "nemesis-fault not-in-effect"
        } else {
            "nemesis-fault"
        };
        let _ = write!(
            out,
            r#"<rect class="{class}" data-kind="{}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            attr(&w.kind),
            top + 2.0,
            x1 - x0,
            lane - 4.0,
            text(&fault_title(w))
        );
        if x1 - x0 > 7.0 * w.kind.len() as f64 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" style="pointer-events:none">{}</text>"#,
                x0 + 3.0,
                top + lane * 0.7,
                text(&w.kind)
            );
        }
    }
    if !samples.is_empty() {
        for (i, node) in nodes.iter().enumerate() {
            let y0 = top + lane * (i + 1) as f64;
            let _ = write!(
                out,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                PLOT_LEFT - 6.0,
                y0 + lane * 0.7,
                text(node)
            );
            for (k, (at, roles)) in samples.iter().enumerate() {
                let until = samples.get(k + 1).map_or(scale.end, |(t, _)| *t);
                let line = roles.iter().find_map(|l| {
                    crate::analysis::faults::parse_role(l).filter(|(n, _, _)| n == node)
                });
                let (class, what) = match line {
                    Some((_, "leader", term)) => ("leader", format!("leader{}", term_text(term))),
                    Some((_, "follower", term)) => {
                        ("follower", format!("follower{}", term_text(term)))
                    }
                    _ => ("unknown", "no answer".to_owned()),
                };
                let x0 = scale.x(*at);
                let x1 = scale.x(until).max(x0 + 1.0);
                let _ = write!(
                    out,
                    r#"<rect class="role {class}" data-node="{}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}: {what} from {:.2}s</title></rect>"#,
                    attr(node),
                    y0 + 3.0,
                    x1 - x0,
                    lane - 6.0,
                    text(node),
                    *at as f64 / 1e9
                );
            }
        }
    }
    scale.axis(out, top + height + 4.0);
    out.push_str("</svg>");
}

fn term_text(term: Option<u64>) -> String {
    term.map_or_else(String::new, |t| format!(" (term {t})"))
}

fn latency_plot(out: &mut String, ops: &[ClientOp], faults: &[FaultWindow], scale: TimeScale) {
    let completed: Vec<&ClientOp> = ops.iter().filter(|o| o.end_ns.is_some()).collect();
    let (shown, stride) = sample(&completed, MAX_SCATTER_POINTS);
    out.push_str("<h2>Latency</h2>");
    let _ = write!(
        out,
        r#"<p class="note">Latency of each completed operation (log scale) at its invocation time, coloured by function; dot ok, cross fail, ring indeterminate. {}</p>"#,
        if stride > 1 {
            format!(
                "Sampled: 1 in {stride} operations is drawn ({} of {}).",
                shown.len(),
                completed.len()
            )
        } else {
            format!("All {} completed operations.", completed.len())
        }
    );
    out.push_str(&function_legend(ops, true));
    let (top, height) = (10.0, 260.0);
    let _ = write!(
        out,
        r#"<svg id="latency" width="{SVG_WIDTH}" height="{}">"#,
        top + height + 30.0
    );
    fault_shading(out, faults, scale, top, height, false);
    let lat_ms = |op: &ClientOp| (op.latency_ns().unwrap_or(0) as f64 / 1e6).max(0.01);
    let lo = shown
        .iter()
        .map(|o| lat_ms(o))
        .fold(f64::INFINITY, f64::min);
    let hi = shown.iter().map(|o| lat_ms(o)).fold(0.0, f64::max);
    let (lo, hi) = if lo.is_finite() {
        (
            10f64.powf(lo.log10().floor()),
            10f64.powf(hi.log10().ceil().max(lo.log10().floor() + 1.0)),
        )
    } else {
        (0.1, 1000.0)
    };
    let y = |ms: f64| top + height - (ms.log10() - lo.log10()) / (hi.log10() - lo.log10()) * height;
    let mut decade = lo;
    while decade <= hi * 1.0001 {
        let yy = y(decade);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{PLOT_LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}"/><text x="{}" y="{:.1}" text-anchor="end">{} ms</text>"#,
            PLOT_LEFT + PLOT_WIDTH,
            PLOT_LEFT - 6.0,
            yy + 4.0,
            decade
        );
        decade *= 10.0;
    }
    // Colour: the function; shape: the outcome (dot ok, cross fail, ring info), as Jepsen
    // draws its latency plots.
    for op in shown {
        let (x, yy) = (scale.x(op.start_ns), y(lat_ms(op)));
        let colour = function_colour(&op.f);
        let class = format!("pt {} f-{}", op.outcome.as_str(), attr(&op.f));
        let _ = match op.outcome {
            OpOutcome::Ok => write!(
                out,
                r#"<circle class="{class}" cx="{x:.1}" cy="{yy:.1}" r="1.7" fill="{colour}"/>"#
            ),
            OpOutcome::Fail => write!(
                out,
                r#"<path class="{class}" d="M{:.1} {:.1}l5 5m0 -5l-5 5" stroke="{colour}"/>"#,
                x - 2.5,
                yy - 2.5
            ),
            _ => write!(
                out,
                r#"<circle class="{class}" cx="{x:.1}" cy="{yy:.1}" r="3" stroke="{colour}"/>"#
            ),
        };
    }
    scale.axis(out, top + height + 4.0);
    out.push_str("</svg>");
}

/// The functions of `ops` with their colours; with the outcome markers for the latency plot.
fn function_legend(ops: &[ClientOp], markers: bool) -> String {
    let functions: std::collections::BTreeSet<&str> = ops.iter().map(|o| o.f.as_str()).collect();
    let mut out = String::from(r#"<p class="legend">"#);
    for f in functions {
        let _ = write!(
            out,
            r#"<span style="background:{}"></span>{}"#,
            function_colour(f),
            text(f)
        );
    }
    if markers {
        out.push_str(" &nbsp; ● ok &nbsp; ✕ fail &nbsp; ○ indeterminate");
    } else {
        out.push_str(" &nbsp; ─ ok &nbsp; ╌ fail &nbsp; ┈ indeterminate");
    }
    out.push_str("</p>");
    out
}

fn throughput_plot(out: &mut String, ops: &[ClientOp], faults: &[FaultWindow], scale: TimeScale) {
    let span = scale.end.saturating_sub(scale.start).max(1);
    let buckets = (span / 250_000_000).clamp(10, 200) as usize;
    let width_ns = span as f64 / buckets as f64;
    // One series per function and outcome (Jepsen's rate plot).
    let mut series: BTreeMap<(String, &'static str), Vec<u64>> = BTreeMap::new();
    for op in ops {
        let Some(end) = op.end_ns else { continue };
        let b = ((end.saturating_sub(scale.start)) as f64 / width_ns) as usize;
        let b = b.min(buckets - 1);
        series
            .entry((op.f.clone(), op.outcome.as_str()))
            .or_insert_with(|| vec![0; buckets])[b] += 1;
    }
    let per_s = |n: u64| n as f64 / (width_ns / 1e9);
    let max = series
        .values()
        .flatten()
        .map(|n| per_s(*n))
        .fold(1.0, f64::max);
    out.push_str("<h2>Throughput</h2>");
    let _ = write!(
        out,
        r#"<p class="note">Completions per second in {:.0} ms bins, a line per function and outcome: colour the function; solid ok, dashed fail, dotted indeterminate (from every operation).</p>"#,
        width_ns / 1e6
    );
    out.push_str(&function_legend(ops, false));
    let (top, height) = (10.0, 200.0);
    let _ = write!(
        out,
        r#"<svg id="throughput" width="{SVG_WIDTH}" height="{}">"#,
        top + height + 30.0
    );
    fault_shading(out, faults, scale, top, height, false);
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let yy = top + height - height * i as f64 / 4.0;
        let _ = write!(
            out,
            r#"<line class="grid" x1="{PLOT_LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}"/><text x="{}" y="{:.1}" text-anchor="end">{v:.0}/s</text>"#,
            PLOT_LEFT + PLOT_WIDTH,
            PLOT_LEFT - 6.0,
            yy + 4.0
        );
    }
    for ((f, outcome), counts) in &series {
        let colour = function_colour(f);
        let dash = match *outcome {
            "ok" => "",
            "fail" => r#" stroke-dasharray="7 3""#,
            _ => r#" stroke-dasharray="2 3""#,
        };
        let points: Vec<String> = counts
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let x = PLOT_LEFT + (i as f64 + 0.5) / buckets as f64 * PLOT_WIDTH;
                let y = top + height - per_s(*n) / max * height;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="tp" data-f="{}" data-outcome="{outcome}" fill="none" stroke="{colour}" stroke-width="1.6"{dash} points="{}"><title>{} {outcome}</title></polyline>"#,
            attr(f),
            points.join(" "),
            text(f)
        );
    }
    scale.axis(out, top + height + 4.0);
    out.push_str("</svg>");
}

/// The offending key: its operations per process, the prefix numbered, the culprit marked.
/// The model state after each operation of the linearizable prefix (by event index), for
/// the register models, whose state is the value: what hovering an operation shows, as in
/// Porcupine's visualisation. Empty for other models.
fn states_after(cex: &Counterexample, model: ModelKind) -> HashMap<u64, String> {
    if !matches!(
        model,
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv
    ) {
        return HashMap::new();
    }
    let mut state = Value::Nil;
    let mut states = HashMap::new();
    for op in &cex.prefix {
        match op.f.as_str() {
            "write" => state = op.value.clone(),
            "cas" => {
                if let Some([_, new]) = op.value.as_list() {
                    state = new.clone();
                }
            }
            "read" => {
                if let Some(seen) = &op.output {
                    state = seen.clone();
                }
            }
            _ => {}
        }
        states.insert(op.index, state.to_string());
    }
    states
}

/// A counterexample bar's text: `3. write 5 @n2`, `✗ read → 1 @n1`, `cas [1 2] @n3`.
fn cex_label(o: &ClientOp, order: Option<usize>, culprit: bool) -> String {
    let value = match &o.output {
        Some(out) if o.f == "read" => format!("→ {out}"),
        Some(out) if *out != o.value => format!("{} → {out}", o.value),
        _ => o.value.to_string(),
    };
    let node = o
        .node
        .as_ref()
        .map_or_else(String::new, |n| format!(" @{n}"));
    let head = match order {
        Some(n) => format!("{n}. "),
        None if culprit => "✗ ".to_owned(),
        None => String::new(),
    };
    format!("{head}{} {value}{node}", o.f)
}

fn counterexample_plot(out: &mut String, ops: &[ClientOp], cex: &Counterexample, model: ModelKind) {
    let states = states_after(cex, model);
    let key_ops: Vec<&ClientOp> = ops.iter().filter(|o| o.key == cex.key).collect();
    let order: HashMap<u64, usize> = cex
        .prefix
        .iter()
        .enumerate()
        .map(|(i, op)| (op.index, i + 1))
        .collect();
    // Focus on the end of the story: the last few prefix operations, the culprit, and
    // whatever ran concurrently with them.
    let culprit = key_ops.iter().find(|o| o.index == cex.operation.index);
    let mut tail: Vec<&ClientOp> = key_ops
        .iter()
        .copied()
        .filter(|o| {
            order
                .get(&o.index)
                .is_some_and(|n| n + PREFIX_DRAWN > cex.prefix.len())
        })
        .collect();
    tail.extend(culprit);
    let window_start = tail.iter().map(|o| o.start_ns).min();
    let window_end = tail.iter().map(|o| o.end_ns.unwrap_or(o.start_ns)).max();
    let shown: Vec<&ClientOp> = match (window_start, window_end) {
        (Some(from), Some(to)) => key_ops
            .iter()
            .copied()
            .filter(|o| o.start_ns <= to && !matches!(o.end_ns, Some(e) if e < from))
            .take(MAX_COUNTEREXAMPLE_OPS)
            .collect(),
        _ => key_ops
            .iter()
            .copied()
            .take(MAX_COUNTEREXAMPLE_OPS)
            .collect(),
    };
    let key = cex
        .key
        .as_ref()
        .map_or_else(|| "the register".to_owned(), |k| format!("key {k}"));
    let _ = write!(out, "<h2>Counterexample: {}</h2>", text(&key));
    let _ = write!(
        out,
        r#"<p class="note">Operations on {} per process, each bar with its function, value and node. Green, numbered: the longest linearizable prefix in linearization order. Vermillion, ✗: the operation no order can place. Grey: other operations. Hover over one to see the model state after it.{}</p>"#,
        text(&key),
        if shown.len() < key_ops.len() {
            format!(
                " Showing {} of the key's {} operations: the last {} of the prefix, the one that breaks it, and what ran concurrently.",
                shown.len(),
                key_ops.len(),
                PREFIX_DRAWN.min(cex.prefix.len())
            )
        } else {
            String::new()
        }
    );
    let (Some(start), Some(end)) = (window_start, window_end) else {
        let _ = write!(
            out,
            "<pre>{}</pre>",
            text(&CounterexampleText(cex).to_string())
        );
        return;
    };
    let pad = (end.saturating_sub(start) / 30).max(1);
    let end = end + pad;
    let scale = TimeScale {
        start: start.saturating_sub(pad),
        end,
    };
    let mut lanes: BTreeMap<u64, usize> = BTreeMap::new();
    for o in &shown {
        let n = lanes.len();
        lanes.entry(o.process).or_insert(n);
    }
    let sorted: Vec<u64> = lanes.keys().copied().collect();
    for (i, p) in sorted.iter().enumerate() {
        lanes.insert(*p, i);
    }
    let lane = 26.0;
    let top = 14.0;
    let height = lane * lanes.len() as f64;
    let _ = write!(
        out,
        r#"<svg id="counterexample" width="{SVG_WIDTH}" height="{}">"#,
        top + height + 30.0
    );
    for (p, i) in &lanes {
        let _ = write!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">process {p}</text>"#,
            PLOT_LEFT - 6.0,
            top + lane * (*i as f64 + 0.65)
        );
    }
    for o in &shown {
        let class = if o.index == cex.operation.index {
            "culprit"
        } else if order.contains_key(&o.index) {
            "prefix"
        } else {
            "other"
        };
        let x0 = scale.x(o.start_ns);
        let x1 = scale.x(o.end_ns.unwrap_or(end)).max(x0 + 2.0);
        let y0 = top + lanes[&o.process] as f64 * lane + 2.0;
        let _ = write!(
            out,
            r#"<rect class="cex {class}" data-index="{}" data-state="{}" x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{}"><title>{}{}</title></rect>"#,
            o.index,
            attr(&state_text(o, class, &states, cex)),
            x1 - x0,
            lane - 4.0,
            order
                .get(&o.index)
                .map_or_else(String::new, |n| format!("linearized {n}: ")),
            text(&op_title(o))
        );
        // The operation on its bar (clipped to it), its number above a narrow one.
        let label = cex_label(o, order.get(&o.index).copied(), class == "culprit");
        let _ = write!(
            out,
            r#"<svg x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{}"><text class="cex-label" x="3" y="{}">{}</text></svg>"#,
            x1 - x0,
            lane - 4.0,
            lane - 9.0,
            text(&label)
        );
        let numbered = class != "other";
        if numbered && x1 - x0 < 6.5 * label.chars().count() as f64 {
            if let Some(short) = label.split(' ').next().filter(|s| !s.is_empty()) {
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    (x0 + x1) / 2.0,
                    y0 - 1.0,
                    text(short.trim_end_matches('.'))
                );
            }
        }
    }
    scale.axis(out, top + height + 4.0);
    out.push_str("</svg>");
    out.push_str(r#"<p id="cex-detail" class="note">Hover over an operation to see it and the model state after it.</p>"#);
    let _ = write!(
        out,
        "<pre>{}</pre>",
        text(&CounterexampleText(cex).to_string())
    );
}

/// What hovering a counterexample operation says about the model state.
fn state_text(
    o: &ClientOp,
    class: &str,
    states: &HashMap<u64, String>,
    cex: &Counterexample,
) -> String {
    let before = if cex.states.is_empty() {
        "no state".to_owned()
    } else {
        cex.states.join(" or ")
    };
    match class {
        "culprit" => format!(
            "state after it: none — after the prefix the model can only be {before}, which this operation contradicts"
        ),
        "prefix" => match states.get(&o.index) {
            Some(state) => format!("state after it: {state}"),
            None => format!("linearized; the model's states at the end of the prefix: {before}"),
        },
        _ => "not in the longest linearizable prefix".to_owned(),
    }
}

/// For a valid history: a lane per key with its operations in linearization order, each
/// drawn at a point within its interval (the latest invocation so far in that order, which
/// a linearization keeps within every operation's interval), and the model state after it
/// on hover, as in Porcupine's visualisation.
fn linearization_lanes(
    out: &mut String,
    ops: &[ClientOp],
    linearizations: &[&(Option<Value>, Linearization)],
    scale: TimeScale,
) {
    if linearizations.is_empty() {
        return;
    }
    let by_index: HashMap<u64, &ClientOp> = ops.iter().map(|o| (o.index, o)).collect();
    out.push_str("<h2>Linearization</h2>");
    out.push_str(r#"<p class="note">Why the history is linearizable: for each key, an order of its operations that the model accepts and that respects real time, as the checker found it. Each operation is a tick at a point within its interval, in that order; green ok, amber indeterminate (it took effect). Hover over one to see it and the model state after it.</p>"#);
    let lane = 26.0;
    let top = 6.0;
    let height = lane * linearizations.len() as f64;
    let _ = write!(
        out,
        r#"<svg id="linearization" width="{SVG_WIDTH}" height="{}">"#,
        top + height + 30.0
    );
    let mut notes = Vec::new();
    for (row, (key, lin)) in linearizations.iter().enumerate() {
        let key_text = key
            .as_ref()
            .map_or_else(|| "the register".to_owned(), |k| format!("key {k}"));
        let y0 = top + row as f64 * lane;
        let _ = write!(
            out,
            r#"<g class="linearization" data-key="{}" data-ops="{}"><text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            attr(&key.as_ref().map_or_else(String::new, Value::to_string)),
            lin.ops.len(),
            PLOT_LEFT - 6.0,
            y0 + lane * 0.65,
            text(&key_text)
        );
        let mut point = 0u64;
        for (n, step) in lin.ops.iter().enumerate() {
            let Some(o) = by_index.get(&step.op.index) else {
                continue;
            };
            point = point.max(o.start_ns);
            let x = scale.x(point);
            let class = if step.op.outcome == "ok" {
                "lin"
            } else {
                "lin indeterminate"
            };
            let _ = write!(
                out,
                r#"<rect class="{class}" data-order="{}" data-state="{}" x="{:.1}" y="{:.1}" width="3" height="{}"><title>linearized {} of {}: {}</title></rect>"#,
                n + 1,
                attr(&format!("state after it: {}", step.state)),
                x - 1.5,
                y0 + 2.0,
                lane - 4.0,
                n + 1,
                lin.ops.len(),
                text(&op_title(o))
            );
        }
        out.push_str("</g>");
        notes.push(format!(
            "{key_text}: {} operations linearized, {} indeterminate left out (never took effect)",
            lin.ops.len(),
            lin.left_out.len()
        ));
    }
    scale.axis(out, top + height + 4.0);
    out.push_str("</svg>");
    out.push_str(r#"<p id="lin-detail" class="note">Hover over an operation of the linearization to see it and the model state after it.</p>"#);
    let _ = write!(out, r#"<p class="note">{}.</p>"#, text(&notes.join("; ")));
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Renders the whole page.
pub fn render(facts: &RunFacts, history: &History, checked: &Checked) -> String {
    let campaign = facts.campaign;
    let analysis = &checked.analysis;
    let ops = crate::analysis::client_ops(history);
    let scale = TimeScale {
        start: 0,
        end: analysis.end_ns.max(1),
    };
    let mut out = String::with_capacity(1 << 20);
    let title = format!("{} on {}", campaign.name, campaign.system.name());
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>splitbrain: {}</title><style>{STYLE}</style><script>{ERROR_HOOK}</script></head><body>"#,
        text(&title)
    );
    let verdict = checked.verdict.as_str();
    let _ = write!(
        out,
        r#"<h1>{}</h1><p><span id="verdict" class="verdict {verdict}">{}</span> &nbsp;seed {} · run {} · {} nodes · main phase {:.1}s{}</p>"#,
        text(&title),
        verdict.to_uppercase(),
        facts.seed,
        text(facts.run_id),
        facts.nodes.len(),
        facts.main_elapsed.as_secs_f64(),
        if facts.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    out.push_str(r#"<pre id="script-errors" hidden></pre><p id="drawn-counts" class="note"></p>"#);
    let _ = write!(
        out,
        r#"<svg width="0" height="0" style="position:absolute" aria-hidden="true">{FAULT_HATCH}</svg>"#
    );

    out.push_str(
        "<h2>Checkers</h2><table><tr><th>checker</th><th>verdict</th><th>detail</th></tr>",
    );
    for o in &checked.results.checkers {
        let _ = write!(
            out,
            r#"<tr class="checker"><td>{}</td><td><span class="verdict {v}">{v}</span></td><td>{}</td></tr>"#,
            text(&o.checker),
            text(&o.detail),
            v = o.verdict.as_str()
        );
    }
    out.push_str("</table>");
    transactional_anomalies(&mut out, checked);

    let s = &analysis.ops;
    out.push_str("<h2>Operations</h2><table><tr><th>function</th><th>ok</th><th>fail</th><th>info</th><th>pending</th></tr>");
    for (f, [ok, fail, info, pending]) in &s.by_function {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{ok}</td><td>{fail}</td><td>{info}</td><td>{pending}</td></tr>",
            text(f)
        );
    }
    out.push_str("</table><table><tr><th></th><th>operations</th><th>availability (ok)</th><th>p50</th><th>p99</th></tr>");
    let _ = write!(
        out,
        "<tr><td>overall</td><td>{}</td><td>{}</td><td>{:.1} ms</td><td>{:.1} ms</td></tr>",
        s.operations(),
        pct(s.availability),
        s.latency_ms.p50,
        s.latency_ms.p99
    );
    let mut phases = vec![
        ("during faults".to_owned(), &analysis.during_faults),
        ("while healthy".to_owned(), &analysis.healthy),
    ];
    phases.extend(
        analysis
            .by_fault
            .iter()
            .map(|(k, p)| (format!("during {k}"), p)),
    );
    if !analysis.faults.is_empty() {
        for (name, p) in phases {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1} ms</td><td>{:.1} ms</td></tr>",
                text(&name),
                p.operations,
                pct(p.availability),
                p.p50_ms,
                p.p99_ms
            );
        }
    }
    let crate::analysis::Latency { p50, p95, p99, max } = s.latency_ms;
    let _ = write!(
        out,
        "</table><p>Latency: p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms, max {max:.1} ms.</p>"
    );

    out.push_str("<h2>Faults</h2>");
    if analysis.faults.is_empty() {
        out.push_str("<p>No faults were injected.</p>");
    } else {
        let not_in_effect = analysis
            .faults
            .iter()
            .filter(|w| w.effective == Some(false))
            .count();
        if not_in_effect > 0 {
            let _ = write!(
                out,
                r#"<p id="faults-not-in-effect" class="not-in-effect">{not_in_effect} of {} faults did not take effect{}.</p>"#,
                analysis.faults.len(),
                if campaign.nemesis.require_effect {
                    ": the run cannot say the system withstood them (verdict at best unknown)"
                } else {
                    " (not counted: nemesis.require_effect is false)"
                }
            );
        }
        out.push_str("<table><tr><th>fault</th><th>window</th><th>what</th><th>in effect</th><th>evidence it took effect</th></tr>");
        for w in &analysis.faults {
            let evidence: Vec<String> = w.evidence.iter().map(|e| text(e).into_owned()).collect();
            let (class, effect) = match w.effective {
                Some(true) => ("fault in-effect", "yes"),
                Some(false) => ("fault not-in-effect", "NO"),
                None => ("fault unverified", "not verifiable"),
            };
            let _ = write!(
                out,
                r#"<tr class="{class}"><td>{}{}</td><td>{:.2}s – {}</td><td>{}</td><td>{effect}</td><td>{}{}</td></tr>"#,
                text(&w.kind),
                w.id.map_or_else(String::new, |i| format!(" #{i}")),
                w.start_ns as f64 / 1e9,
                w.end_ns
                    .map_or_else(|| "end".to_owned(), |e| format!("{:.2}s", e as f64 / 1e9)),
                text(&w.description),
                if evidence.is_empty() {
                    "none recorded".to_owned()
                } else {
                    evidence.join("<br>")
                },
                w.error
                    .as_ref()
                    .map_or_else(String::new, |e| format!("<br><b>error:</b> {}", text(e)))
            );
        }
        out.push_str("</table>");
    }

    if checked.verdict == Verdict::Invalid {
        for o in &checked.results.checkers {
            if let Some(cex) = &o.counterexample {
                counterexample_plot(&mut out, &ops, cex, campaign.model());
            }
        }
    }
    timeline(
        &mut out,
        &ops,
        &analysis.faults,
        scale,
        campaign.workload.concurrency,
    );
    out.push_str(r#"<p id="op-detail" class="note">Hover over (or click) an operation or a fault to see its details here.</p>"#);
    // Present only when the linearizability check found the history valid (the run's
    // verdict may still be unknown for another reason, such as a fault not shown in effect).
    let linearizations: Vec<_> = checked
        .results
        .checkers
        .iter()
        .flat_map(|o| &o.linearizations)
        .collect();
    linearization_lanes(&mut out, &ops, &linearizations, scale);
    lanes(&mut out, &facts.nodes, &analysis.faults, scale);
    latency_plot(&mut out, &ops, &analysis.faults, scale);
    throughput_plot(&mut out, &ops, &analysis.faults, scale);
    let _ = writeln!(
        out,
        "<h2>Summary table</h2><pre class=\"table\">{}</pre><script>{PAGE_SCRIPT}</script></body></html>",
        text(&checked.table)
    );
    out
}

/// Most anomalies drawn per checker: the rest are counted in its detail and listed in
/// `results.json`.
const MAX_DRAWN_ANOMALIES: usize = 8;

/// Each anomaly a transactional check found: its name, its explanation, and its cycle as a
/// small graph.
fn transactional_anomalies(out: &mut String, checked: &Checked) {
    for o in checked
        .results
        .checkers
        .iter()
        .filter(|o| !o.anomalies.is_empty())
    {
        let _ = write!(
            out,
            r#"<h2>Anomalies: {}</h2><p class="note">{} found; each cycle's transactions in order, each arrow with why one must come before the next.</p>"#,
            text(&o.checker),
            o.anomalies.len()
        );
        for anomaly in o.anomalies.iter().take(MAX_DRAWN_ANOMALIES) {
            let _ = write!(
                out,
                r#"<div class="anomaly"><h3>{}</h3><pre>{}</pre>"#,
                text(&anomaly.kind.to_string()),
                text(&anomaly.explanation)
            );
            if let Some(svg) = super::cycle_graph::cycle_svg(anomaly) {
                out.push_str(&svg);
            }
            out.push_str("</div>");
        }
    }
}
