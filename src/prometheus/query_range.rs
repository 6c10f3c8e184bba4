//! History from a Prometheus server: `/api/v1/query_range`, one PromQL query per resource, the
//! way load-aware Kubernetes schedulers (Trimaran's load watcher, Crane, Koordinator's
//! descheduler) read node utilisation. The queries, with `W` the rate window (`--rate-window`,
//! default `1m`, at least twice the scrape interval so that every window holds two scrapes)
//! and `NET` the device's network bandwidth in bytes/s (the platform's, else the default),
//! divided here once the series are named, since one query answers for every device:
//!
//! | resource | PromQL |
//! |---|---|
//! | cpu | `1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[W]))` |
//! | memory | `1 - sum by (instance) (node_memory_MemAvailable_bytes) / sum by (instance) (node_memory_MemTotal_bytes)` |
//! | disk | `max by (instance) (rate(node_disk_io_time_seconds_total[W]))` |
//! | network | `sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}[W]) + rate(node_network_transmit_bytes_total{device!="lo"}[W])) / NET` |
//!
//! They are the live scraper's rules ([`super::node_exporter`]) in PromQL, so history and live
//! samples of one node agree. `rate()` already handles counter resets. Each series' `instance`
//! label names its device unless mapped (`--device INSTANCE=NAME`). A point whose value is
//! `NaN` or infinite (a division by zero on an idle counter, a missing denominator) is skipped
//! and counted; so is a series without an `instance` label.

use std::collections::BTreeMap;
use std::time::Duration;

use augur_dataflows::types::{Resource, Time};
use serde_json::Value;

use super::{clip_body, PromError};
use crate::collect::Capacity;
use crate::http_client::{get, query_string, HttpUrl};
use crate::input::metrics::MetricRecord;
use crate::input::time::{format_seconds, parse_seconds};

/// Prometheus refuses a query of more than 11,000 points per series; longer ranges are asked
/// in pieces of this many steps.
const MAX_POINTS_PER_QUERY: i64 = 10_000;

/// A tiny negative utilisation is floating-point noise (`1 - 1.0000000000000002`), a larger one
/// a wrong query.
const NEGATIVE_NOISE: f64 = 1e-9;

/// What history to read and how to name it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    /// First evaluation time, ms.
    pub start: Time,
    /// Last evaluation time, ms (inclusive when on a step).
    pub end: Time,
    /// Evaluation step, ms (> 0).
    pub step_ms: i64,
    /// The `rate()` window, a PromQL duration (`1m`, `30s`).
    pub rate_window: String,
    /// Network bandwidth of devices the platform does not give (disk is a busy fraction and
    /// needs none).
    pub capacity: Capacity,
    /// Network bandwidth, bytes/s, of the devices the platform gives, by device name (as
    /// renamed by `devices`).
    pub network_by_device: BTreeMap<String, f64>,
    /// Device names by `instance` label; unlisted instances keep their label.
    pub devices: BTreeMap<String, String>,
    /// Per request.
    pub timeout: Duration,
}

/// Records read back, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Ordered by time, then device, then resource.
    pub records: Vec<MetricRecord>,
    /// Points that were `NaN`, infinite, negative, unreadable or outside the range asked for.
    pub skipped_points: u64,
    /// Series without an `instance` label.
    pub unlabelled_series: u64,
}

/// The PromQL of one resource (the table above, network before its division).
pub fn promql(resource: Resource, rate_window: &str) -> String {
    let w = rate_window;
    match resource {
        Resource::Cpu => {
            format!("1 - avg by (instance) (rate(node_cpu_seconds_total{{mode=\"idle\"}}[{w}]))")
        }
        Resource::Memory => "1 - sum by (instance) (node_memory_MemAvailable_bytes) / \
                             sum by (instance) (node_memory_MemTotal_bytes)"
            .to_string(),
        Resource::Disk => format!("max by (instance) (rate(node_disk_io_time_seconds_total[{w}]))"),
        // Bytes per second: the bandwidth to divide by is each device's own.
        Resource::Network => format!(
            "sum by (instance) (rate(node_network_receive_bytes_total{{device!=\"lo\"}}[{w}]) + \
             rate(node_network_transmit_bytes_total{{device!=\"lo\"}}[{w}]))"
        ),
    }
}

