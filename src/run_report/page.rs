//! `run --report`'s page, `DIR/report.html` (and the demo's): what the run read and did, then
//! per device its utilisation as sampled, the forecast with its error band, the alarms, and the
//! tasks the map put there over event time. One self-contained file (inline SVG).

use std::fmt::Write as _;

use augur_dataflows::anomaly::THRESHOLD;
use augur_dataflows::types::{DeviceId, Resource, Time};

use crate::catalog::Catalog;
use crate::input::time::{format_seconds, format_utc};
use crate::output::Summary;
use crate::plot::{escape, short_number, Chart};

use super::history::{RunHistory, SeriesTraces, MAX_DEVICES};
use super::trace::{Band, Trace};

const WIDTH: f64 = 900.0;
const UTILISATION_HEIGHT: f64 = 110.0;
const TASKS_HEIGHT: f64 = 36.0;
const ALARM: &str = "crimson";

/// Per resource: the forecast's colour, the samples' (lighter) and the band's fill.
fn colours(resource: Resource) -> (&'static str, &'static str, &'static str) {
    match resource {
        Resource::Cpu => ("#1f5f99", "#8db3d9", "rgba(31,95,153,0.15)"),
        Resource::Memory => ("#c05a00", "#f0b27a", "rgba(192,90,0,0.15)"),
        Resource::Disk => ("#237a3b", "#8fcf9f", "rgba(35,122,59,0.15)"),
        Resource::Network => ("#6b2d8f", "#c39bd3", "rgba(107,45,143,0.15)"),
    }
}

/// Event times for captions: dates when the run's times look like dates (its first after
/// 1973, so its last too), else seconds, one form for the whole page.
struct Stamps {
    dates: bool,
}

impl Stamps {
    fn of(span: Option<(Time, Time)>) -> Stamps {
        const DATES_FROM: Time = 100_000_000_000;
        Stamps {
            dates: span.is_some_and(|(first, _)| first >= DATES_FROM),
        }
    }

    fn stamp(&self, time: Time) -> String {
        if self.dates {
            format!("{} UTC", format_utc(time))
        } else {
            format!("{} s", format_seconds(time))
        }
    }
}

/// The points of `trace`, held at their last value to `end` (a forecast is published when it
/// changes, so a quiet stretch at the end has no points of its own).
fn held(trace: &Trace, end: Time) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = trace
        .points()
        .into_iter()
        .map(|(t, v)| (t as f64, v))
        .collect();
    if let Some(&(t, v)) = points.last() {
        if t < end as f64 {
            points.push((end as f64, v));
        }
    }
    points
}

/// The least of 1, 2 or 5 times a power of ten at or above `value` (at least 0.01): a y
/// axis top that fits a device idling at 2% as well as one over-committed at 130%.
fn nice_ceiling(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.01 {
        return 0.01;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|&top| top >= value)
        .unwrap_or(10.0 * power)
}

/// The band's points, per bucket from its first to its last time, held to `end` as [`held`]
/// holds a line.
fn band_points(band: &Band, end: Time) -> Vec<(f64, f64, f64)> {
    let mut points = Vec::new();
    for (from, to, low, high) in band.extents() {
        points.push((from as f64, low, high));
        if to > from {
            points.push((to as f64, low, high));
        }
    }
    if let (Some(&(t, _, _)), Some((low, high))) = (points.last(), band.last()) {
        if t < end as f64 {
            points.push((end as f64, low, high));
        }
    }
    points
}

