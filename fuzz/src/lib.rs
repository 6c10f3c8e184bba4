//! What each fuzz target checks, as plain functions over bytes.
//!
//! A target does more than look for panics: it drains every record of its reader and asserts
//! the accounting every reader promises (read = accepted + rejected, the counts match what came
//! out, every rejection names its file and line and says why) and the guarantees of what was
//! accepted (values finite and non-negative, lines in order, edges inside the workflow), so the
//! fuzzer finds logic bugs too. A broken promise panics, which libFuzzer reports as a crash.
//!
//! `tests/fuzz_corpus.rs` includes this file as a module and replays `fuzz/corpus/*` and
//! `fuzz/regressions/*` through [`run`], so plain `cargo test` checks every input the fuzzer
//! kept, without a fuzzer.

use std::collections::HashSet;
use std::io::Cursor;

use augur::input::{
    parse_platform, parse_workflow, BoundedLines, EventKind, EventReader, InputStats, MetricFormat,
    MetricOptions, MetricReader, RejectKind, Rejection,
};
use augur_dataflows::types::Resource;

/// Lines longer than this are refused; small, so that the fuzzer reaches the oversized path
/// within its default input length.
pub const MAX_LINE_BYTES: usize = 1024;

/// Every target, by the name of its folder in `fuzz/corpus/`.
pub const TARGETS: [&str; 9] = [
    "wfformat",
    "platform",
    "metrics_long_csv",
    "metrics_long_jsonl",
    "nab",
    "bitbrains",
    "alibaba",
    "task_events",
    "http_bodies",
];

/// Runs the named target on `data`; `false` when no target has that name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "wfformat" => wfformat(data),
        "platform" => platform(data),
        "metrics_long_csv" => metrics_long_csv(data),
        "metrics_long_jsonl" => metrics_long_jsonl(data),
        "nab" => nab(data),
        "bitbrains" => bitbrains(data),
        "alibaba" => alibaba(data),
        "task_events" => task_events(data),
        "http_bodies" => http_bodies(data),
        _ => return false,
    }
    true
}

/// A WfFormat document: refused whole or accepted as a well-formed DAG.
pub fn wfformat(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let read = parse_workflow(&text, "w.json");
    assert_counts_add_up(&read.stats);
    assert_eq!(
        read.workflow.is_some(),
        read.rejections.is_empty(),
        "a workflow comes back exactly when nothing was wrong"
    );
    for rejection in &read.rejections {
        assert_rejection(rejection, "w.json");
    }
    let Some(workflow) = read.workflow else {
        assert!(read.stats.read >= 1, "a refused file counts as a record");
        assert_eq!(read.stats.accepted, 0);
        return;
    };
    assert_eq!(read.stats.rejected, 0);
    assert_eq!(workflow.name, "w");
    let tasks = workflow.tasks.len();
    let mut ids = HashSet::new();
    for task in &workflow.tasks {
        assert!(ids.insert(task.id.as_str()), "task id {:?} twice", task.id);
        assert!(task.runtime_s.is_finite() && task.runtime_s >= 0.0);
        assert!(
            task.cores.is_finite() && task.cores > 0.0,
            "cores {}",
            task.cores
        );
        for alternative in &task.alternatives {
            assert!(alternative.runtime_s.is_finite() && alternative.runtime_s >= 0.0);
            assert!(alternative.cores.is_finite() && alternative.cores > 0.0);
        }
        assert!(task.parents.windows(2).all(|w| w[0] < w[1]));
        assert!(task.children.windows(2).all(|w| w[0] < w[1]));
    }
    assert!(
        workflow
            .edges
            .windows(2)
            .all(|w| (w[0].parent, w[0].child) < (w[1].parent, w[1].child)),
        "edges are sorted and unique"
    );
    let mut indegree = vec![0usize; tasks];
    for edge in &workflow.edges {
        assert!(
            edge.parent < tasks && edge.child < tasks,
            "edge outside the workflow"
        );
        assert_ne!(edge.parent, edge.child, "a task depends on itself");
        assert!(workflow.tasks[edge.child].parents.contains(&edge.parent));
        assert!(workflow.tasks[edge.parent].children.contains(&edge.child));
        indegree[edge.child] += 1;
    }
    let parent_links: usize = workflow.tasks.iter().map(|t| t.parents.len()).sum();
    assert_eq!(
        parent_links,
        workflow.edges.len(),
        "parents and edges agree"
    );
    // Kahn's algorithm: an accepted workflow must be acyclic.
    let mut ready: Vec<usize> = (0..tasks).filter(|&t| indegree[t] == 0).collect();
    let mut done = 0;
    while let Some(task) = ready.pop() {
        done += 1;
        for &child in &workflow.tasks[task].children {
            indegree[child] -= 1;
            if indegree[child] == 0 {
                ready.push(child);
            }
        }
    }
    assert_eq!(done, tasks, "an accepted workflow has a cycle");
}