/// Reads every resource's history from the Prometheus at `base` (`http://host:9090`, or with a
/// path prefix when Prometheus runs behind one).
pub fn read_history(base: &str, query: &HistoryQuery) -> Result<History, PromError> {
    let base = HttpUrl::parse(base)?;
    let mut history = History::default();
    let step = query.step_ms.max(1);
    for resource in Resource::ALL {
        let promql = promql(resource, &query.rate_window);
        let mut from = query.start;
        while from <= query.end {
            let to = from
                .saturating_add(step.saturating_mul(MAX_POINTS_PER_QUERY - 1))
                .min(query.end);
            let params = query_string(&[
                ("query", promql.as_str()),
                ("start", &format_seconds(from)),
                ("end", &format_seconds(to)),
                ("step", &format_seconds(step)),
            ]);
            let url = base.with_path(&format!("{}/api/v1/query_range?{params}", base.base_path()));
            let response = get(&url, query.timeout)?;
            let part = match parse_query_range(&response.text(), &promql, resource, &query.devices)
            {
                Err(PromError::Response { .. }) if response.status != 200 => {
                    return Err(PromError::Status {
                        url: url.to_string(),
                        status: response.status,
                        body: clip_body(&response.text()),
                    })
                }
                other => other?,
            };
            // A point outside the piece asked for (a proxy or a server that ignores the range)
            // would land outside `start..=end`, or twice where pieces meet: it is skipped.
            let answered = part.records.len();
            let before = history.records.len();
            history.records.extend(
                part.records
                    .into_iter()
                    .filter(|r| (from..=to).contains(&r.time))
                    .map(|mut record| {
                        if resource == Resource::Network {
                            let bandwidth = query
                                .network_by_device
                                .get(&record.device)
                                .copied()
                                .unwrap_or(query.capacity.network_bytes_per_s);
                            record.value /= bandwidth;
                        }
                        record
                    }),
            );
            let kept = history.records.len() - before;
            history.skipped_points += (answered - kept) as u64 + part.skipped_points;
            history.unlabelled_series += part.unlabelled_series;
            from = match to.checked_add(step) {
                Some(next) => next,
                None => break,
            };
        }
    }
    history
        .records
        .sort_by(|a, b| (a.time, &a.device, a.resource).cmp(&(b.time, &b.device, b.resource)));
    Ok(history)
}

/// Parses one `query_range` answer (`resultType: matrix`) into records of `resource`. `query`
/// only names the query in errors.
pub fn parse_query_range(
    body: &str,
    query: &str,
    resource: Resource,
    devices: &BTreeMap<String, String>,
) -> Result<History, PromError> {
    let bad = |reason: String| PromError::Response {
        query: query.to_string(),
        reason,
    };
    let answer: Value =
        serde_json::from_str(body).map_err(|error| bad(format!("not JSON: {error}")))?;
    let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or("").to_string();
    match answer.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some("error") => {
            return Err(PromError::Api {
                query: query.to_string(),
                error_type: text(answer.get("errorType")),
                error: text(answer.get("error")),
            })
        }
        _ => return Err(bad("no \"status\": \"success\" or \"error\"".to_string())),
    }
    let data = answer
        .get("data")
        .ok_or_else(|| bad("no \"data\"".to_string()))?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("matrix") => {}
        other => return Err(bad(format!("resultType {other:?}, expected \"matrix\""))),
    }
    let series = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("\"result\" is not an array".to_string()))?;
    let mut history = History::default();
    for one in series {
        let values = one.get("values").and_then(Value::as_array);
        let instance = one
            .get("metric")
            .and_then(|metric| metric.get("instance"))
            .and_then(Value::as_str);
        let (Some(instance), Some(values)) = (instance, values) else {
            history.unlabelled_series += 1;
            continue;
        };
        let device = devices
            .get(instance)
            .cloned()
            .unwrap_or_else(|| instance.to_string());
        for point in values {
            match parse_point(point, resource) {
                Some((time, value)) => history.records.push(MetricRecord {
                    time,
                    device: device.clone(),
                    resource,
                    value,
                }),
                None => history.skipped_points += 1,
            }
        }
    }
    Ok(history)
}

