//! How `augur simulate` shows its results: JSON lines, a table, and one self-contained HTML
//! page (inline SVG, nothing fetched) with a Gantt chart per run, predicted against actual
//! utilisation of a few devices, and the comparison table.

use std::fmt::Write as _;
use std::io::Write;

use super::outcome::{Outcome, Summary};
use crate::plot::{escape, Chart};

/// One JSON line.
pub fn json_line(summary: &Summary) -> String {
    serde_json::to_string(summary).unwrap_or_else(|_| "{}".to_string())
}

/// The readable table's header.
pub fn table_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<44} {:<10} {:>12} {:>10} {:>9} {:>14} {:>10} {:>12} {:>9}",
        "workflow",
        "policy",
        "makespan_s",
        "wait_s",
        "p95_slow",
        "bytes_moved",
        "cost",
        "energy_j",
        "fc_mae"
    )
}

/// One row of the readable table.
pub fn table_row(out: &mut impl Write, s: &Summary) -> std::io::Result<()> {
    let mae = s
        .forecast_mae
        .map_or("-".to_string(), |m| format!("{m:.4}"));
    writeln!(
        out,
        "{:<44} {:<10} {:>12.2} {:>10.2} {:>9.3} {:>14} {:>10.4} {:>12.0} {:>9}",
        s.workflow,
        s.policy,
        s.makespan_s,
        s.mean_task_wait_s,
        s.p95_task_slowdown,
        s.bytes_moved,
        s.cost,
        s.energy_j,
        mae
    )
}

/// A colour per device, stable across charts.
fn colour(device: usize) -> String {
    let hue = (device * 137) % 360;
    format!("hsl({hue},55%,55%)")
}

fn gantt(outcome: &Outcome) -> String {
    let width = 900.0;
    let row = 14.0;
    let left = 90.0;
    let used: Vec<usize> = (0..outcome.devices.len())
        .filter(|d| outcome.records.iter().any(|r| r.device == *d))
        .collect();
    let height = row * used.len() as f64 + 24.0;
    let span = outcome.summary.makespan_s.max(1e-9);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-size="10">"#,
        width + left + 10.0
    );
    for (i, &device) in used.iter().enumerate() {
        let y = i as f64 * row;
        let _ = write!(
            svg,
            r#"<text x="2" y="{}">{}</text>"#,
            y + row - 3.0,
            escape(&outcome.devices[device])
        );
        // Tasks that share a device draw in lanes by start order, so co-located ones show.
        let mut lanes: Vec<f64> = Vec::new();
        let mut tasks: Vec<_> = outcome
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.device == device)
            .collect();
        tasks.sort_by(|a, b| a.1.start.total_cmp(&b.1.start));
        for (task, r) in tasks {
            let lane = lanes
                .iter()
                .position(|&end| end <= r.start + 1e-9)
                .unwrap_or(lanes.len());
            if lane == lanes.len() {
                lanes.push(r.end);
            } else {
                lanes[lane] = r.end;
            }
            let lane_h = (row - 2.0) / (lane as f64 + 1.0).max(1.0);
            let x = left + r.start / span * width;
            let w = ((r.end - r.start) / span * width).max(0.5);
            let _ = write!(
                svg,
                r#"<rect x="{x:.2}" y="{:.2}" width="{w:.2}" height="{:.2}" fill="{}" stroke="white" stroke-width="0.3"><title>task {task}: {:.2}-{:.2} s</title></rect>"#,
                y + 1.0 + lane as f64 * 0.0,
                lane_h.max(2.0),
                colour(device),
                r.start,
                r.end
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{left}" y="{}">0 s</text><text x="{}" y="{}" text-anchor="end">{:.1} s</text></svg>"#,
        height - 4.0,
        left + width,
        height - 4.0,
        span
    );
    svg
}

fn utilisation_chart(outcome: &Outcome) -> String {
    let mut html = String::new();
    for view in &outcome.utilisation {
        let span = view.points.last().map_or(1.0, |p| p.0);
        let top = view
            .points
            .iter()
            .flat_map(|p| [p.1, p.2.unwrap_or(0.0)])
            .fold(0.05, f64::max);
        let mut chart = Chart::new(420.0, 120.0, (0.0, span), (0.0, top));
        chart.line(view.points.iter().map(|p| (p.0, p.1)), "black");
        chart.line(
            view.points.iter().filter_map(|p| p.2.map(|v| (p.0, v))),
            "crimson",
        );
        let _ = write!(
            html,
            "<figure>{}<figcaption>{}: actual background (black) and forecast (red); top = {:.0}%</figcaption></figure>",
            chart.finish(),
            escape(&view.device),
            top * 100.0
        );
    }
    html
}

/// The whole page.
pub fn html(outcomes: &[Outcome]) -> String {
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>augur simulate</title><style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,td:nth-child(2){text-align:left}figure{display:inline-block;margin:4px}</style></head><body><h1>augur simulate</h1><h2>Comparison</h2><table><tr><th>workflow</th><th>policy</th><th>makespan s</th><th>mean wait s</th><th>p95 slowdown</th><th>bytes moved</th><th>cost</th><th>energy J</th><th>forecast MAE</th></tr>",
    );
    for o in outcomes {
        let s = &o.summary;
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.3}</td><td>{}</td><td>{:.4}</td><td>{:.0}</td><td>{}</td></tr>",
            escape(&s.workflow),
            escape(&s.policy),
            s.makespan_s,
            s.mean_task_wait_s,
            s.p95_task_slowdown,
            s.bytes_moved,
            s.cost,
            s.energy_j,
            s.forecast_mae.map_or("-".to_string(), |m| format!("{m:.4}"))
        );
    }
    page.push_str("</table>");
    for o in outcomes {
        let _ = write!(
            page,
            "<h2>{} — {}</h2><p>makespan {:.2} s{}; map moves {}</p>{}",
            escape(&o.summary.workflow),
            escape(&o.summary.policy),
            o.summary.makespan_s,
            o.planned_makespan
                .map_or(String::new(), |m| format!(" (static HEFT plan: {m:.2} s)")),
            o.map_moves,
            gantt(o)
        );
        if !o.utilisation.is_empty() {
            page.push_str("<div>");
            page.push_str(&utilisation_chart(o));
            page.push_str("</div>");
        }
    }
    page.push_str("</body></html>\n");
    page
}