/// The page for a run that wrote `summary` over `catalog`'s devices, from `history`.
pub fn html(out: &str, summary: &Summary, catalog: &Catalog, history: &RunHistory) -> String {
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>augur run</title><style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}figure{margin:4px 0 16px 0}h3{margin:16px 0 2px 0;font-size:1em}p{margin:2px 0}.key span{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px}</style></head><body>",
    );
    let _ = write!(page, "<h1>augur run: {}</h1>", escape(out));
    let span = history.span;
    let stamps = Stamps::of(span);
    let when = span.map_or("no event time".to_string(), |(from, to)| {
        format!("event time {} to {}", stamps.stamp(from), stamps.stamp(to))
    });
    let _ = write!(
        page,
        "<p>{} epochs, {when}; policy {}; {} workers × {} processes.</p>\
         <p>{} tasks placed, {} moves as the inputs changed, {} tasks live at the end; \
         {} warm-up actions, {} re-sculpting decisions.</p>",
        summary.epochs,
        escape(&summary.policy),
        summary.workers,
        summary.processes,
        summary.tasks_placed,
        summary.tasks_moved,
        summary.tasks_in_final_map,
        summary.prewarm_actions,
        summary.resculpted,
    );
    if history.resumed {
        page.push_str(
            "<p>This run resumed from a checkpoint: the charts start there, the counts above \
             cover the whole run.</p>",
        );
    }
    page.push_str(
        "<table><tr><th>input</th><th>read</th><th>accepted</th><th>rejected</th><th>dropped fields</th></tr>",
    );
    for (path, counts) in &summary.inputs {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(path),
            counts.read,
            counts.accepted,
            counts.rejected,
            counts.dropped_fields
        );
    }
    page.push_str("</table>");
    if summary.rejected_lines > 0 {
        let _ = write!(
            page,
            "<p>{} lines in rejected.jsonl, each with file, line and reason.</p>",
            summary.rejected_lines
        );
    }
    let Some((first, last)) = span else {
        page.push_str("<p>Nothing happened in event time: no charts.</p></body></html>\n");
        return page;
    };
    let x = (first as f64, last as f64);
    if !history.moves.is_empty() {
        let moves = held(&history.moves, last);
        let top = history.moves.highest().unwrap_or(1.0).max(1.0);
        let mut chart = Chart::new(WIDTH, TASKS_HEIGHT, x, (0.0, top));
        chart.line(moves, "black");
        let _ = write!(
            page,
            "<h3>Moves per epoch</h3><figure>{}</figure>",
            chart.finish()
        );
    }
    let mut key =
        String::from("<p class=\"key\">Per device, utilisation as a fraction of capacity:");
    for resource in Resource::ALL {
        let (forecast, sample, band) = colours(resource);
        let _ = write!(
            key,
            "<span style=\"background:{sample};height:3px\"></span>{r} sampled,\
             <span style=\"background:{forecast};height:3px\"></span>{r} forecast (mean over the horizon)\
             <span style=\"background:{band}\"></span>± one sigma of its error;",
            r = resource.name()
        );
    }
    let _ = write!(
        key,
        "<span style=\"background:{ALARM};height:3px\"></span>anomaly alarms ticked along the top; \
         beneath, the tasks the map puts there.</p>"
    );
    page.push_str(&key);
    let devices = &catalog.platform.devices;
    if devices.len() > MAX_DEVICES {
        let _ = write!(
            page,
            "<p>Charts for the first {MAX_DEVICES} of {} devices (platform order).</p>",
            devices.len()
        );
    }
    for (index, device) in devices.iter().enumerate().take(MAX_DEVICES) {
        let id = index as DeviceId;
        figure(&mut page, history, id, device, x, last);
    }
    page.push_str("</body></html>\n");
    page
}

/// One device's heading, charts and caption.
fn figure(
    page: &mut String,
    history: &RunHistory,
    id: DeviceId,
    device: &crate::input::Device,
    x: (f64, f64),
    last: Time,
) {
    let series: Vec<(Resource, &SeriesTraces)> = Resource::ALL
        .iter()
        .filter_map(|&r| history.series.get(&(id, r)).map(|traces| (r, traces)))
        .collect();
    let tasks = history.tasks.get(&id);
    let mut facts = vec![format!(
        "{} cores, speed {}",
        short_number(device.cores),
        short_number(device.speed)
    )];
    for (resource, traces) in &series {
        let percent = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
        facts.push(format!(
            "{} {} now, {} forecast",
            resource.name(),
            percent(traces.latest.last()),
            percent(traces.predicted.last())
        ));
    }
    facts.push(format!(
        "{} tasks mapped at the end",
        tasks.map_or(0, |(count, _)| *count)
    ));
    let _ = write!(
        page,
        "<h3>{}</h3><p>{}</p>",
        escape(&device.id),
        escape(&facts.join("; "))
    );
    if series.is_empty() && tasks.is_none() {
        page.push_str("<p>no samples, no tasks</p>");
        return;
    }
    let mut figure = String::from("<figure>");
    if !series.is_empty() {
        let top = series
            .iter()
            .filter_map(|(_, t)| {
                [t.latest.highest(), t.band.highest()]
                    .into_iter()
                    .flatten()
                    .reduce(f64::max)
            })
            .fold(0.0_f64, f64::max);
        let mut chart = Chart::new(WIDTH, UTILISATION_HEIGHT, x, (0.0, nice_ceiling(top)));
        for (resource, traces) in &series {
            let (_, _, band) = colours(*resource);
            chart.area(band_points(&traces.band, last), band);
        }
        for (resource, traces) in &series {
            let (forecast, sample, _) = colours(*resource);
            chart.line(held(&traces.latest, last), sample);
            chart.line(held(&traces.predicted, last), forecast);
        }
        let alarms = series.iter().flat_map(|(_, traces)| {
            traces
                .anomaly
                .highs()
                .filter(|&(_, score)| score >= THRESHOLD)
                .map(|(t, _)| t as f64)
        });
        let mut alarms: Vec<f64> = alarms.collect();
        alarms.sort_by(f64::total_cmp);
        chart.marks(alarms, ALARM);
        figure.push_str(&chart.finish());
    }
    if let Some((_, trace)) = tasks {
        let top = trace.highest().unwrap_or(1.0).max(1.0);
        let mut chart = Chart::new(WIDTH, TASKS_HEIGHT, x, (0.0, top));
        chart.line(held(trace, last), "black");
        if !series.is_empty() {
            figure.push_str("<br>");
        }
        figure.push_str(&chart.finish());
    }
    figure.push_str("</figure>");
    page.push_str(&figure);
}
