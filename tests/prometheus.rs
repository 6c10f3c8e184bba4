//! Prometheus sources: the exposition parser and the counter rules on recorded node_exporter
//! pages and query_range answers (data/prometheus/), and against the real thing: Debian's
//! `prometheus-node-exporter` and `prometheus`, either started by `.ci/run`
//! (`AUGUR_NODE_EXPORTER_URL`, `AUGUR_PROMETHEUS_URL`) or, when their binaries are on PATH, by
//! the test itself on loopback ports. Without either the live test says "skipped" on stderr,
//! and fails when `AUGUR_REQUIRE_PROMETHEUS=1`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use augur::collect::{Capacity, Collector};
use augur::http_client::{get, query_string, HttpUrl};
use augur::prometheus::{
    parse_exposition, parse_query_range, read_history, HistoryQuery, NodeExporterScraper, PromError,
};
use augur_dataflows::types::Resource;

use crate::collect::{assert_run_accepts, collected_lines, per_resource};
use crate::common::Rng;

fn recorded(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/prometheus")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn value_of(records: &[augur::input::metrics::MetricRecord], resource: Resource) -> Option<f64> {
    records
        .iter()
        .find(|r| r.resource == resource)
        .map(|r| r.value)
}

#[test]
fn recorded_node_exporter_page_parses_without_problems() {
    let page = parse_exposition(&recorded("node_exporter_1.prom"));
    assert!(page.problems.is_empty(), "{:?}", page.problems);
    assert!(page.samples.len() > 500, "{}", page.samples.len());
    assert_eq!(page.types["node_cpu_seconds_total"], "counter");
    assert_eq!(page.types["node_memory_MemTotal_bytes"], "gauge");
    // 2 CPUs × 8 modes.
    assert_eq!(page.samples_named("node_cpu_seconds_total").count(), 16);
    let idle: Vec<f64> = page
        .samples_named("node_cpu_seconds_total")
        .filter(|s| s.label("mode") == Some("idle"))
        .map(|s| s.value)
        .collect();
    assert_eq!(idle, vec![5473.12, 4948.76]);
}

/// The rules worked by hand on the two recorded pages, taken 2 s apart (see PROVENANCE.md).
#[test]
fn recorded_scrapes_give_the_hand_computed_utilisation() {
    let capacity = Capacity {
        disk_bytes_per_s: 200e6,
        network_bytes_per_s: 125e6,
    };
    let mut scraper =
        NodeExporterScraper::new("http://127.0.0.1:19100", None, capacity, Duration::ZERO)
            .expect("url");
    let t0 = 1_795_922_050_000;
    let first = scraper.observe(&recorded("node_exporter_1.prom"), t0);
    assert_eq!(first.records.len(), 1, "the first page gives memory only");
    let second = scraper.observe(&recorded("node_exporter_2.prom"), t0 + 2_000);
    assert!(second.missing.is_empty(), "{:?}", second.missing);
    assert!(second.records.iter().all(|r| r.device == "127.0.0.1:19100"));
    // Δidle = 0.02 + 0.08; Δall = (0.02 + 1.88 + 0.12 + 0.01) + (0.08 + 1.73 + 0.19 + 0.01).
    let cpu = value_of(&second.records, Resource::Cpu).expect("cpu");
    assert!((cpu - (1.0 - 0.10 / 4.04)).abs() < 1e-9, "{cpu}");
    let memory = value_of(&second.records, Resource::Memory).expect("memory");
    assert!((memory - (1.0 - 2.4323371008e10 / 2.5276510208e10)).abs() < 1e-12);
    // vda was busy 4 ms of the 2 s; zram0 not at all.
    let disk = value_of(&second.records, Resource::Disk).expect("disk");
    assert!((disk - 0.002).abs() < 1e-9, "{disk}");
    assert_eq!(value_of(&second.records, Resource::Network), Some(0.0));
}