/// A platform TOML: refused whole, or devices with unique ids and finite, positive capacities.
pub fn platform(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let platform = match parse_platform(&text, "p.toml") {
        Ok(platform) => platform,
        Err(rejection) => {
            assert_rejection(&rejection, "p.toml");
            assert_eq!(rejection.line, None, "a platform is refused whole");
            return;
        }
    };
    assert!(!platform.devices.is_empty());
    let mut ids = HashSet::new();
    for device in &platform.devices {
        assert!(!device.id.trim().is_empty());
        assert!(
            ids.insert(device.id.as_str()),
            "device {:?} twice",
            device.id
        );
        assert!(device.cores.is_finite() && device.cores > 0.0);
        assert!(device.speed.is_finite() && device.speed > 0.0);
        for (what, bandwidth) in [
            ("disk", device.disk_bytes_per_s),
            ("network", device.network_bytes_per_s),
        ] {
            if let Some(bandwidth) = bandwidth {
                assert!(
                    bandwidth.is_finite() && bandwidth > 0.0,
                    "{what} bandwidth {bandwidth}"
                );
            }
        }
        assert!(device.cost_per_hour.is_finite() && device.cost_per_hour >= 0.0);
        assert!(device.power_watts.is_finite() && device.power_watts >= 0.0);
        assert_eq!(
            platform
                .index_of(&device.id)
                .map(|i| &platform.devices[i].id),
            Some(&device.id)
        );
    }
}

/// Long-format CSV metrics (`time,device,resource,value`).
pub fn metrics_long_csv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    metric_file(
        &text,
        "m.csv",
        MetricFormat::Long,
        &MetricOptions::default(),
    );
}

/// Long-format JSONL metrics. Text that does not open with `{` is read as CSV (the format is
/// sniffed), which the CSV target covers, so it is skipped here.
pub fn metrics_long_jsonl(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if !text.trim_start().starts_with('{') {
        return;
    }
    metric_file(
        &text,
        "m.jsonl",
        MetricFormat::Long,
        &MetricOptions::default(),
    );
}

/// A NAB series (`timestamp,value`), read once as a CPU series and once as a throughput
/// series, which is normalised by its own maximum (the two-pass path).
pub fn nab(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for resource in [Resource::Cpu, Resource::Network] {
        let options = MetricOptions {
            nab_target: Some(("d".to_string(), resource)),
            ..options()
        };
        metric_file(&text, "n.csv", MetricFormat::Nab, &options);
    }
}

/// A Bitbrains VM trace, with and without the device's bandwidths (with them throughput is a
/// fraction of the bandwidth; without, of the series' maximum).
pub fn bitbrains(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    metric_file(&text, "vm.csv", MetricFormat::Bitbrains, &options());
    let mut with_bandwidth = options();
    with_bandwidth
        .bandwidth
        .insert("vm".to_string(), (Some(1e8), Some(1.25e8)));
    metric_file(&text, "vm.csv", MetricFormat::Bitbrains, &with_bandwidth);
}

/// Alibaba `machine_usage` rows, read whole and as `augur run` reads them: one reader per
/// machine, the first also taking the lines that name none. Across those readers every line
/// must be counted exactly once, as by the single reader.
pub fn alibaba(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let whole = metric_file(&text, "u.csv", MetricFormat::Alibaba, &options());
    let machines = machines_in(&text);
    if machines.is_empty() {
        return;
    }
    let mut grouped = InputStats::default();
    for (index, machine) in machines.into_iter().enumerate() {
        let options = MetricOptions {
            only_machine: Some((machine, index == 0)),
            ..options()
        };
        grouped.add(&metric_file(
            &text,
            "u.csv",
            MetricFormat::Alibaba,
            &options,
        ));
    }
    assert_eq!(
        grouped, whole,
        "the per-machine readers count differently from one reader"
    );
}

