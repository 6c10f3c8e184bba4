//! `GET /metrics`: augur's own counters in the Prometheus text exposition format (0.0.4).

use std::fmt::Write;

use super::state::{Counters, View, KINDS, LATENCY_BUCKETS_S};

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders the counters and the view's gauges.
pub fn render(counters: &Counters, view: &View) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "augur_records_accepted_total",
        "counter",
        "Records accepted, by kind (workflows, metric samples, task events).",
    );
    for kind in KINDS {
        let value = counters.accepted.get(kind).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "augur_records_accepted_total{{kind=\"{kind}\"}} {value}"
        );
    }
    family(
        &mut out,
        "augur_records_rejected_total",
        "counter",
        "Records rejected, by kind.",
    );
    for kind in KINDS {
        let value = counters.rejected.get(kind).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "augur_records_rejected_total{{kind=\"{kind}\"}} {value}"
        );
    }
    family(
        &mut out,
        "augur_records_refused_when_applied_total",
        "counter",
        "Records accepted, then refused when applied (impossible task-event transitions), by kind.",
    );
    for kind in KINDS {
        let value = counters
            .refused_when_applied
            .get(kind)
            .copied()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "augur_records_refused_when_applied_total{{kind=\"{kind}\"}} {value}"
        );
    }
    family(
        &mut out,
        "augur_http_requests_total",
        "counter",
        "HTTP requests answered, by status code.",
    );
    for (status, value) in &counters.requests {
        let _ = writeln!(
            out,
            "augur_http_requests_total{{code=\"{status}\"}} {value}"
        );
    }
    family(
        &mut out,
        "augur_epochs_total",
        "counter",
        "Epochs (distinct event times) applied.",
    );
    let _ = writeln!(out, "augur_epochs_total {}", view.epochs);
    family(
        &mut out,
        "augur_tasks_placed_total",
        "counter",
        "First placements of tasks.",
    );
    let _ = writeln!(out, "augur_tasks_placed_total {}", view.placed);
    family(
        &mut out,
        "augur_tasks_moved_total",
        "counter",
        "Tasks moved between devices.",
    );
    let _ = writeln!(out, "augur_tasks_moved_total {}", view.moved);
    family(
        &mut out,
        "augur_tasks_mapped",
        "gauge",
        "Tasks in the partition map now.",
    );
    let _ = writeln!(out, "augur_tasks_mapped {}", view.map.len());
    family(
        &mut out,
        "augur_buffered_records",
        "gauge",
        "Records waiting in the reorder buffer for their epoch.",
    );
    let _ = writeln!(out, "augur_buffered_records {}", view.buffered);
    family(
        &mut out,
        "augur_event_time_seconds",
        "gauge",
        "Event time of the last applied epoch (absent before the first).",
    );
    if let Some(time) = view.reached {
        let _ = writeln!(out, "augur_event_time_seconds {}", time as f64 / 1000.0);
    }
    family(
        &mut out,
        "augur_update_latency_seconds",
        "histogram",
        "Time from feeding an epoch to the engine to its map being complete.",
    );
    let mut cumulative = 0u64;
    for (bound, count) in LATENCY_BUCKETS_S.iter().zip(&counters.latency_buckets) {
        cumulative += count;
        let _ = writeln!(
            out,
            "augur_update_latency_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
        );
    }
    cumulative += counters.latency_buckets[LATENCY_BUCKETS_S.len()];
    let _ = writeln!(
        out,
        "augur_update_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
    );
    let _ = writeln!(
        out,
        "augur_update_latency_seconds_sum {}",
        counters.latency_sum_s
    );
    let _ = writeln!(
        out,
        "augur_update_latency_seconds_count {}",
        counters.latency_count
    );
    out
}