#[test]
fn recorded_query_range_answers() {
    let devices = BTreeMap::from([("127.0.0.1:19100".to_string(), "node".to_string())]);
    let cpu = parse_query_range(
        &recorded("query_range_cpu.json"),
        "q",
        Resource::Cpu,
        &devices,
    )
    .expect("cpu answer");
    let points: Vec<(i64, f64)> = cpu.records.iter().map(|r| (r.time, r.value)).collect();
    assert_eq!(points.len(), 4);
    assert_eq!(points[0], (1_795_922_062_000, 0.9986128333333572));
    assert!(cpu
        .records
        .iter()
        .all(|r| r.device == "node" && r.resource == Resource::Cpu));
    let memory = parse_query_range(
        &recorded("query_range_memory.json"),
        "q",
        Resource::Memory,
        &BTreeMap::new(),
    )
    .expect("memory answer");
    assert_eq!(memory.records.len(), 6);
    assert_eq!(
        memory.records[0].time, 1_795_922_064_500,
        "half seconds kept"
    );
    assert_eq!(memory.records[0].device, "127.0.0.1:19100");
    assert!(memory
        .records
        .iter()
        .all(|r| (0.0..=1.0).contains(&r.value)));
    let nan = parse_query_range(
        &recorded("query_range_nan.json"),
        "q",
        Resource::Disk,
        &devices,
    )
    .expect("NaN answer");
    assert!(nan.records.is_empty());
    assert_eq!(nan.skipped_points, 3);
    let error = parse_query_range(
        &recorded("query_range_error.json"),
        "q",
        Resource::Cpu,
        &devices,
    )
    .expect_err("an error answer");
    assert!(
        matches!(&error, PromError::Api { error_type, error, .. }
            if error_type == "bad_data" && error.contains("unclosed left parenthesis")),
        "{error}"
    );
}

/// Mutated pages (cut, spliced, with the format's special characters thrown in) never panic
/// the parser, and every line is either a sample, a problem or a comment.
#[test]
fn exposition_parser_survives_mutated_pages() {
    let page = recorded("node_exporter_1.prom");
    let base: Vec<char> = page.chars().take(6_000).collect();
    let specials = [
        '{', '}', '"', '\\', '=', ',', '#', ' ', '\t', '\n', '\r', 'e', '+', '-', '.', 'N', 'I',
        'é', '\u{0}',
    ];
    let mut rng = Rng::new(0x5eed);
    for _ in 0..3_000 {
        let mut text = base.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(text.len() as u64 + 1) as usize;
            match rng.below(4) {
                0 => {
                    let c = specials[rng.below(specials.len() as u64) as usize];
                    text.insert(at, c);
                }
                1 if at < text.len() => {
                    let end = (at + 1 + rng.below(40) as usize).min(text.len());
                    text.drain(at..end);
                }
                2 if at < text.len() => {
                    let end = (at + 1 + rng.below(80) as usize).min(text.len());
                    let piece: Vec<char> = text[at..end].to_vec();
                    let to = rng.below(text.len() as u64) as usize;
                    text.splice(to..to, piece);
                }
                _ => text.truncate(at),
            }
        }
        let text: String = text.into_iter().collect();
        let parsed = parse_exposition(&text);
        let lines = text.split('\n').count();
        assert!(parsed.samples.len() + parsed.problems.len() <= lines);
    }
    // Random bytes, as lossy text.
    for _ in 0..500 {
        let bytes: Vec<u8> = (0..rng.below(300)).map(|_| rng.below(256) as u8).collect();
        let _ = parse_exposition(&String::from_utf8_lossy(&bytes));
    }
}

/// A server that answers every request with `body` (HTTP/1.1, then closes), for `requests`
/// requests; its base URL.
fn answering(body: String, requests: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut head);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

/// A query from `start` to `end` every `step_ms`, over a 1-minute rate window, with the default
/// capacities, no platform bandwidths and instances under their own names.
fn history_query(start: i64, end: i64, step_ms: i64) -> HistoryQuery {
    HistoryQuery {
        start,
        end,
        step_ms,
        rate_window: "1m".into(),
        capacity: Capacity::DEFAULT,
        network_by_device: BTreeMap::new(),
        devices: BTreeMap::new(),
        timeout: Duration::from_secs(10),
    }
}

#[test]
fn history_points_outside_the_asked_range_are_skipped() {
    // One answer for every resource's query: a point before the range, two in it, one after.
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"instance":"n:9100"},"values":[[99,"0.1"],[100,"0.2"],[110,"0.3"],[121,"0.4"]]}]}}"#;
    let url = answering(body.to_string(), Resource::ALL.len());
    let query = history_query(100_000, 120_000, 10_000);
    let history = read_history(&url, &query).expect("answers");
    assert!(history
        .records
        .iter()
        .all(|r| (100_000..=120_000).contains(&r.time)));
    assert_eq!(history.records.len(), 2 * Resource::ALL.len());
    assert_eq!(history.skipped_points, 2 * Resource::ALL.len() as u64);
}

