//! `run --report`: the page draws every device of the run, its last counts agree with the
//! run's own outputs, it changes none of them, and a run without the flag leaves no stale page.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use augur::testing::Scratch;

use crate::checkpoint::demo_args;

fn run(out: &Path, extra: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(demo_args())
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run augur");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Per device heading on the page: the tasks it says are mapped there at the end.
pub fn tasks_at_end(page: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for part in page.split("<h3>").skip(1) {
        let Some((name, rest)) = part.split_once("</h3><p>") else {
            continue;
        };
        let facts = rest.split_once("</p>").map_or(rest, |(facts, _)| facts);
        let Some(before) = facts.strip_suffix(" tasks mapped at the end") else {
            continue;
        };
        let number = before.rsplit(' ').next().unwrap_or_default();
        counts.insert(name.to_string(), number.parse().expect("a count"));
    }
    counts
}

/// Tasks per device in `final_map.json`.
pub fn final_counts(out: &Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(out.join("final_map.json")).expect("final map");
    let map: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_str(&text).expect("final map is JSON");
    let mut counts = BTreeMap::new();
    for device in map.values().flat_map(|tasks| tasks.values()) {
        *counts.entry(device.clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn the_demo_page_draws_each_device_and_agrees_with_the_final_map() {
    let dir = Scratch::new("report-demo");
    let (with, without) = (dir.join("with"), dir.join("without"));
    run(&with, &["--report"]);
    run(&without, &[]);
    let page = std::fs::read_to_string(with.join("report.html")).expect("report.html");
    assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>\n"));
    // Every input with its counts, and the run's totals.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(with.join("summary.json")).expect("summary"))
            .expect("JSON");
    for (path, counts) in summary["inputs"].as_object().expect("inputs") {
        let row = format!(
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            augur::plot::escape(path),
            counts["read"],
            counts["accepted"],
            counts["rejected"]
        );
        assert!(page.contains(&row), "no row {row}");
    }
    assert!(page.contains(&format!("{} tasks placed", summary["tasks_placed"])));
    // A heading per device, each with what the final map holds there (devices with none say 0).
    let mut expected = final_counts(&with);
    for device in ["edge-a", "edge-b", "cloud-c", "cloud-d"] {
        expected.entry(device.to_string()).or_insert(0);
    }
    assert_eq!(tasks_at_end(&page), expected);
    // The moves chart, then per device the utilisation and the tasks charts.
    assert_eq!(page.matches("<svg").count(), 1 + 4 * 2, "{page}");
    assert!(page.contains("cpu ") && page.contains("forecast"));
    // A page of bounded size for 14 days of 5-minute samples on 4 devices.
    assert!(page.len() < 1_000_000, "{} bytes", page.len());
    // The report changes no other output.
    for file in [
        "partition.jsonl",
        "final_map.json",
        "forecasts.json",
        "rejected.jsonl",
        "prewarm.jsonl",
        "scaleout.jsonl",
        "resculpt.jsonl",
        "durations.json",
    ] {
        let read = |dir: &Path| std::fs::read(dir.join(file)).expect(file);
        assert!(
            read(&with) == read(&without),
            "{file} differs with --report"
        );
    }
    assert!(!without.join("report.html").exists());
    // Rerun into the same folder without the flag: the old page goes with the old outputs.
    run(&with, &[]);
    assert!(
        !with.join("report.html").exists(),
        "a stale report.html was left"
    );
}