/// A task-event log (JSONL).
pub fn task_events(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut reader = EventReader::from_text(&text, "e.jsonl", MAX_LINE_BYTES);
    let mut seen = InputStats::default();
    let mut last_line = 0;
    for outcome in reader.by_ref() {
        assert!(outcome.line > last_line, "lines out of order");
        last_line = outcome.line;
        match &outcome.event {
            Ok(event) => {
                seen.count_accepted();
                seen.dropped_fields += outcome.dropped.len() as u64;
                for dropped in &outcome.dropped {
                    assert_rejection(dropped, "e.jsonl");
                    assert_eq!(dropped.line, Some(outcome.line));
                    assert_eq!(dropped.kind, RejectKind::DroppedField);
                }
                assert!(!event.workflow.trim().is_empty());
                for name in [&event.task, &event.device].into_iter().flatten() {
                    assert!(!name.trim().is_empty());
                }
                match event.kind {
                    EventKind::Start => assert!(event.task.is_some() && event.device.is_some()),
                    EventKind::Complete => assert!(event.task.is_some()),
                    EventKind::Arrival => {}
                }
                if let Some(duration) = event.duration_s {
                    assert!(
                        duration.is_finite() && duration >= 0.0,
                        "duration {duration}"
                    );
                }
                for (resource, value) in &event.usage {
                    assert!(
                        ["cpu", "memory", "disk", "network"].contains(&resource.as_str()),
                        "usage of {resource:?}"
                    );
                    assert!(value.is_finite() && *value >= 0.0, "usage {value}");
                }
            }
            Err(rejection) => {
                seen.count_rejected();
                assert!(outcome.dropped.is_empty());
                assert_rejection(rejection, "e.jsonl");
                assert_eq!(rejection.line, Some(outcome.line));
                assert_ne!(rejection.kind, RejectKind::DroppedField);
            }
        }
    }
    assert_counts_add_up(&reader.stats());
    assert_eq!(reader.stats(), seen, "the counts differ from what came out");
    assert!(last_line as usize <= text.split('\n').count());
}

fn options() -> MetricOptions {
    MetricOptions {
        max_line_bytes: MAX_LINE_BYTES,
        ..MetricOptions::default()
    }
}

/// Drains one metric reader, checks every outcome and the counts, and returns the counts.
fn metric_file(
    text: &str,
    path: &str,
    format: MetricFormat,
    options: &MetricOptions,
) -> InputStats {
    let mut reader = MetricReader::from_text(text, path, format, options);
    let mut seen = InputStats::default();
    let mut last_line = None;
    for outcome in reader.by_ref() {
        assert!(
            !outcome.records.is_empty() || !outcome.rejections.is_empty(),
            "line {} yielded nothing",
            outcome.line
        );
        for rejection in &outcome.rejections {
            assert_rejection(rejection, path);
        }
        let whole_file = outcome.rejections.iter().any(|r| r.line.is_none());
        if whole_file {
            // Only a file that cannot be read at all is refused without a line, and then it is
            // the one outcome.
            assert!(last_line.is_none() && outcome.records.is_empty());
            assert_eq!(outcome.rejections.len(), 1);
        } else {
            assert!(
                last_line.is_none_or(|last| outcome.line > last),
                "line {} after line {last_line:?}",
                outcome.line
            );
            for rejection in &outcome.rejections {
                assert_eq!(rejection.line, Some(outcome.line));
            }
        }
        last_line = Some(outcome.line);
        if outcome.records.is_empty() {
            seen.count_rejected();
            assert!(outcome
                .rejections
                .iter()
                .all(|r| r.kind != RejectKind::DroppedField));
        } else {
            seen.count_accepted();
            seen.dropped_fields += outcome.rejections.len() as u64;
            assert!(outcome
                .rejections
                .iter()
                .all(|r| r.kind == RejectKind::DroppedField));
        }
        for record in &outcome.records {
            assert!(
                record.value.is_finite() && record.value >= 0.0,
                "value {}",
                record.value
            );
        }
    }
    let stats = reader.stats();
    assert_counts_add_up(&stats);
    assert_eq!(stats, seen, "the counts differ from what came out");
    if let Some(line) = last_line {
        assert!(
            line as usize <= text.split('\n').count(),
            "line {line} past the end"
        );
    }
    stats
}

