//! Checkpoints of `augur serve`: a service fed part of the demo, killed with SIGKILL once a
//! checkpoint holds that part, resumed from it on another port and sent what came after the
//! checkpoint (by the `checkpoint` of its status) ends with the same map, predictions and
//! counts as a service fed everything without interruption. A resume over another platform
//! is refused with a message, not a panic.

use augur::input::time::parse_time_field;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve_support::{repo, Server, SERIES, WORKFLOW};

/// Samples up to this time (two days of the demo series, past its events).
const METRICS_UNTIL_MS: i64 = 1_392_562_800_000;
/// The first part sent before the kill: everything up to here, the middle of the event log
/// (tasks are running, and the last minute of it is still in the reorder buffer).
const SPLIT_MS: i64 = 1_392_422_405_000;

fn scratch(name: &str) -> augur::testing::Scratch {
    crate::serve_support::scratch("serve-ckpt", name)
}

/// A test's scratch folder (hold it for the test), its checkpoint folder inside it as a path
/// and as an argument, and the demo platform's argument.
fn folders(name: &str) -> (augur::testing::Scratch, std::path::PathBuf, String, String) {
    let dir = scratch(name);
    let checkpoints = dir.join("checkpoints");
    let checkpoints_arg = checkpoints.to_str().expect("utf-8 path").to_string();
    let platform_arg = repo("data/demo/platform.toml")
        .to_str()
        .expect("utf-8 path")
        .to_string();
    (dir, checkpoints, checkpoints_arg, platform_arg)
}

/// One record to send: its time (ms), whether it is a sample (else an event), its line.
type Record = (i64, bool, String);

/// The demo's samples (two days, numeric times) and its good events, in time order (samples
/// before events at equal times, as an epoch applies them).
fn demo_records() -> Vec<Record> {
    let mut records = Vec::new();
    for (file, device) in SERIES {
        let text = std::fs::read_to_string(repo("data/demo/metrics").join(file)).expect("series");
        for line in text.lines().skip(1) {
            let (time, value) = line.split_once(',').expect("two columns");
            let time = parse_time_field(time).expect("time");
            if time > METRICS_UNTIL_MS {
                continue;
            }
            let value = value.parse::<f64>().expect("value") / 100.0;
            let seconds = time / 1000;
            records.push((time, true, format!("{seconds},{device},cpu,{value}\n")));
        }
    }
    let events = std::fs::read_to_string(repo("data/demo/events.jsonl")).expect("events");
    for line in events.lines() {
        // The log ends with two records naming a device and a task that do not exist.
        if line.contains("gpu-z") || line.contains("no-such-task") {
            continue;
        }
        let event: Value = serde_json::from_str(line).expect("event json");
        let time = (event["time"].as_f64().expect("time") * 1000.0).round() as i64;
        records.push((time, false, format!("{line}\n")));
    }
    records.sort_by_key(|(time, sample, _)| (*time, !*sample));
    records
}

/// Sends records in time order, as a collector would: each run of samples or of events (at
/// most 500 records) in one request, so nothing sent is behind what was sent before it.
fn send(server: &Server, records: &[Record]) {
    let mut start = 0;
    while start < records.len() {
        let kind = records[start].1;
        let end = records[start..]
            .iter()
            .take(500)
            .position(|(_, sample, _)| *sample != kind)
            .map_or((start + 500).min(records.len()), |offset| start + offset);
        let lines: String = records[start..end]
            .iter()
            .map(|(_, _, line)| line.as_str())
            .collect();
        if kind {
            let body = format!("time,device,resource,value\n{lines}");
            server.ok("POST", "/v1/metrics", body.as_bytes());
        } else {
            server.ok("POST", "/v1/events", lines.as_bytes());
        }
        start = end;
    }
}

fn post_workflow(server: &Server) {
    let workflow = std::fs::read(repo(&format!("data/demo/{WORKFLOW}.json"))).expect("workflow");
    let body = server.ok("POST", &format!("/v1/workflows?name={WORKFLOW}"), &workflow);
    assert_eq!(body["accepted"], 103);
}

