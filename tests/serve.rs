//! `augur serve` end to end: the built binary on a free loopback port, fed over HTTP with a
//! std-only client; its map, change stream, predictions and scale-out advice against what
//! `augur run` writes for the same inputs; bad requests; the token; shutdown; the Kubernetes
//! extender on recorded request bodies.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::serve_support::{http, read_response, repo, Server, SERIES, WORKFLOW};
use serde_json::Value;

const TOKEN: &str = "test-token-0123456789abcdef";

fn scratch(name: &str) -> augur::testing::Scratch {
    crate::serve_support::scratch("serve", name)
}

/// `augur serve` over the demo's platform.
fn demo_server(extra: &[&str]) -> Server {
    let platform = repo("data/demo/platform.toml");
    let mut args = vec!["--platform", platform.to_str().expect("a UTF-8 path")];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Subscribes to an event stream; the `data:` lines arrive on the receiver until the server
/// closes the stream. Returns once the subscription is in place.
fn subscribe(addr: &str, path: &str) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("request");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (data_tx, data_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stream);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            let text = line.trim_end().to_string();
            line.clear();
            if text.starts_with("HTTP/1.1 ") {
                assert!(text.contains(" 200 "), "{text}");
            }
            if text == ": subscribed" {
                let _ = ready_tx.send(());
            }
            if let Some(data) = text.strip_prefix("data: ") {
                let _ = data_tx.send(data.to_string());
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the stream starts");
    (data_rx, reader)
}

/// The demo's four NAB CPU series as one `long` CSV in time order (fractions of capacity).
fn demo_metrics_long() -> String {
    let mut rows: Vec<(String, &str, f64)> = Vec::new();
    for (file, device) in SERIES {
        let text = std::fs::read_to_string(repo("data/demo/metrics").join(file)).expect("series");
        for line in text.lines().skip(1) {
            let (time, value) = line.split_once(',').expect("two columns");
            rows.push((
                time.to_string(),
                device,
                value.parse::<f64>().expect("value") / 100.0,
            ));
        }
    }
    // Stable: equal times keep the series order.
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("time,device,resource,value\n");
    for (time, device, value) in rows {
        out.push_str(&format!("{time},{device},cpu,{value}\n"));
    }
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect()
}

/// Parses the Prometheus text format: `name{labels}` → value.
fn prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().expect("a number");
        samples.insert(name.to_string(), value);
    }
    samples
}

