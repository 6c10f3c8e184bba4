//! `augur collect` on this host: the file it writes is what `augur run` reads, and it stops
//! cleanly on a signal.

use augur::testing::Scratch;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn scratch(name: &str) -> Scratch {
    Scratch::new(&format!("collect-{name}"))
}

fn augur(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .output()
        .expect("run augur")
}

/// Every line of a collected JSONL file, checked against the long format's rules.
pub fn collected_lines(path: &Path) -> Vec<(f64, String, String, f64)> {
    let text = std::fs::read_to_string(path).expect("read the collected file");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a partial last line"
    );
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let time = v["time"].as_f64().expect("time is a number");
            let device = v["device"].as_str().expect("device").to_string();
            let resource = v["resource"].as_str().expect("resource").to_string();
            let value = v["value"].as_f64().expect("value is a number");
            assert!(value.is_finite() && value >= 0.0, "{line}");
            if resource == "cpu" || resource == "memory" {
                assert!(value <= 1.0, "{line}");
            }
            assert!(
                ["cpu", "memory", "disk", "network"].contains(&resource.as_str()),
                "{line}"
            );
            (time, device, resource, value)
        })
        .collect()
}

/// Samples per resource.
pub fn per_resource(lines: &[(f64, String, String, f64)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, _, resource, _) in lines {
        *counts.entry(resource.clone()).or_insert(0) += 1;
    }
    counts
}

/// Runs `augur run` on the demo workflow with `metrics`, on a platform of `devices`, and
/// asserts that every metric line was accepted.
pub fn assert_run_accepts(metrics: &Path, devices: &[&str], dir: &Path) {
    let platform = dir.join("platform.toml");
    let text: String = devices
        .iter()
        .map(|d| format!("[[device]]\nid = \"{d}\"\ncores = 64\nmemory_gib = 512\n\n"))
        .collect();
    std::fs::write(&platform, text).expect("write the platform");
    let out = dir.join("run");
    let workflow = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/demo/montage-chameleon-2mass-01d-001.json");
    let output = augur(&[
        "run",
        "--workflow",
        &workflow.display().to_string(),
        "--platform",
        &platform.display().to_string(),
        "--metrics",
        &metrics.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--quiet",
    ]);
    assert!(
        output.status.success(),
        "augur run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("summary is JSON");
    let counts = &summary["inputs"][metrics.display().to_string()];
    let rejected = std::fs::read_to_string(out.join("rejected.jsonl")).unwrap_or_default();
    assert_eq!(summary["rejected_lines"], 0, "rejections: {rejected}");
    assert_eq!(counts["rejected"], 0, "{counts}");
    assert_eq!(counts["dropped_fields"], 0, "{counts}");
    assert!(
        counts["accepted"].as_u64().is_some_and(|n| n > 0),
        "{counts}"
    );
    assert_eq!(counts["read"], counts["accepted"]);
}

#[test]
fn collect_three_seconds_gives_two_samples_per_resource_and_run_accepts_them() {
    let dir = scratch("host");
    let file = dir.join("metrics.jsonl");
    let output = augur(&[
        "collect",
        "--duration",
        "3s",
        "--interval",
        "1s",
        "--device",
        "testhost",
        "--out",
        &file.display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("augur collect:"),
        "progress on stderr: {stderr}"
    );
    let lines = collected_lines(&file);
    let counts = per_resource(&lines);
    for resource in ["cpu", "memory", "disk", "network"] {
        assert!(
            counts.get(resource).copied().unwrap_or(0) >= 2,
            "{resource}: {counts:?}"
        );
    }
    assert!(lines.iter().all(|(_, device, _, _)| device == "testhost"));
    // Samples are a second apart, in order.
    let memory_times: Vec<f64> = lines
        .iter()
        .filter(|l| l.2 == "memory")
        .map(|l| l.0)
        .collect();
    for pair in memory_times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((0.5..2.0).contains(&gap), "{memory_times:?}");
    }
    assert_run_accepts(&file, &["testhost"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn collect_csv_is_accepted_by_run() {
    let dir = scratch("csv");
    let file = dir.join("metrics.csv");
    let output = augur(&[
        "collect",
        "--duration",
        "1s",
        "--interval",
        "500ms",
        "--device",
        "csvhost",
        "--quiet",
        "--out",
        &file.display().to_string(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "--quiet: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.starts_with("time,device,resource,value\n"), "{text}");
    assert!(text.lines().count() >= 5, "{text}");
    assert_run_accepts(&file, &["csvhost"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_ends_collect_cleanly_with_whole_lines() {
    let dir = scratch("signal");
    let file = dir.join("metrics.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "collect",
            "--interval",
            "200ms",
            "--quiet",
            "--device",
            "sig",
            "--out",
        ])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start augur collect");
    let started = Instant::now();
    // Wait for a few rounds to be written (rates need a second round).
    while std::fs::read_to_string(&file).map_or(0, |t| t.lines().count()) < 6 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no samples written"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("augur collect did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit {exit:?}");
    let lines = collected_lines(&file);
    assert!(lines.len() >= 6);
    assert!(per_resource(&lines).contains_key("cpu"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_collect_flags_are_usage_errors() {
    for args in [
        vec!["collect", "--out", "/dev/null", "--interval", "0s"],
        vec!["collect", "--out", "/dev/null", "--interval", "fast"],
        vec![
            "collect",
            "--out",
            "/dev/null",
            "--node-exporter",
            "https://x:9100",
        ],
        vec![
            "collect",
            "--out",
            "/dev/null",
            "--prometheus",
            "http://x:9090",
        ],
        vec![
            "collect",
            "--out",
            "/dev/null",
            "--device",
            "a",
            "--device",
            "b",
        ],
    ] {
        let output = augur(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // An output in a folder that does not exist is refused before the first round, naming
    // the flag, as `run --report` and `simulate --report` refuse one.
    let output = augur(&[
        "collect",
        "--out",
        "/nonexistent-dir/m.jsonl",
        "--duration",
        "0s",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--out") && stderr.contains("/nonexistent-dir"),
        "{stderr}"
    );
}

#[test]
fn unreachable_node_exporter_fails_after_its_samples() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let (code, stderr) = scrape_for_a_second(&format!("http://127.0.0.1:{port}"), "unreachable");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("connecting to 127.0.0.1"), "{stderr}");
    assert!(stderr.contains("no records collected"), "{stderr}");
}

/// `augur collect` scraping `url` for a second, twice; its exit code and standard error.
fn scrape_for_a_second(url: &str, name: &str) -> (Option<i32>, String) {
    let dir = scratch(name);
    let output = augur(&[
        "collect",
        "--node-exporter",
        url,
        "--duration",
        "1s",
        "--interval",
        "500ms",
        "--out",
        &dir.join("m.jsonl").display().to_string(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A target that answers, but with a page holding none of the series augur reads (an HTML
/// page), collects nothing: exit 1, not an empty file and success.
#[test]
fn a_target_answering_without_metrics_fails() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = std::thread::spawn(move || {
        // Answer every scrape of the run (a few rounds) with the same page, then stop.
        for _ in 0..4 {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let body = "<html><body>hello</body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let url = format!("http://127.0.0.1:{port}/metrics");
    let (code, stderr) = scrape_for_a_second(&url, "no-metrics");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("gave no record"), "{stderr}");
    drop(server);
}