/// Network history is divided by each device's own bandwidth (the platform's), not one for
/// all: the query cannot tell the instances apart, so the division comes after naming.
#[test]
fn history_network_is_a_fraction_of_each_devices_bandwidth() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"instance":"a:9100"},"values":[[100,"200"]]},
        {"metric":{"instance":"b:9100"},"values":[[100,"200"]]}]}}"#;
    let url = answering(body.to_string(), Resource::ALL.len());
    let query = HistoryQuery {
        capacity: Capacity {
            disk_bytes_per_s: 200e6,
            network_bytes_per_s: 1_000.0,
        },
        network_by_device: BTreeMap::from([("big".to_string(), 400.0)]),
        devices: BTreeMap::from([("a:9100".to_string(), "big".to_string())]),
        ..history_query(100_000, 100_000, 10_000)
    };
    let history = read_history(&url, &query).expect("answers");
    let network: BTreeMap<String, f64> = history
        .records
        .iter()
        .filter(|r| r.resource == Resource::Network)
        .map(|r| (r.device.clone(), r.value))
        .collect();
    assert_eq!(network.get("big"), Some(&0.5));
    assert_eq!(network.get("b:9100"), Some(&0.2));
}

// ---- the real thing ----

/// Kills the servers the test started, however it ends.
struct Servers {
    children: Vec<Child>,
    dir: Option<PathBuf>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// node_exporter's and Prometheus' URLs, and the servers to stop afterwards.
struct Live {
    node_exporter: String,
    prometheus: String,
    _servers: Servers,
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("address").port()
}

fn wait_ready(url: &str, what: &str) {
    let url = HttpUrl::parse(url).expect("url");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match get(&url, Duration::from_secs(2)) {
            Ok(response) if response.status == 200 => return,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "{what} not ready at {url}: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// The servers of `.ci/run`, or ours, or `None` (and the "skipped" line) when neither is there.
fn live() -> Option<Live> {
    let required = std::env::var("AUGUR_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1");
    if let (Ok(node_exporter), Ok(prometheus)) = (
        std::env::var("AUGUR_NODE_EXPORTER_URL"),
        std::env::var("AUGUR_PROMETHEUS_URL"),
    ) {
        return Some(Live {
            node_exporter,
            prometheus,
            _servers: Servers {
                children: Vec::new(),
                dir: None,
            },
        });
    }
    let exporter = on_path(&["prometheus-node-exporter", "node_exporter"]);
    let server = on_path(&["prometheus"]);
    let (Some(exporter), Some(server)) = (exporter, server) else {
        let message = "skipped: the live Prometheus test needs AUGUR_NODE_EXPORTER_URL and \
                       AUGUR_PROMETHEUS_URL (set by .ci/run), or prometheus-node-exporter and \
                       prometheus on PATH (apt-get install prometheus prometheus-node-exporter)";
        let _ = writeln!(std::io::stderr(), "{message}");
        assert!(!required, "AUGUR_REQUIRE_PROMETHEUS=1 but {message}");
        return None;
    };
    let dir = std::env::temp_dir().join(format!("augur-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let mut servers = Servers {
        children: Vec::new(),
        dir: Some(dir.clone()),
    };
    let (exporter_port, server_port) = (free_port(), free_port());
    let spawn = |program: &Path, args: &[String], log: &str| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(log)).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()))
    };
    servers.children.push(spawn(
        &exporter,
        &[format!("--web.listen-address=127.0.0.1:{exporter_port}")],
        "node_exporter.log",
    ));
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
        ),
    )
    .expect("write prometheus.yml");
    servers.children.push(spawn(
        &server,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{server_port}"),
        ],
        "prometheus.log",
    ));
    let node_exporter = format!("http://127.0.0.1:{exporter_port}");
    let prometheus = format!("http://127.0.0.1:{server_port}");
    wait_ready(&format!("{node_exporter}/metrics"), "node_exporter");
    wait_ready(&format!("{prometheus}/-/ready"), "prometheus");
    Some(Live {
        node_exporter,
        prometheus,
        _servers: servers,
    })
}