#[test]
fn serve_over_http_matches_run_on_the_demo() {
    let dir = scratch("e2e");
    let metrics = dir.join("metrics.csv");
    std::fs::write(&metrics, demo_metrics_long()).expect("write metrics");
    let events_text = std::fs::read_to_string(repo("data/demo/events.jsonl")).expect("events");
    // The demo's log ends with two records naming a device and a task that do not exist.
    let good_events: String = events_text
        .lines()
        .filter(|line| !line.contains("gpu-z") && !line.contains("no-such-task"))
        .map(|line| format!("{line}\n"))
        .collect();

    // What `augur run` writes for the same inputs (the whole event log: it rejects the two).
    let out = dir.join("run");
    let run = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["run", "--quiet", "--workflow"])
        .arg(repo(&format!("data/demo/{WORKFLOW}.json")))
        .arg("--platform")
        .arg(repo("data/demo/platform.toml"))
        .arg("--metrics")
        .arg(&metrics)
        .arg("--events")
        .arg(repo("data/demo/events.jsonl"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("augur run");
    assert!(run.success());

    // A lateness longer than the log: nothing is applied before the flush, which then applies
    // everything in event time, as `run` reads its files.
    let server = demo_server(&["--lateness", "1e9"]);
    let (changes, changes_reader) = subscribe(&server.addr, "/v1/changes");
    let (advice, advice_reader) = subscribe(&server.addr, "/v1/scaleout/stream");

    let workflow = std::fs::read(repo(&format!("data/demo/{WORKFLOW}.json"))).expect("workflow");
    let (status, body) = server.call("POST", &format!("/v1/workflows?name={WORKFLOW}"), &workflow);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 103);
    assert_eq!(body.get("notes"), None, "every task has a runtime: {body}");
    let (status, body) = server.call(
        "POST",
        "/v1/metrics",
        &std::fs::read(&metrics).expect("metrics"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 16128);

    // The whole log is refused for its two bad records, and nothing of it is applied.
    let (_, before) = server.call("GET", "/v1/status", b"");
    let (status, body) = server.call("POST", "/v1/events", events_text.as_bytes());
    assert_eq!(status, 422, "{body}");
    let lines: Vec<u64> = body["rejections"]
        .as_array()
        .expect("rejections")
        .iter()
        .map(|r| r["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, vec![122, 123]);
    let (_, after) = server.call("GET", "/v1/status", b"");
    assert_eq!(before["buffered_records"], after["buffered_records"]);
    assert_eq!(after["accepted"]["event"], Value::Null);

    let (status, body) = server.call("POST", "/v1/events", good_events.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 121);

    let (status, flushed) = server.call("POST", "/v1/flush", b"");
    assert_eq!(status, 200, "{flushed}");
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(flushed["epochs"], summary["epochs"]);
    assert_eq!(flushed["buffered_records"], 0);
    assert_eq!(flushed["tasks_placed"], summary["tasks_placed"]);
    assert_eq!(flushed["tasks_moved"], summary["tasks_moved"]);

    // The map, whole, per workflow and per task.
    let final_map = read_json(&out.join("final_map.json"));
    let (status, map) = server.call("GET", "/v1/map", b"");
    assert_eq!(status, 200);
    assert_eq!(map, final_map);
    let (_, one) = server.call("GET", &format!("/v1/map/{WORKFLOW}"), b"");
    assert_eq!(one, final_map[WORKFLOW]);
    let (task, device) = final_map[WORKFLOW]
        .as_object()
        .and_then(|tasks| tasks.iter().next())
        .expect("a mapped task");
    let (_, entry) = server.call("GET", &format!("/v1/map/{WORKFLOW}/{task}"), b"");
    assert_eq!(&entry["device"], device);

    // Predictions per device are `run`'s forecasts.json.
    let (_, predictions) = server.call("GET", "/v1/predictions", b"");
    assert_eq!(predictions, read_json(&out.join("forecasts.json")));
    let (_, one) = server.call("GET", "/v1/predictions/cloud-c", b"");
    assert_eq!(one, predictions["cloud-c"]);
    let (status, anomalies) = server.call("GET", "/v1/anomalies", b"");
    assert_eq!(status, 200);
    assert!(anomalies["anomalies"].is_array());

    // Scale-out advice: one entry per pool, never below the busy devices.
    let (_, scaleout) = server.call("GET", "/v1/scaleout", b"");
    let pools = scaleout["pools"].as_array().expect("pools");
    assert_eq!(pools.len(), 3, "{scaleout}");
    for pool in pools {
        assert!(
            pool["instances"].as_u64() >= pool["busy"].as_u64(),
            "{pool}"
        );
        assert!(
            pool["instances"].as_u64() >= pool["needed"].as_u64(),
            "{pool}"
        );
    }

    // /metrics parses and agrees with the status.
    let (status, text) = http(&server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let samples = prometheus(&String::from_utf8(text).expect("utf-8"));
    let epochs = summary["epochs"].as_f64().expect("epochs");
    assert_eq!(samples["augur_epochs_total"], epochs);
    assert_eq!(samples["augur_update_latency_seconds_count"], epochs);
    assert_eq!(
        samples["augur_update_latency_seconds_bucket{le=\"+Inf\"}"],
        epochs
    );
    assert_eq!(
        samples["augur_records_accepted_total{kind=\"metric\"}"],
        16128.0
    );
    assert_eq!(
        samples["augur_records_accepted_total{kind=\"event\"}"],
        121.0
    );
    assert_eq!(samples["augur_records_rejected_total{kind=\"event\"}"], 2.0);
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|(name, _)| name.starts_with("augur_update_latency_seconds_bucket"))
        .map(|(_, value)| *value)
        .collect();
    assert_eq!(buckets.len(), 15);

    // Stop cleanly: buffered work applied, streams closed, exit 0.
    let (status, _) = server.call("POST", "/v1/shutdown", b"");
    assert_eq!(status, 202);
    assert!(server.wait(Duration::from_secs(60)).success());
    changes_reader.join().expect("changes stream");
    advice_reader.join().expect("advice stream");

    // The change stream is partition.jsonl, epoch by epoch; the advice stream is scaleout.jsonl.
    let streamed: Vec<Value> = changes
        .try_iter()
        .flat_map(|data| {
            let event: Value = serde_json::from_str(&data).expect("event json");
            event["changes"].as_array().cloned().unwrap_or_default()
        })
        .collect();
    assert_eq!(streamed, jsonl(&out.join("partition.jsonl")));
    let advised: Vec<Value> = advice
        .try_iter()
        .map(|data| serde_json::from_str(&data).expect("advice json"))
        .collect();
    assert!(!advised.is_empty());
    assert_eq!(advised, jsonl(&out.join("scaleout.jsonl")));
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let server = demo_server(&["--max-body-bytes", "4096", "--lateness", "0"]);
    // The state a refused request must leave alone (the refusal counters do move).
    let status_now = || {
        let mut status = server.call("GET", "/v1/status", b"").1;
        if let Some(object) = status.as_object_mut() {
            object.remove("rejected");
        }
        status
    };
    let start = status_now();

    assert_eq!(server.call("GET", "/v1/nothing", b"").0, 404);
    // Parameters an endpoint does not read, or given twice: a typo is not ignored.
    for target in [
        "/v1/workflows?name=w&arival=1392422400",
        "/v1/workflows?name=a&name=b",
    ] {
        let (status, body) = server.call("POST", target, b"{}");
        assert_eq!(status, 400, "{target}: {body}");
    }
    // Where an endpoint reads none, they change nothing (a dashboard's cache-buster).
    assert_eq!(server.call("GET", "/v1/map?_=1700000000", b"").0, 200);
    assert_eq!(server.call("GET", "/v1/metrics", b"").0, 405);
    assert_eq!(server.call("POST", "/v1/map", b"").0, 405);
    assert_eq!(
        server.call("POST", "/v1/workflows", b"{}").0,
        400,
        "no name"
    );
    assert_eq!(
        server
            .call("POST", "/v1/workflows?name=w&arrival=soon", b"{}")
            .0,
        400
    );
    assert_eq!(
        server.call("POST", "/v1/workflows?name=a%2Fb", b"{}").0,
        400
    );
    assert_eq!(
        server.call("POST", "/v1/workflows?name=w", b"{not json").0,
        422
    );
    assert_eq!(
        server.call("POST", "/v1/workflows?name=w", b"\xff\xfe").0,
        422
    );
    let (status, body) = http(
        &server.addr,
        "POST",
        "/v1/metrics",
        &[("Content-Type", "image/png")],
        b"time,device,resource,value\n1,edge-a,cpu,0.5\n",
    );
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));
    // One bad line refuses the whole body.
    let (status, body) = server.call(
        "POST",
        "/v1/metrics",
        b"time,device,resource,value\n10,edge-a,cpu,0.5\n11,nowhere,cpu,0.5\n",
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["rejections"][0]["kind"], "unknown_device");
    // Each bad record is listed, at its line in the body (the header and blank lines count),
    // whether the parser or the engine refused it: an unknown device was reported at its
    // place among the records (line 2 for line 4), and a bad time hid every other problem.
    let (status, body) = server.call(
        "POST",
        "/v1/metrics",
        b"time,device,resource,value\n10,edge-a,cpu,0.5\n\n11,gpu-z,cpu,0.5\nsoon,edge-a,cpu,0.5\n",
    );
    assert_eq!(status, 422, "{body}");
    let listed: Vec<(Value, Value)> = body["rejections"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| (r["line"].clone(), r["kind"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (Value::from(4), Value::from("unknown_device")),
            (Value::from(5), Value::from("parse"))
        ],
        "{body}"
    );
    let (status, body) = server.call(
        "POST",
        "/v1/events",
        b"{\"time\":20,\"kind\":\"start\",\"workflow\":\"nope\",\"task\":\"t\",\"device\":\"edge-a\"}\n{\"time\":20,\"kind\":\"explode\"}\n",
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["rejections"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let (status, _) = server.call(
        "POST",
        "/v1/metrics",
        b"time,device,resource,value\n10,edge-a,cpu,0.5\n11,edge-a,cpu,banana\n",
    );
    assert_eq!(status, 422);
    let (status, _) = server.call("POST", "/v1/events", b"{\"time\":1,\"kind\":\"start\",\"workflow\":\"nope\",\"task\":\"t\",\"device\":\"edge-a\"}\n");
    assert_eq!(status, 422);
    // Too large: refused before the body is read.
    let big = vec![b'x'; 8192];
    let (status, body) = server.call("POST", "/v1/metrics", &big);
    assert_eq!(status, 413, "{body}");
    // A body without a Content-Length is refused, not taken as an empty body.
    let mut raw = TcpStream::connect(&server.addr).expect("connect");
    raw.write_all(
        b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\n\r\ntime,device,resource,value\n10,edge-a,cpu,0.5\n",
    )
    .expect("write");
    assert_eq!(read_response(&mut raw).0, 411);
    // A time far ahead of the clock (milliseconds sent as seconds: the year 57,881, past the
    // readers' year-9999 bound; and the year 2500, within it) would freeze the service's time.
    for time in ["1764400000000", "16725225600"] {
        let body = format!("time,device,resource,value\n{time},edge-a,cpu,0.5\n");
        let (status, body) = server.call("POST", "/v1/metrics", body.as_bytes());
        assert_eq!(status, 422, "{body}");
    }
    assert_eq!(status_now(), start, "refused requests changed nothing");
    // An endpoint without a body needs no Content-Length (`curl -X POST` sends none).
    let mut raw = TcpStream::connect(&server.addr).expect("connect");
    raw.write_all(b"POST /v1/flush HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    assert_eq!(read_response(&mut raw).0, 200);
    // A request line that is not HTTP.
    let mut raw = TcpStream::connect(&server.addr).expect("connect");
    raw.write_all(b"HELLO\r\n\r\n").expect("write");
    assert_eq!(read_response(&mut raw).0, 400);

    // Once time has moved on, earlier records are refused.
    let (status, _) = server.call(
        "POST",
        "/v1/metrics",
        b"time,device,resource,value\n100,edge-a,cpu,0.5\n",
    );
    assert_eq!(status, 200);
    assert_eq!(server.call("POST", "/v1/flush", b"").1["time"], 100);
    let (status, body) = server.call(
        "POST",
        "/v1/metrics",
        b"time,device,resource,value\n100,edge-a,cpu,0.5\n",
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["rejections"][0]["kind"], "out_of_order");

    // A workflow name is taken once.
    let workflow = std::fs::read(repo(&format!("data/demo/{WORKFLOW}.json"))).expect("workflow");
    assert_eq!(
        server.call("POST", "/v1/workflows?name=w", &workflow).0,
        413,
        "over 4096 bytes"
    );
    drop(server);

    let server = demo_server(&[]);
    assert_eq!(
        server.call("POST", "/v1/workflows?name=w", &workflow).0,
        200
    );
    let (status, body) = server.call("POST", "/v1/workflows?name=w", &workflow);
    assert_eq!(status, 409, "{body}");
    assert_eq!(server.call("GET", "/v1/status", b"").1["workflows"], 1);
    assert_eq!(server.call("GET", "/v1/map/nope", b"").0, 404);
    assert_eq!(server.call("GET", "/v1/map/w/nope", b"").0, 404);
    let (status, missing) = server.call("GET", "/v1/map/nowf/a", b"");
    assert_eq!(status, 404);
    assert_eq!(missing["error"], "no workflow named 'nowf'", "{missing}");
    assert_eq!(server.call("GET", "/v1/predictions/nope", b"").0, 404);
    // A task id holding a '/' is asked for percent-encoded, and stays one segment of the path
    // (decoded before routing, it was four segments: no such endpoint).
    let slashed = br#"{"name":"s","schemaVersion":"1.5","workflow":{"specification":{"tasks":[
        {"id":"a/b","name":"a/b","parents":[],"children":[],"inputFiles":[],"outputFiles":[]}],
        "files":[]},"execution":{"makespanInSeconds":1.0,"executedAt":"20240101T000000+0000",
        "machines":[],"tasks":[{"id":"a/b","runtimeInSeconds":1.0,"coreCount":1}]}}}"#;
    assert_eq!(server.call("POST", "/v1/workflows?name=s", slashed).0, 200);
    assert_eq!(server.call("POST", "/v1/flush", b"").0, 200);
    let (status, entry) = server.call("GET", "/v1/map/s/a%2Fb", b"");
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["task"], "a/b");
    assert!(entry["device"].is_string(), "{entry}");
    // A path that fits no endpoint is quoted as sent, not decoded into other segments.
    let (status, refused) = server.call("GET", "/v1/map/s/a%2Fb/c", b"");
    assert_eq!(status, 404, "{refused}");
    assert_eq!(refused["error"], "no such endpoint: /v1/map/s/a%2Fb/c");
    assert_eq!(server.call("POST", "/v1/shutdown", b"").0, 202);
    assert!(server.wait(Duration::from_secs(60)).success());
}