/// The machines of an Alibaba text in order of first appearance, as `augur run` lists them.
fn machines_in(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut machines = Vec::new();
    for (_, line) in BoundedLines::new(Cursor::new(text.as_bytes()), MAX_LINE_BYTES) {
        let Ok(line) = line else { continue };
        // As `augur run` names them (`run::machines_in`), and as `only_machine` picks rows.
        let machine = augur::input::metrics::first_field(&line, ',');
        if !machine.is_empty() && seen.insert(machine.to_string()) {
            machines.push(machine.to_string());
        }
    }
    machines
}

fn assert_counts_add_up(stats: &InputStats) {
    assert_eq!(
        stats.read,
        stats.accepted + stats.rejected,
        "read != accepted + rejected: {stats:?}"
    );
}

/// What arrives over HTTP: the first byte picks the parser, the rest is the body. `augur serve`'s
/// request heads and bodies (metrics, events, workflows, kube-scheduler ExtenderArgs) are
/// refused whole with reasons or accepted sound; `augur collect`'s node_exporter pages and
/// Prometheus `query_range` answers never panic and keep only what they can vouch for.
pub fn http_bodies(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 7 {
        0 => {
            let options = MetricOptions {
                max_line_bytes: MAX_LINE_BYTES,
                ..MetricOptions::default()
            };
            match augur::serve::parse_metrics(body, &options).into_result() {
                Ok(records) => {
                    for (_, record) in records {
                        assert!(record.value.is_finite() && record.value >= 0.0);
                        assert!(!record.device.trim().is_empty());
                    }
                }
                Err(rejections) => assert_refused(&rejections.into_listed()),
            }
        }
        1 => match augur::serve::parse_events(body, MAX_LINE_BYTES).into_result() {
            Ok(events) => {
                let mut last = 0;
                for (line, event) in events {
                    assert!(line > last, "event lines out of order");
                    last = line;
                    assert!(!event.workflow.trim().is_empty());
                    if let Some(duration) = event.duration_s {
                        assert!(duration.is_finite() && duration >= 0.0);
                    }
                }
            }
            Err(rejections) => assert_refused(&rejections.into_listed()),
        },
        2 => match augur::serve::parse_workflow_body(body, "w") {
            Ok(workflow) => {
                let ids: HashSet<&str> = workflow.tasks.iter().map(|t| t.id.as_str()).collect();
                assert_eq!(
                    ids.len(),
                    workflow.tasks.len(),
                    "duplicate task ids accepted"
                );
            }
            Err(rejections) => assert_refused(&rejections),
        },
        3 => {
            if let Ok((_, names, _)) = augur::serve::parse_extender_args(body) {
                assert!(names.iter().all(|name| !name.is_empty()));
            }
        }
        4 => {
            if let Ok(head) = augur::http::parse_head(body) {
                assert!(!head.method.is_empty());
                let token = |name: &str| {
                    !name.is_empty()
                        && name.bytes().all(|b| {
                            b.is_ascii_lowercase()
                                || b.is_ascii_digit()
                                || b"!#$%&'*+-.^_`|~".contains(&b)
                        })
                };
                assert!(
                    head.headers.iter().all(|(name, _)| token(name)),
                    "a header name that is not a lower-case token: {:?}",
                    head.headers
                );
            }
        }
        5 => {
            let page = augur::prometheus::parse_exposition(&String::from_utf8_lossy(body));
            assert!(page.samples.iter().all(|sample| !sample.name.is_empty()));
        }
        _ => {
            let devices = std::collections::BTreeMap::new();
            if let Ok(history) = augur::prometheus::parse_query_range(
                &String::from_utf8_lossy(body),
                "q",
                Resource::Cpu,
                &devices,
            ) {
                for record in history.records {
                    assert!(record.value.is_finite() && record.value >= 0.0);
                }
            }
        }
    }
}

/// A body refused whole says why, at least once.
fn assert_refused(rejections: &[Rejection]) {
    assert!(!rejections.is_empty(), "refused without a reason");
    for rejection in rejections {
        assert!(
            !rejection.reason.trim().is_empty(),
            "a rejection without a reason: {rejection:?}"
        );
    }
}

fn assert_rejection(rejection: &Rejection, path: &str) {
    assert_eq!(rejection.file, path, "a rejection names another file");
    assert!(
        !rejection.reason.trim().is_empty(),
        "a rejection without a reason: {rejection:?}"
    );
}