/// `[unix_seconds, "value"]` to a time and a fraction, `None` when unusable.
fn parse_point(point: &Value, resource: Resource) -> Option<(Time, f64)> {
    let [time, value] = point.as_array()?.as_slice() else {
        return None;
    };
    let time = match time {
        Value::Number(number) => parse_seconds(&number.to_string()).ok()?,
        Value::String(text) => parse_seconds(text).ok()?,
        _ => return None,
    };
    // Prometheus writes NaN and ±Inf as strings, which `f64` parsing accepts; they are dropped.
    let value: f64 = value.as_str()?.trim().parse().ok()?;
    if !value.is_finite() || value < -NEGATIVE_NOISE {
        return None;
    }
    let value = value.max(0.0);
    Some(match resource {
        Resource::Cpu | Resource::Memory | Resource::Disk => (time, value.min(1.0)),
        Resource::Network => (time, value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str, resource: Resource) -> Result<History, PromError> {
        parse_query_range(body, "q", resource, &BTreeMap::new())
    }

    #[test]
    fn matrix_points_with_mapping_and_skips() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"instance":"10.0.0.1:9100","job":"node"},
             "values":[[1700000000,"0.25"],[1700000000.5,"NaN"],[1700000001.25,"+Inf"],
                       [1700000002,"-0.5"],[1700000003,"-1e-12"],[1700000004,"1.5"],["x","1"],[1]]},
            {"metric":{"job":"node"},"values":[[1700000000,"0.1"]]},
            {"metric":{"instance":"other:9100"},"values":[[1700000000.001,"0.5"]]}]}}"#;
        let devices = BTreeMap::from([("10.0.0.1:9100".to_string(), "edge-a".to_string())]);
        let history = parse_query_range(body, "q", Resource::Cpu, &devices).expect("parses");
        let got: Vec<(Time, &str, f64)> = history
            .records
            .iter()
            .map(|r| (r.time, r.device.as_str(), r.value))
            .collect();
        assert_eq!(
            got,
            vec![
                (1_700_000_000_000, "edge-a", 0.25),
                (1_700_000_003_000, "edge-a", 0.0),
                (1_700_000_004_000, "edge-a", 1.0),
                (1_700_000_000_001, "other:9100", 0.5),
            ]
        );
        // NaN, +Inf, -0.5, a bad time and a short point.
        assert_eq!(history.skipped_points, 5);
        assert_eq!(history.unlabelled_series, 1);
        let network = parse(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"instance":"i"},"values":[[1,"1.5"]]}]}}"#,
            Resource::Network,
        )
        .expect("parses");
        assert_eq!(network.records[0].value, 1.5, "network keeps over-commit");
    }

    #[test]
    fn api_errors_and_bad_shapes() {
        let error = parse(
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
            Resource::Cpu,
        )
        .expect_err("api error");
        assert!(
            matches!(&error, PromError::Api { error_type, error, .. } if error_type == "bad_data" && error == "parse error"),
            "{error}"
        );
        for body in [
            "",
            "<html>",
            "[]",
            r#"{"status":"success"}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":{}}}"#,
            r#"{"status":"maybe"}"#,
        ] {
            let error = parse(body, Resource::Cpu).expect_err(body);
            assert!(
                matches!(error, PromError::Response { .. }),
                "{body}: {error}"
            );
        }
    }

    #[test]
    fn queries_name_the_rules() {
        assert_eq!(
            promql(Resource::Cpu, "1m"),
            "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[1m]))"
        );
        // Bytes per second; each device's bandwidth divides them once the series are named.
        assert!(promql(Resource::Network, "30s").ends_with("[30s]))"));
    }
}