/// A body of many bad lines is refused with its first rejections listed and all of them
/// counted: a rejection built and answered for every line of a 66 MB body ran the server out
/// of memory.
#[test]
fn a_body_of_many_bad_lines_lists_the_first_and_counts_them_all() {
    let server = demo_server(&[]);
    let mut body = String::from("time,device,resource,value\n");
    for _ in 0..5_000 {
        body.push_str("x\n");
    }
    // And one good line, refused with the body.
    body.push_str("10,edge-a,cpu,0.5\n");
    let (status, reply) = server.call("POST", "/v1/metrics", body.as_bytes());
    assert_eq!(status, 422, "{reply}");
    let listed = reply["rejections"].as_array().expect("a list");
    assert_eq!(listed.len(), 1_000);
    assert_eq!(listed[0]["line"], 2);
    assert_eq!(listed[999]["line"], 1_001);
    assert_eq!(reply["problems"], 5_000);
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("5000 problem(s) found, the first 1000 listed")),
        "{}",
        reply["error"]
    );
    let (_, text) = http(&server.addr, "GET", "/metrics", &[], b"");
    let samples = prometheus(&String::from_utf8(text).expect("utf-8"));
    assert_eq!(
        samples["augur_records_rejected_total{kind=\"metric\"}"],
        5_000.0
    );
    // A short list is still the whole list.
    let (status, reply) = server.call("POST", "/v1/events", b"{\"time\":1,\"kind\":\"explode\"}\n");
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["problems"], 1);
    assert_eq!(reply["rejections"].as_array().map(Vec::len), Some(1));
}