#[test]
fn live_node_exporter_and_prometheus() {
    let Some(live) = live() else { return };
    let dir = std::env::temp_dir().join(format!("augur-prom-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");

    // 1. The real page parses without a problem and its counters give utilisation in [0, 1].
    let page_url = HttpUrl::parse(&format!(
        "{}/metrics",
        live.node_exporter.trim_end_matches('/')
    ))
    .expect("node_exporter URL");
    let page = get(&page_url, Duration::from_secs(10)).expect("scrape node_exporter");
    assert_eq!(page.status, 200);
    let parsed = parse_exposition(&page.text());
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    assert!(parsed.samples_named("node_cpu_seconds_total").count() > 0);
    let mut scraper: Box<dyn Collector> = Box::new(
        NodeExporterScraper::new(
            &live.node_exporter,
            Some("node".into()),
            Capacity::DEFAULT,
            Duration::from_secs(10),
        )
        .expect("scraper"),
    );
    let t0 = augur::collect::now_ms();
    let first = scraper.sample(t0).expect("first scrape");
    assert_eq!(
        first.records.iter().map(|r| r.resource).collect::<Vec<_>>(),
        vec![Resource::Memory]
    );
    std::thread::sleep(Duration::from_millis(1100));
    let second = scraper
        .sample(augur::collect::now_ms())
        .expect("second scrape");
    for resource in [Resource::Cpu, Resource::Memory] {
        let value = value_of(&second.records, resource)
            .unwrap_or_else(|| panic!("{resource:?}: {:?}", second.missing));
        assert!((0.0..=1.0).contains(&value), "{resource:?} {value}");
    }
    assert!(second
        .records
        .iter()
        .all(|r| r.value.is_finite() && r.value >= 0.0));

    // 2. `augur collect --node-exporter` for 3 s: two samples per resource, accepted by run.
    let scraped = dir.join("scraped.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "collect",
            "--node-exporter",
            &live.node_exporter,
            "--device",
            "node",
        ])
        .args(["--duration", "3s", "--interval", "1s", "--out"])
        .arg(&scraped)
        .output()
        .expect("run augur collect");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let counts = per_resource(&collected_lines(&scraped));
    for resource in ["cpu", "memory", "disk", "network"] {
        assert!(
            counts.get(resource).copied().unwrap_or(0) >= 2,
            "{resource}: {counts:?}"
        );
    }
    assert_run_accepts(&scraped, &["node"], &dir);

    // 3. Prometheus has been scraping node_exporter: its history has points, in range.
    let instance = HttpUrl::parse(&live.node_exporter)
        .expect("node_exporter URL")
        .address();
    let devices = BTreeMap::from([(instance.clone(), "node".to_string())]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let history = loop {
        let now = augur::collect::now_ms();
        let query = HistoryQuery {
            devices: devices.clone(),
            ..history_query(now - 120_000, now, 1_000)
        };
        let history = read_history(&live.prometheus, &query).expect("query_range");
        let cpu_points = history
            .records
            .iter()
            .filter(|r| r.device == "node" && r.resource == Resource::Cpu)
            .count();
        if cpu_points >= 2 {
            break history;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus at {} has no CPU history for {instance} after 60 s",
            live.prometheus
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    for resource in [Resource::Cpu, Resource::Memory] {
        let values: Vec<f64> = history
            .records
            .iter()
            .filter(|r| r.device == "node" && r.resource == resource)
            .map(|r| r.value)
            .collect();
        assert!(values.len() >= 2, "{resource:?}: {values:?}");
        assert!(values.iter().all(|v| (0.0..=1.0).contains(v)), "{values:?}");
    }
    assert!(history.records.windows(2).all(|w| w[0].time <= w[1].time));

    // 4. A bad query gets the API's own error back.
    let base = HttpUrl::parse(&live.prometheus).expect("Prometheus URL");
    let bad = "rate(node_cpu_seconds_total[1m]";
    let url = base.with_path(&format!(
        "{}/api/v1/query_range?{}",
        base.base_path(),
        query_string(&[("query", bad), ("start", "1"), ("end", "2"), ("step", "1")])
    ));
    let response = get(&url, Duration::from_secs(10)).expect("query");
    assert_eq!(response.status, 400);
    let error =
        parse_query_range(&response.text(), bad, Resource::Cpu, &devices).expect_err("bad query");
    assert!(matches!(error, PromError::Api { .. }), "{error}");

    // 5. `augur collect --prometheus` writes the history in the format run accepts.
    let history_file = dir.join("history.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["collect", "--prometheus", &live.prometheus])
        .args(["--start", "now-2m", "--step", "1s"])
        .args(["--device", &format!("{instance}=node"), "--out"])
        .arg(&history_file)
        .output()
        .expect("run augur collect --prometheus");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = collected_lines(&history_file);
    let counts = per_resource(&lines);
    assert!(counts.get("cpu").copied().unwrap_or(0) >= 2, "{counts:?}");
    assert!(lines.iter().any(|(_, device, _, _)| device == "node"));
    let devices_seen: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|(_, device, _, _)| device.as_str())
        .collect();
    assert_run_accepts(
        &history_file,
        &devices_seen.into_iter().collect::<Vec<_>>(),
        &dir,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
