//! A two-panel SVG of a simulated event: the line over time, and the load it puts on the
//! services next to the first limits. Plain SVG text, no plotting library.

use std::fmt::Write;

use crate::model::{Outcome, Second};

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 260.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 50.0;
const GAP: f64 = 70.0;

struct Series<'a> {
    label: &'a str,
    color: &'a str,
    dashed: bool,
    value: Box<dyn Fn(&Second) -> f64 + 'a>,
}

pub fn svg(outcome: &Outcome, title: &str) -> String {
    let seconds = &outcome.seconds;
    let mut out = String::new();
    let height = TOP + 2.0 * PANEL_HEIGHT + GAP + 50.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    panel(
        &mut out,
        seconds,
        TOP,
        "visitors",
        &[
            Series {
                label: "waiting (with a place)",
                color: "#1f77b4",
                dashed: false,
                value: Box::new(|s| s.waiting),
            },
            Series {
                label: "in SQS (no place yet)",
                color: "#ff7f0e",
                dashed: false,
                value: Box::new(|s| s.backlog),
            },
            Series {
                label: "let in (total)",
                color: "#2ca02c",
                dashed: false,
                value: Box::new(|s| s.admitted),
            },
        ],
    );
    let item_rcu_limit = 3_000.0;
    let item_wcu_limit = 1_000.0;
    panel(
        &mut out,
        seconds,
        TOP + PANEL_HEIGHT + GAP,
        "per second",
        &[
            Series {
                label: "API requests/s",
                color: "#9467bd",
                dashed: false,
                value: Box::new(|s| s.api_requests),
            },
            Series {
                label: "busiest item RCU/s",
                color: "#d62728",
                dashed: false,
                value: Box::new(|s| s.busiest_item_rcu),
            },
            Series {
                label: "busiest item WCU/s",
                color: "#8c564b",
                dashed: false,
                value: Box::new(|s| s.busiest_item_wcu),
            },
            Series {
                label: "limit 3,000 RCU/s",
                color: "#d62728",
                dashed: true,
                value: Box::new(move |_| item_rcu_limit),
            },
            Series {
                label: "limit 1,000 WCU/s",
                color: "#8c564b",
                dashed: true,
                value: Box::new(move |_| item_wcu_limit),
            },
        ],
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">minutes since the line opened</text>"#,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        height - 12.0
    );
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, seconds: &[Second], top: f64, unit: &str, series: &[Series<'_>]) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = PANEL_HEIGHT;
    let t_max = seconds.last().map_or(1.0, |s| s.t.max(1) as f64);
    let y_max = nice(
        series
            .iter()
            .flat_map(|line| seconds.iter().map(|s| (line.value)(s)))
            .fold(1.0, f64::max),
    );
    let x = |t: f64| LEFT + t / t_max * plot_w;
    let y = |v: f64| top + plot_h - v / y_max * plot_h;
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>"##
    );
    for i in 0..=4 {
        let v = y_max * i as f64 / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y(v) + 4.0,
            short(v),
            y = y(v)
        );
    }
    for i in 0..=5 {
        let t = t_max * i as f64 / 5.0;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.0}</text>"#,
            x(t),
            top + plot_h + 16.0,
            t / 60.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">{unit}</text>"#,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    );
    let step = (seconds.len() / 600).max(1);
    for (i, line) in series.iter().enumerate() {
        let points: Vec<String> = seconds
            .iter()
            .step_by(step)
            .chain(seconds.last())
            .map(|s| format!("{:.1},{:.1}", x(s.t as f64), y((line.value)(s))))
            .collect();
        let dash = if line.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
            line.color,
            points.join(" ")
        );
        let ly = top + 14.0 + i as f64 * 18.0;
        let lx = LEFT + plot_w + 12.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 20.0,
            line.color,
            lx + 26.0,
            ly + 4.0,
            escape(line.label)
        );
    }
}

/// The next round number above `v`, so the axis reads well.
fn nice(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * magnitude >= v {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