#[test]
fn token_is_required_when_set_and_off_loopback() {
    let server = demo_server(&["--token", TOKEN]);
    assert_eq!(server.call("GET", "/v1/status", b"").0, 401);
    let wrong = http(
        &server.addr,
        "GET",
        "/v1/status",
        &[("Authorization", "Bearer not-the-token-at-all")],
        b"",
    );
    assert_eq!(wrong.0, 401);
    let bearer = format!("Bearer {TOKEN}");
    let right = http(
        &server.addr,
        "GET",
        "/v1/status",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(right.0, 200);
    // The scheme is case-insensitive.
    let lower = format!("bearer {TOKEN}");
    let lowered = http(
        &server.addr,
        "GET",
        "/v1/status",
        &[("Authorization", &lower)],
        b"",
    );
    assert_eq!(lowered.0, 200);
    // SIGTERM drains and exits 0.
    let killed = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(server.wait(Duration::from_secs(60)).success());

    // Reachable from other machines without a token: refused at start, a usage error.
    let refused = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["serve", "--listen", "0.0.0.0:0", "--platform"])
        .arg(repo("data/demo/platform.toml"))
        .env_remove("AUGUR_TOKEN")
        .output()
        .expect("augur serve");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--token"));
}

#[test]
fn streams_hold_no_connection_slot_and_leave_when_their_clients_do() {
    // 70 dashboards on the scale-out stream took every one of the 64 connection slots, and
    // every producer was answered 503; and a stream whose client had left stayed subscribed
    // (with its memory) until the next event of its topic, which an idle service never sent.
    let server = demo_server(&[]);
    let streams: Vec<TcpStream> = (0..70)
        .map(|_| {
            let mut stream = TcpStream::connect(&server.addr).expect("connect");
            write!(stream, "GET /v1/scaleout/stream HTTP/1.1\r\n\r\n").expect("request");
            let mut first = [0u8; 12];
            stream.read_exact(&mut first).expect("the stream's head");
            assert_eq!(&first, b"HTTP/1.1 200", "a stream is served");
            stream
        })
        .collect();
    let status = server.ok("GET", "/v1/status", b"");
    assert_eq!(status["stream_subscribers"], 70, "{status}");
    // Connections that send nothing wait for their head apart from the request slots: 70 of
    // them took every slot for the head's 20 s, and every real request was refused.
    let idle: Vec<TcpStream> = (0..70)
        .map(|_| TcpStream::connect(&server.addr).expect("connect"))
        .collect();
    assert_eq!(server.call("GET", "/v1/status", b"").0, 200);
    drop(idle);
    drop(streams);
    // Each writer finds its client gone within two keep-alives (5 s each) and leaves.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = server.ok("GET", "/v1/status", b"");
        if status["stream_subscribers"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn head_is_answered_where_get_is_and_compressed_bodies_are_refused() {
    let server = demo_server(&[]);
    let mut stream = TcpStream::connect(&server.addr).expect("connect");
    write!(stream, "HEAD /v1/status HTTP/1.1\r\n\r\n").expect("request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("answer");
    assert!(raw.starts_with("HTTP/1.1 200 "), "{raw}");
    let length: usize = raw
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .and_then(|n| n.parse().ok())
        .expect("a Content-Length");
    assert!(length > 0 && raw.ends_with("\r\n\r\n"), "no body: {raw}");
    let (status, _) = server.call("HEAD", "/v1/metrics", b"");
    assert_eq!(status, 405);
    let gzip = http(
        &server.addr,
        "POST",
        "/v1/metrics",
        &[("Content-Encoding", "gzip")],
        b"\x1f\x8b\x08\x00",
    );
    assert_eq!(gzip.0, 415, "{}", String::from_utf8_lossy(&gzip.1));
    // Refused before any handler ran (a malformed Content-Length), and counted all the same.
    let mut stream = TcpStream::connect(&server.addr).expect("connect");
    write!(
        stream,
        "POST /v1/metrics HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello"
    )
    .expect("send");
    assert_eq!(read_response(&mut stream).0, 400);
    let (_, metrics) = http(&server.addr, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("augur_http_requests_total{code=\"400\"} 1"),
        "{metrics}"
    );
}

/// A platform whose devices run steadily at known loads: edge-b nearly full.
fn extender_server() -> Server {
    let server = demo_server(&["--lateness", "0"]);
    let mut body = String::from("time,device,resource,value\n");
    for minute in 0..20 {
        for (device, load) in [
            ("edge-a", 0.1),
            ("edge-b", 0.95),
            ("cloud-c", 0.2),
            ("cloud-d", 0.5),
        ] {
            body.push_str(&format!(
                "{},{device},cpu,{load}\n",
                1_000_000 + minute * 60
            ));
        }
    }
    assert_eq!(server.call("POST", "/v1/metrics", body.as_bytes()).0, 200);
    assert_eq!(server.call("POST", "/v1/flush", b"").0, 200);
    server
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo("data/k8s").join(name)).expect("fixture")
}

#[test]
fn extender_filter_and_prioritize_on_recorded_requests() {
    let server = extender_server();

    let (status, result) = server.call("POST", "/filter", &fixture("filter-nodenames.json"));
    assert_eq!(status, 200, "{result}");
    assert_eq!(
        result["nodenames"],
        serde_json::json!(["edge-a", "cloud-c", "cloud-d"])
    );
    let failed = result["failedNodes"].as_object().expect("failedNodes");
    assert_eq!(failed.len(), 2, "{result}");
    assert!(failed["edge-b"]
        .as_str()
        .is_some_and(|r| r.contains("predicted utilisation")));
    assert!(failed["gpu-z"]
        .as_str()
        .is_some_and(|r| r.contains("not a device")));
    assert_eq!(result["error"], "");

    // Nodes given whole come back whole.
    let (status, result) = server.call("POST", "/filter", &fixture("filter-nodes.json"));
    assert_eq!(status, 200, "{result}");
    let items = result["nodes"]["items"].as_array().expect("items");
    let names: Vec<&str> = items
        .iter()
        .filter_map(|node| node["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["edge-a", "cloud-c", "cloud-d"]);
    assert_eq!(items[0]["status"]["capacity"]["cpu"], "8");
    assert!(result.get("nodenames").is_none());

    // A pod larger than most nodes fits only the big one.
    let (_, result) = server.call("POST", "/filter", &fixture("filter-oversized.json"));
    assert_eq!(result["nodenames"], serde_json::json!(["cloud-c"]));
    assert!(result["failedNodes"]["cloud-d"]
        .as_str()
        .is_some_and(|r| r.contains("asks for 24 cores")));

    let (status, scores) =
        server.call("POST", "/prioritize", &fixture("prioritize-nodenames.json"));
    assert_eq!(status, 200, "{scores}");
    let scores: Vec<(String, i64)> = scores
        .as_array()
        .expect("HostPriorityList")
        .iter()
        .map(|h| {
            (
                h["host"].as_str().expect("host").to_string(),
                h["score"].as_i64().expect("score"),
            )
        })
        .collect();
    let hosts: Vec<&str> = scores.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hosts, ["edge-a", "edge-b", "cloud-c", "cloud-d", "gpu-z"]);
    let score = |host: &str| scores.iter().find(|(h, _)| h == host).map(|(_, s)| *s);
    assert!(scores.iter().all(|(_, s)| (0..=10).contains(s)));
    assert_eq!(score("edge-b"), Some(0), "nearly full");
    assert_eq!(score("gpu-z"), Some(0), "unknown");
    assert!(score("cloud-c") >= score("edge-a"), "{scores:?}");
    assert!(score("edge-a") > score("cloud-d"), "{scores:?}");
    assert!(score("cloud-d") > score("edge-b"), "{scores:?}");

    // Bad bodies are 4xx.
    assert_eq!(server.call("POST", "/filter", b"{\"pod\":").0, 400);
    assert_eq!(
        server.call("POST", "/prioritize", b"{\"pod\":{}}").0,
        400,
        "no candidates"
    );
    let bad_quantity = br#"{"pod":{"spec":{"containers":[{"resources":{"requests":{"cpu":"lots"}}}]}},"nodenames":["edge-a"]}"#;
    assert_eq!(server.call("POST", "/filter", bad_quantity).0, 400);
    // Go's decoder is case-insensitive; so is augur on the three top-level keys.
    let (status, result) = server.call(
        "POST",
        "/filter",
        br#"{"Pod":{"spec":{"containers":[]}},"Nodes":null,"NodeNames":["edge-a","gpu-z"]}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(result["nodenames"], serde_json::json!(["edge-a"]));
    // No pod: nothing to place (it was scored as a pod asking for nothing).
    let no_pod = br#"{"Pod":null,"Nodes":null,"NodeNames":["edge-a"]}"#;
    assert_eq!(server.call("POST", "/filter", no_pod).0, 400);
}

#[test]
fn epochs_close_as_the_watermark_passes() {
    let server = demo_server(&["--lateness", "60"]);
    let post = |times: &[i64]| {
        let mut body = String::from("time,device,resource,value\n");
        for time in times {
            body.push_str(&format!("{time},edge-a,cpu,0.5\n"));
        }
        server.call("POST", "/v1/metrics", body.as_bytes())
    };
    // Held: nothing is 60 s behind the newest time yet.
    let (status, body) = post(&[1000, 1030]);
    assert_eq!(
        (status, &body["released_epochs"]),
        (200, &Value::from(0)),
        "{body}"
    );
    assert_eq!(body["buffered"], 2);
    // The newest moves to 1100: the watermark 1040 releases 1000 and 1030, one epoch each.
    let (_, body) = post(&[1100]);
    assert_eq!(body["released_epochs"], 2, "{body}");
    assert_eq!(body["buffered"], 1);
    // Out of order within the lateness: held and applied in time order.
    assert_eq!(post(&[1090]).0, 200);
    // At or before the last applied time, or beyond the lateness: refused whole.
    let (status, body) = post(&[1095, 1030]);
    assert_eq!(status, 422, "{body}");
    assert!(body["rejections"][0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("already applied")));
    assert_eq!(post(&[1035]).0, 422);
    // A workflow arriving at 1095 waits for its time.
    let workflow = std::fs::read(repo(&format!("data/demo/{WORKFLOW}.json"))).expect("workflow");
    let (status, body) = server.call(
        "POST",
        &format!("/v1/workflows?name={WORKFLOW}&arrival=1095"),
        &workflow,
    );
    assert_eq!(status, 200, "{body}");
    let (_, status) = server.call("GET", "/v1/status", b"");
    assert_eq!(status["tasks_pending_arrival"], 103);
    let (_, flushed) = server.call("POST", "/v1/flush", b"");
    // 1000, 1030, 1090, the arrival at 1095, 1100.
    assert_eq!(flushed["epochs"], 5, "{flushed}");
    assert_eq!(flushed["time"], 1100);
    assert_eq!(flushed["tasks_pending_arrival"], 0);
    assert_eq!(flushed["tasks_mapped"], 103);
    let (_, map) = server.call("GET", &format!("/v1/map/{WORKFLOW}"), b"");
    assert_eq!(map.as_object().map(|m| m.len()), Some(103));
    // An arrival behind the time already applied is refused, and the name stays free.
    let (status, _) = server.call("POST", "/v1/workflows?name=late&arrival=1050", &workflow);
    assert_eq!(status, 422);
}

/// `--collect` samples this host as a platform device, through the service's own channel: its
/// cpu and memory forecasts appear once the samples are applied, and `/metrics` counts them.
#[test]
fn collect_feeds_this_host_live_as_a_platform_device() {
    let server = demo_server(&["--collect", "200ms", "--collect-device", "edge-a"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let resources = loop {
        // Samples wait out the lateness window; a flush applies them.
        assert_eq!(server.call("POST", "/v1/flush", b"").0, 200);
        let (status, one) = server.call("GET", "/v1/predictions/edge-a", b"");
        let found: Vec<String> = one
            .as_object()
            .map(|series| series.keys().cloned().collect())
            .unwrap_or_default();
        if status == 200 && found.iter().any(|r| r == "cpu") {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no live cpu forecast for edge-a: {status} {one}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(resources.iter().any(|r| r == "memory"), "{resources:?}");
    let (_, other) = server.call("GET", "/v1/predictions/edge-b", b"");
    assert!(
        other.as_object().is_none_or(|series| series.is_empty()),
        "only the collected device reports: {other}"
    );
    let mut metrics = String::new();
    TcpStream::connect(&server.addr)
        .and_then(|mut stream| {
            stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            stream.read_to_string(&mut metrics)
        })
        .expect("GET /metrics");
    let accepted = metrics
        .lines()
        .find(|line| line.starts_with("augur_records_accepted_total{kind=\"metric\"}"))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(accepted >= 2.0, "{metrics}");
    assert_eq!(server.call("POST", "/v1/shutdown", b"").0, 202);
    assert!(server.wait(Duration::from_secs(60)).success());

    // A live source for a device the platform lacks would have every sample refused, for as
    // long as the service ran: a usage error at start instead.
    for flags in [
        &["--collect", "1s", "--collect-device", "gpu-z"][..],
        &["--node-exporter", "http://127.0.0.1:9/metrics=gpu-z"],
    ] {
        let refused = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(["serve", "--listen", "127.0.0.1:0", "--platform"])
            .arg(repo("data/demo/platform.toml"))
            .args(flags)
            .output()
            .expect("augur serve");
        assert_eq!(refused.status.code(), Some(2), "{flags:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("'gpu-z' is not a device"), "{stderr}");
    }
}

/// Re-sculpting decisions reach `GET /v1/changes` as `resculpt` events: the same lines as `augur
/// run`'s `resculpt.jsonl` for the same inputs (a ready task run ahead of one waiting for its
/// input on a severely congested device).
#[test]
fn resculpt_events_match_run() {
    let dir = scratch("resculpt");
    crate::resculpt::reorder_inputs(&dir, 0.9);
    let out = dir.join("run");
    let run = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["run", "--quiet", "--workflow"])
        .arg(dir.join("w.json"))
        .arg("--platform")
        .arg(dir.join("platform.toml"))
        .arg("--metrics")
        .arg(dir.join("m.csv"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("augur run");
    assert!(run.success());
    let expected = jsonl(&out.join("resculpt.jsonl"));
    assert_eq!(expected.len(), 1, "{expected:?}");

    let platform = dir.join("platform.toml");
    let server = Server::start(&[
        "--platform",
        platform.to_str().expect("a UTF-8 path"),
        "--lateness",
        "1e9",
    ]);
    let (changes, reader) = subscribe(&server.addr, "/v1/changes");
    let workflow = std::fs::read(dir.join("w.json")).expect("workflow");
    let (status, body) = server.call("POST", "/v1/workflows?name=w", &workflow);
    assert_eq!(status, 200, "{body}");
    let metrics = std::fs::read(dir.join("m.csv")).expect("metrics");
    let (status, body) = server.call("POST", "/v1/metrics", &metrics);
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.call("POST", "/v1/shutdown", b"");
    assert_eq!(status, 202);
    assert!(server.wait(Duration::from_secs(60)).success());
    reader.join().expect("changes stream");
    let decisions: Vec<Value> = changes
        .try_iter()
        .map(|data| serde_json::from_str::<Value>(&data).expect("event json"))
        .filter(|event| event.get("action").is_some())
        .collect();
    assert_eq!(decisions, expected);
}

/// An event accepted with its request and refused when applied (its transition impossible
/// once the events before it in time are) is counted apart: `accepted` never goes down (a
/// Prometheus counter that drops reads as a restart), and the 200 is not taken back.
#[test]
fn an_event_refused_when_applied_is_counted_apart() {
    let server = demo_server(&["--lateness", "1e9"]);
    let workflow = br#"{"name":"w","schemaVersion":"1.5","workflow":{"specification":{"tasks":[
        {"id":"a","name":"a","parents":[],"children":[],"inputFiles":[],"outputFiles":[]}],
        "files":[]},"execution":{"makespanInSeconds":10.0,"executedAt":"20240101T000000+0000",
        "machines":[],"tasks":[{"id":"a","runtimeInSeconds":10.0,"coreCount":1}]}}}"#;
    assert_eq!(
        server
            .call("POST", "/v1/workflows?name=w&arrival=1000", workflow)
            .0,
        200
    );
    let events = concat!(
        "{\"time\":1001,\"kind\":\"start\",\"workflow\":\"w\",\"task\":\"a\",\"device\":\"edge-a\"}\n",
        "{\"time\":1002,\"kind\":\"start\",\"workflow\":\"w\",\"task\":\"a\",\"device\":\"edge-b\"}\n",
        "{\"time\":1003,\"kind\":\"complete\",\"workflow\":\"w\",\"task\":\"a\"}\n",
        "{\"time\":1004,\"kind\":\"complete\",\"workflow\":\"w\",\"task\":\"a\"}\n",
    );
    let (status, body) = server.call("POST", "/v1/events", events.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 4);
    let (status, flushed) = server.call("POST", "/v1/flush", b"");
    assert_eq!(status, 200, "{flushed}");
    let (_, status) = server.call("GET", "/v1/status", b"");
    assert_eq!(status["accepted"]["event"], 4, "{status}");
    assert_eq!(status["refused_when_applied"]["event"], 2, "{status}");
    assert_eq!(status["rejected"]["event"], Value::Null, "{status}");
    let (_, text) = http(&server.addr, "GET", "/metrics", &[], b"");
    let samples = prometheus(&String::from_utf8(text).expect("utf-8"));
    assert_eq!(samples["augur_records_accepted_total{kind=\"event\"}"], 4.0);
    assert_eq!(
        samples["augur_records_refused_when_applied_total{kind=\"event\"}"],
        2.0
    );
    let (_, recent) = server.call("GET", "/v1/rejections", b"");
    let kinds: Vec<&str> = recent
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["bad_transition", "bad_transition"], "{recent}");
    assert_eq!(server.call("POST", "/v1/shutdown", b"").0, 202);
    assert!(server.wait(Duration::from_secs(60)).success());
}

/// A workflow accepted with tasks that have no runtime says so in its reply, as `run` prints
/// it, rather than placing them as taking no time without a word.
#[test]
fn an_accepted_workflow_carries_its_notes() {
    let server = demo_server(&[]);
    let workflow = serde_json::json!({
        "name": "n", "schemaVersion": "1.5",
        "workflow": {
            "specification": {"tasks": [
                {"name": "a", "id": "a", "parents": [], "children": []},
                {"name": "b", "id": "b", "parents": [], "children": []}
            ], "files": []},
            "execution": {"makespanInSeconds": 1, "executedAt": "now",
                          "tasks": [{"id": "a", "runtimeInSeconds": 2, "coreCount": 1}]}
        }
    })
    .to_string();
    let (status, body) = server.call("POST", "/v1/workflows?name=n", workflow.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2, "{body}");
    assert_eq!(
        body["notes"],
        serde_json::json!(["1 of 2 tasks has no runtimeInSeconds: it takes 0 s"]),
        "{body}"
    );
    assert_eq!(server.call("POST", "/v1/shutdown", b"").0, 202);
    assert!(server.wait(Duration::from_secs(60)).success());
}
