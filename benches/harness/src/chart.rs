//! chart.svg, drawn by hand: tps against clients and p99 latency against
//! clients for one workload, one line per target, log-scale x axis.

use std::fmt::Write as _;

use crate::report::Cell;
use crate::targets::{Kind, KINDS};
use crate::workload::Workload;

const PANEL_W: f64 = 440.0;
const PANEL_H: f64 = 300.0;
const MARGIN_L: f64 = 70.0;
const MARGIN_T: f64 = 60.0;
const MARGIN_B: f64 = 50.0;
const GAP: f64 = 90.0;

fn color(kind: Kind) -> &'static str {
    match kind {
        Kind::Direct => "#7f7f7f",
        Kind::PgBouncer => "#d62728",
        Kind::Sluice => "#1f77b4",
    }
}

/// A "nice" upper bound and tick step for 0..=max (1, 2 or 5 × 10^k steps).
pub fn nice_axis(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 {
        return (1.0, 0.2);
    }
    let rough = max / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

fn label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{}k", v / 1000.0)
    } else if v >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

struct Panel<'a> {
    x0: f64,
    title: &'a str,
    y_label: &'a str,
    value: fn(&Cell) -> Option<f64>,
}

/// The SVG for `workload` (cells of other workloads are ignored).
pub fn svg(workload: Workload, cells: &[Cell]) -> String {
    let cells: Vec<&Cell> = cells.iter().filter(|c| c.workload == workload).collect();
    let mut clients: Vec<u32> = cells.iter().map(|c| c.clients).collect();
    clients.sort_unstable();
    clients.dedup();
    let width = MARGIN_L + 2.0 * PANEL_W + GAP + 30.0;
    let height = MARGIN_T + PANEL_H + MARGIN_B + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\">{} — median of rounds</text>",
        width / 2.0,
        workload.name()
    );
    legend(&mut out, &cells, width);
    let panels = [
        Panel {
            x0: MARGIN_L,
            title: "throughput",
            y_label: "tps",
            // A run that failed outright has no throughput to draw.
            value: |c| (c.error.is_none() || c.tps > 0.0).then_some(c.tps),
        },
        Panel {
            x0: MARGIN_L + PANEL_W + GAP,
            title: "p99 latency",
            y_label: "p99 ms",
            value: |c| c.p99_ms,
        },
    ];
    for panel in &panels {
        draw_panel(&mut out, panel, &cells, &clients);
    }
    out.push_str("</svg>\n");
    out
}

fn legend(out: &mut String, cells: &[&Cell], width: f64) {
    let present: Vec<Kind> = KINDS
        .into_iter()
        .filter(|k| cells.iter().any(|c| c.target == *k))
        .collect();
    let mut x = width / 2.0 - 55.0 * present.len() as f64;
    for kind in present {
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"38\" x2=\"{}\" y2=\"38\" stroke=\"{}\" stroke-width=\"2.5\"/>\
             <text x=\"{}\" y=\"42\">{}</text>",
            x + 22.0,
            color(kind),
            x + 27.0,
            kind.name()
        );
        x += 110.0;
    }
}

fn draw_panel(out: &mut String, p: &Panel, cells: &[&Cell], clients: &[u32]) {
    let (top, bottom) = (MARGIN_T, MARGIN_T + PANEL_H);
    let (left, right) = (p.x0, p.x0 + PANEL_W);
    let max = cells
        .iter()
        .filter_map(|c| (p.value)(c))
        .fold(0.0, f64::max);
    let (y_max, step) = nice_axis(max);
    // Log-scale x over the client counts present (one point: centred).
    let (lo, hi) = match (clients.first(), clients.last()) {
        (Some(&a), Some(&b)) if b > a => ((a as f64).ln(), (b as f64).ln()),
        _ => (0.0, 0.0),
    };
    let pad = 20.0;
    let x_of = |n: u32| {
        if hi > lo {
            left + pad + ((n as f64).ln() - lo) / (hi - lo) * (PANEL_W - 2.0 * pad)
        } else {
            left + PANEL_W / 2.0
        }
    };
    let y_of = |v: f64| bottom - v / y_max * PANEL_H;
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">{}</text>\n\
         <rect x=\"{left}\" y=\"{top}\" width=\"{PANEL_W}\" height=\"{PANEL_H}\" fill=\"none\" stroke=\"#333\"/>",
        left + PANEL_W / 2.0,
        top - 6.0,
        p.title
    );
    let mut v = 0.0;
    while v <= y_max + step / 2.0 {
        let y = y_of(v);
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 4.0,
            label(v)
        );
        v += step;
    }
    for &n in clients {
        let x = x_of(n);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#eee\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{n}</text>",
            bottom + 16.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">clients (log scale)</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 {} {})\">{}</text>",
        left + PANEL_W / 2.0,
        bottom + 36.0,
        left - 52.0,
        top + PANEL_H / 2.0,
        left - 52.0,
        top + PANEL_H / 2.0,
        p.y_label
    );
    for kind in KINDS {
        let points: Vec<(f64, f64)> = cells
            .iter()
            .filter(|c| c.target == kind)
            .filter_map(|c| Some((x_of(c.clients), y_of((p.value)(c)?))))
            .collect();
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2.5\" points=\"{}\"/>",
            color(kind),
            path.join(" ")
        );
        for (x, y) in points {
            let _ = writeln!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{}\"/>",
                color(kind)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axes() {
        assert_eq!(nice_axis(19_000.0), (20_000.0, 5000.0));
        assert_eq!(nice_axis(0.9), (1.0, 0.2));
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
        assert_eq!(nice_axis(42.0), (50.0, 10.0));
    }

    #[test]
    fn svg_has_a_line_per_target_and_a_legend() {
        let cell = |target, clients, tps| Cell {
            workload: Workload::SelectSimple,
            clients,
            target,
            tps,
            p50_ms: Some(0.4),
            p99_ms: Some(2.0),
            failed: 0,
            cpu_ms_per_1k_tx: None,
            peak_rss_kib: None,
            max_server_conns: None,
            error: None,
        };
        let cells = vec![
            cell(Kind::Direct, 10, 19_000.0),
            cell(Kind::PgBouncer, 10, 14_000.0),
            cell(Kind::PgBouncer, 1000, 8_000.0),
            cell(Kind::Sluice, 10, 16_000.0),
            cell(Kind::Sluice, 1000, 10_000.0),
        ];
        let svg = svg(Workload::SelectSimple, &cells);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 6);
        for name in [
            "direct",
            "pgbouncer",
            "sluice",
            "clients (log scale)",
            "p99 ms",
        ] {
            assert!(svg.contains(name), "{name}");
        }
    }
}