fn millis(value: &Value) -> i64 {
    (value.as_f64().expect("a time in seconds") * 1000.0).round() as i64
}

/// What two services must agree on once fed the same records.
fn outcome(server: &Server) -> (Value, Value, Value, Vec<Value>) {
    let status = server.ok("POST", "/v1/flush", b"");
    assert_eq!(status["buffered_records"], 0);
    let map = server.ok("GET", "/v1/map", b"");
    let predictions = server.ok("GET", "/v1/predictions", b"");
    let scaleout = server.ok("GET", "/v1/scaleout", b"");
    let counts = [
        "time",
        "epochs",
        "tasks_mapped",
        "tasks_live",
        "tasks_placed",
        "tasks_moved",
        "workflows",
        "accepted",
        "rejected",
    ]
    .iter()
    .map(|field| status[*field].clone())
    .collect();
    (map, predictions, scaleout, counts)
}

#[test]
fn serve_resumed_after_sigkill_ends_as_an_uninterrupted_serve() {
    let (_dir, checkpoints, checkpoints_arg, platform_arg) = folders("kill");
    let (checkpoints_arg, platform_arg) = (checkpoints_arg.as_str(), platform_arg.as_str());
    let records = demo_records();
    let split = records.partition_point(|(time, _, _)| *time <= SPLIT_MS);
    assert!(split > 0 && split < records.len());

    // Uninterrupted.
    let reference = Server::start(&["--platform", platform_arg]);
    post_workflow(&reference);
    send(&reference, &records);
    let expected = outcome(&reference);
    drop(reference);
    let mapped = expected.0[WORKFLOW]
        .as_object()
        .map_or(0, |tasks| tasks.len());
    assert!(mapped > 0, "the reference maps tasks: {}", expected.0);

    // The first part, checkpointed after every epoch, then SIGKILL once a checkpoint holds it.
    let first = Server::start(&[
        "--platform",
        platform_arg,
        "--checkpoint",
        checkpoints_arg,
        "--checkpoint-every",
        "1",
    ]);
    post_workflow(&first);
    send(&first, &records[..split]);
    let sent_newest = records[split - 1].0;
    let deadline = Instant::now() + Duration::from_secs(120);
    // The source counts an epoch out of its queue when it feeds it, before the sink has it:
    // a status can show nothing queued and the checkpoint level with the sink while the last
    // epoch is still in the dataflow. Only a status that stays the same over a pause (no
    // records are being sent, so nothing else can move it) holds the whole first part.
    let mut previous: Option<Value> = None;
    let held = loop {
        let (_, status) = first.call("GET", "/v1/status", b"");
        let checkpoint = &status["checkpoint"];
        let settled = status["queued_epochs"] == 0
            && checkpoint["epochs"] == status["epochs"]
            && checkpoint["newest"].is_number()
            && millis(&checkpoint["newest"]) == sent_newest;
        let same = |before: &Value| {
            before["epochs"] == status["epochs"]
                && before["checkpoint"]["epochs"] == checkpoint["epochs"]
        };
        if settled && previous.as_ref().is_some_and(same) {
            break status;
        }
        previous = settled.then_some(status.clone());
        assert!(
            Instant::now() < deadline,
            "no checkpoint holds the first part: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Some of what was acknowledged is still waiting in the reorder buffer, and tasks are
    // running: both must survive the kill.
    assert!(
        held["buffered_records"].as_u64() > Some(0),
        "the checkpoint holds buffered records: {held}"
    );
    assert!(held["tasks_live"].as_u64() > Some(0), "{held}");
    assert!(checkpoints.join("checkpoint.bin").is_file());
    drop(first);

    // Resumed on another port: the checkpoint says from where to send again.
    let resumed = Server::start(&[
        "--platform",
        platform_arg,
        "--checkpoint",
        checkpoints_arg,
        "--resume",
    ]);
    let status = resumed.ok("GET", "/v1/status", b"");
    assert_eq!(status["buffered_records"], held["buffered_records"]);
    assert_eq!(status["workflows"], 1);
    assert_eq!(status["epochs"], held["epochs"]);
    assert_eq!(status["accepted"], held["accepted"]);
    let newest = millis(&status["checkpoint"]["newest"]);
    assert_eq!(newest, sent_newest);
    // The workflow is back under its name: posting it again is a conflict.
    let workflow = std::fs::read(repo(&format!("data/demo/{WORKFLOW}.json"))).expect("workflow");
    let (code, _) = resumed.call("POST", &format!("/v1/workflows?name={WORKFLOW}"), &workflow);
    assert_eq!(code, 409);
    let replay: Vec<Record> = records
        .iter()
        .filter(|(time, _, _)| *time > newest)
        .cloned()
        .collect();
    assert_eq!(replay.len(), records.len() - split);
    send(&resumed, &replay);
    let mut got = outcome(&resumed);
    // The refused repost is counted on the resumed service only.
    if let Some(rejected) = got.3.get_mut(8) {
        assert_eq!(rejected["workflow"], 1);
        if let Some(object) = rejected.as_object_mut() {
            object.remove("workflow");
        }
    }
    assert_eq!(got.0, expected.0, "map");
    assert_eq!(got.1, expected.1, "predictions");
    assert_eq!(got.2, expected.2, "scale-out");
    assert_eq!(got.3, expected.3, "counts");
}

#[test]
fn a_clean_stop_keeps_its_buffer_and_resumes_mid_timestamp() {
    let (_dir, checkpoints, checkpoints_arg, platform_arg) = folders("clean");
    let (checkpoints_arg, platform_arg) = (checkpoints_arg.as_str(), platform_arg.as_str());
    let records = demo_records();
    // The producer stops after the first of two samples at one time, in the middle of the
    // event log: the rest of that timestamp comes after the resume.
    let cut = (1..records.len())
        .find(|&i| {
            let (time, sample, _) = &records[i];
            *time >= SPLIT_MS && *sample && records[i - 1].0 == *time && records[i - 1].1
        })
        .expect("two samples at one time after the split");
    let cut_time = records[cut].0;

    let reference = Server::start(&["--platform", platform_arg]);
    post_workflow(&reference);
    send(&reference, &records);
    let expected = outcome(&reference);
    drop(reference);

    // Periodic checkpoints too rare to happen: only the stop's own can hold the records.
    let first = Server::start(&[
        "--platform",
        platform_arg,
        "--checkpoint",
        checkpoints_arg,
        "--checkpoint-every",
        "1000000",
    ]);
    post_workflow(&first);
    send(&first, &records[..cut]);
    let before = first.ok("GET", "/v1/status", b"");
    let buffered = before["buffered_records"]
        .as_u64()
        .expect("buffered records");
    assert!(buffered > 0, "{before}");
    let (code, _) = first.call("POST", "/v1/shutdown", b"");
    assert_eq!(code, 202);
    assert!(first.wait(Duration::from_secs(120)).success());
    assert!(checkpoints.join("checkpoint.bin").is_file());

    // Resumed: the reorder buffer is as the stop left it (a stop used to apply it, and the
    // rest of the cut timestamp was then refused as out of order); sent the rest, it answers
    // what the uninterrupted service answered.
    let resumed = Server::start(&[
        "--platform",
        platform_arg,
        "--checkpoint",
        checkpoints_arg,
        "--resume",
    ]);
    let status = resumed.ok("GET", "/v1/status", b"");
    assert_eq!(status["buffered_records"], buffered, "{status}");
    assert_eq!(millis(&status["checkpoint"]["newest"]), cut_time);
    assert!(millis(&status["time"]) < cut_time, "{status}");
    send(&resumed, &records[cut..]);
    let (map, predictions, scaleout, counts) = outcome(&resumed);
    assert_eq!(map, expected.0, "map");
    assert_eq!(predictions, expected.1, "predictions");
    // The stop's checkpoint needs an epoch of its own to carry its request; it used to count
    // as one, 1 ms after the last, and the resumed service's epochs and time (and scale-out
    // advice's) read one on. It is no epoch of the service's now.
    assert_eq!(scaleout, expected.2, "scale-out");
    assert_eq!(counts, expected.3, "time, epochs and counts");
}

#[test]
fn an_idle_service_stopped_cleanly_can_be_resumed() {
    // A supervisor that always restarts with --resume: an idle service's clean stop left no
    // checkpoint, and the resume was refused.
    let (_dir, checkpoints, checkpoints_arg, platform_arg) = folders("idle");
    let args = [
        "--platform",
        platform_arg.as_str(),
        "--checkpoint",
        checkpoints_arg.as_str(),
    ];
    let idle = Server::start(&args);
    let (code, _) = idle.call("POST", "/v1/shutdown", b"");
    assert_eq!(code, 202);
    assert!(idle.wait(Duration::from_secs(60)).success());
    assert!(checkpoints.join("checkpoint.bin").is_file());
    let resumed = Server::start(&[&args[..], &["--resume"]].concat());
    let status = resumed.ok("GET", "/v1/status", b"");
    assert_eq!(status["epochs"], 0, "{status}");
    // Taken before any epoch: no time yet (it read i64::MIN as seconds), as `time` above.
    assert!(status["checkpoint"]["time"].is_null(), "{status}");
    assert!(status["time"].is_null(), "{status}");
    post_workflow(&resumed);
}

#[test]
fn a_second_signal_while_draining_stops_at_once() {
    // The first SIGTERM drains (applies what is released, checkpoints), which can take a
    // while; a second one used to be ignored. The service is held still in its drain (after
    // the stop's checkpoint, the first it writes) so that the second lands there every time.
    let (_dir, checkpoints, checkpoints_arg, platform_arg) = folders("second-signal");
    let server = Server::start_with_env(
        &[
            "--platform",
            &platform_arg,
            "--checkpoint",
            &checkpoints_arg,
            "--checkpoint-every",
            "1000000",
        ],
        &[("AUGUR_TEST_PAUSE_AFTER_CHECKPOINT", "1")],
    );
    post_workflow(&server);
    let term = || {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &server.pid().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    };
    term();
    let latest = checkpoints.join(augur::checkpoint::LATEST);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !latest.exists() {
        assert!(std::time::Instant::now() < deadline, "no stop checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    term();
    assert_eq!(server.wait(Duration::from_secs(30)).code(), Some(130));
}

#[test]
fn serve_resume_over_another_platform_is_refused() {
    let dir = scratch("platform");
    let checkpoints = dir.join("checkpoints");
    let checkpoints_arg = checkpoints.to_str().expect("utf-8 path");
    let platform = repo("data/demo/platform.toml");
    let platform_arg = platform.to_str().expect("utf-8 path");

    // Nothing to resume from yet.
    let missing = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--platform",
            platform_arg,
        ])
        .args(["--checkpoint", checkpoints_arg, "--resume"])
        .env_remove("AUGUR_TOKEN")
        .output()
        .expect("augur serve");
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no checkpoint"), "{stderr}");

    let server = Server::start(&[
        "--platform",
        platform_arg,
        "--checkpoint",
        checkpoints_arg,
        "--checkpoint-every",
        "1",
    ]);
    post_workflow(&server);
    let status = server.ok("POST", "/v1/flush", b"");
    assert!(status["epochs"].as_u64() > Some(0), "{status}");
    assert!(status["checkpoint"].is_object(), "{status}");
    drop(server);

    let other = dir.join("other.toml");
    let text = std::fs::read_to_string(&platform).expect("platform");
    // One more device.
    let extra = "\n[[device]]\nid = \"edge-e\"\ncores = 4\nmemory_gib = 16\nspeed = 1.0\n";
    std::fs::write(&other, format!("{text}{extra}")).expect("write");
    let refused = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["serve", "--listen", "127.0.0.1:0", "--platform"])
        .arg(&other)
        .args(["--checkpoint", checkpoints_arg, "--resume"])
        .env_remove("AUGUR_TOKEN")
        .output()
        .expect("augur serve");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("changed since: the platform file (--platform);")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty(), "it never listened");
}
