//! Faults: a cluster process killed mid-run, a peer that never starts, timely's connection
//! chatter under `--quiet`, and malformed records in the middle of every kind of stream.

use augur::testing::Scratch;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use augur::cli::{run_config, Cli, Command as AugurCommand};
use augur::run::run;
use clap::Parser;
use serde_json::Value;

use crate::determinism::short_scenario;

fn temp(name: &str) -> Scratch {
    Scratch::new(&format!("faults-{name}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn hostfile(dir: &Path) -> String {
    let path = dir.join("hosts.txt");
    std::fs::write(
        &path,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .expect("hostfile");
    path.display().to_string()
}

/// Starts process `index` of a 2-process run, its output captured.
fn start(args: &[String], out: &Path, hosts: &str, index: usize, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .arg("--out")
        .arg(out)
        .args(["--processes", "2", "--process", &index.to_string()])
        .args(["--hostfile", hosts])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start augur")
}

/// Waits for `child` at most `limit`; kills it (and fails) if it is still running then.
/// Returns whether it succeeded, its stdout and its stderr.
fn finish(child: Child, limit: Duration, what: &str) -> (bool, String, String) {
    let (status, stdout, stderr) = finish_status(child, limit, what);
    (status.success(), stdout, stderr)
}

/// [`finish`], with the exit status.
fn finish_status(
    mut child: Child,
    limit: Duration,
    what: &str,
) -> (std::process::ExitStatus, String, String) {
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} still running after {limit:?}: it hangs");
            }
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    (status, stdout, stderr)
}

/// What happens to the victim of a fault test.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// SIGKILL: its connections close.
    Kill,
    /// SIGSTOP: alive, connections open, silent (a hung host, a silent network partition).
    Stop,
}

/// Kills (or stops) process `victim` of a running 2-process run once the run is under way; the
/// other must then exit non-zero, soon, with one line naming the lost peer.
fn fault_one_of_two(victim: usize, fault: Fault) {
    let name = match fault {
        Fault::Kill => "kill",
        Fault::Stop => "stop",
    };
    let dir = temp(&format!("fault-{name}-{victim}"));
    // Long enough that the run is still going when the victim dies (the debug build replays
    // about a thousand epochs a second).
    let args = short_scenario(&dir, 4000);
    let hosts = hostfile(&dir);
    let out = dir.join("out");
    // A stopped peer is given up after --peer-timeout; a killed one at once, whatever it is.
    let timeout = match fault {
        Fault::Kill => "60",
        Fault::Stop => "5",
    };
    let mut processes: Vec<Child> = (0..2)
        .map(|index| start(&args, &out, &hosts, index, &["--peer-timeout", timeout]))
        .collect();
    // Under way: process 0 has begun writing the map.
    let started = Instant::now();
    let partition = out.join("partition.jsonl");
    while std::fs::metadata(&partition).map_or(0, |m| m.len()) == 0
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivor = processes.remove(1 - victim);
    let mut killed = processes.remove(0);
    assert!(
        killed.try_wait().is_ok_and(|status| status.is_none()),
        "process {victim} ended before it could be killed; make the scenario longer"
    );
    match fault {
        Fault::Kill => {
            killed.kill().expect("SIGKILL");
            let _ = killed.wait();
        }
        Fault::Stop => {
            let stopped = Command::new("kill")
                .args(["-STOP", &killed.id().to_string()])
                .status()
                .expect("kill -STOP");
            assert!(stopped.success());
        }
    }
    let killed_at = Instant::now();
    // Waited for on another thread so that the victim is killed (SIGKILL ends a stopped
    // process too) even when the survivor hangs and `finish` fails the test.
    let survivor =
        std::thread::spawn(move || finish(survivor, Duration::from_secs(60), "the survivor"));
    let outcome = survivor.join();
    let _ = killed.kill();
    let _ = killed.wait();
    let (ok, stdout, stderr) = match outcome {
        Ok(outcome) => outcome,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    assert!(
        !ok,
        "the survivor must fail when its peer is killed or stops"
    );
    assert!(
        killed_at.elapsed() < Duration::from_secs(30),
        "the survivor took {:?} to notice",
        killed_at.elapsed()
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{stderr}");
    assert!(
        lines[0].starts_with("augur: ")
            && lines[0].contains(&format!("lost peer process {victim} at 127.0.0.1:")),
        "the error must name the lost peer: {stderr}"
    );
    if fault == Fault::Stop {
        assert!(lines[0].contains("has sent nothing for 5 s"), "{stderr}");
    }
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
}

#[test]
fn killing_process_1_makes_process_0_exit_naming_it() {
    fault_one_of_two(1, Fault::Kill);
}

#[test]
fn killing_process_0_makes_process_1_exit_naming_it() {
    fault_one_of_two(0, Fault::Kill);
}

#[test]
fn stopping_process_1_makes_process_0_exit_after_the_peer_timeout() {
    fault_one_of_two(1, Fault::Stop);
}

#[test]
fn stopping_process_0_makes_process_1_exit_after_the_peer_timeout() {
    fault_one_of_two(0, Fault::Stop);
}

#[test]
fn a_peer_that_never_starts_is_given_up_after_the_connect_timeout() {
    let dir = temp("absent");
    let args = short_scenario(&dir, 10);
    let hosts = hostfile(&dir);
    for (index, absent) in [(0, 1), (1, 0)] {
        let started = Instant::now();
        let alone = start(
            &args,
            &dir.join(format!("out{index}")),
            &hosts,
            index,
            &["--connect-timeout", "1.5"],
        );
        let (ok, stdout, stderr) = finish(alone, Duration::from_secs(30), "a lone process");
        let took = started.elapsed();
        assert!(!ok, "process {index} alone must fail");
        assert!(
            took >= Duration::from_millis(1500),
            "gave up after {took:?}: {stderr}"
        );
        assert!(took < Duration::from_secs(15), "took {took:?} to give up");
        assert!(
            stderr.trim_end().lines().count() == 1
                && stderr.contains(&format!("process {absent} at 127.0.0.1:"))
                && stderr.contains("did not connect within 1.5 s"),
            "{stderr}"
        );
        assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
    }
}

#[test]
fn processes_with_other_workers_or_settings_stop_with_a_usage_error() {
    // Another worker count panicked inside timely's network threads; another policy made a map
    // that neither setting makes, and both processes exited 0.
    let dir = temp("disagree");
    let args = short_scenario(&dir, 10);
    // Another lateness or --strict was ignored without a word (admission is process 0's).
    let cases: [(&str, &[&str]); 4] = [
        ("runs 1 worker per process", &["--workers", "1"]),
        (
            "other placement settings (--policy",
            &["--workers", "2", "--policy", "static"],
        ),
        (
            "other lateness (--lateness",
            &["--workers", "2", "--lateness", "1000"],
        ),
        (
            "other strictness (--strict)",
            &["--workers", "2", "--strict"],
        ),
    ];
    for (what, extra) in cases {
        let hosts = hostfile(&dir);
        let out = dir.join("out");
        // An earlier run's results: a refused run must leave them as they were.
        std::fs::create_dir_all(&out).expect("out");
        std::fs::write(out.join("final_map.json"), "{\"earlier\": {}}\n").expect("earlier map");
        let first = start(&args, &out, &hosts, 0, &["--workers", "2"]);
        let second = start(&args, &out, &hosts, 1, extra);
        for (index, child) in [(0, first), (1, second)] {
            let (status, _, stderr) =
                finish_status(child, Duration::from_secs(60), &format!("process {index}"));
            assert_eq!(status.code(), Some(2), "process {index}: {stderr}");
            assert!(
                !stderr.contains("panicked") && stderr.contains("every process of a run needs"),
                "process {index}: {stderr}"
            );
            if index == 0 {
                assert!(stderr.contains(what), "{stderr}");
            }
        }
        let kept = std::fs::read_to_string(out.join("final_map.json")).unwrap_or_default();
        assert_eq!(kept, "{\"earlier\": {}}\n", "the earlier run's map");
        assert!(
            !out.join("partition.jsonl").exists(),
            "no output was opened"
        );
    }
}

#[test]
fn a_process_that_fails_after_connecting_reports_its_own_error() {
    // Process 0 failing between connecting and running (a record refused under --strict, an
    // output folder it cannot make) dropped timely's unused communication, whose network
    // threads then panicked: exit 101, and the real error was never printed.
    let dir = temp("own-error");
    let args = short_scenario(&dir, 10);
    let metrics = dir.join("metrics").join("ec2_cpu_utilization_24ae8d.csv");
    let mut text = std::fs::read_to_string(&metrics).expect("series");
    text.insert_str(text.find('\n').expect("a header") + 1, "not a time,0.5\n");
    std::fs::write(&metrics, text).expect("bad row");
    // An output that cannot be opened, found only once the outputs are opened (an --out
    // that cannot be a folder is refused before connecting).
    let blocked = dir.join("blocked");
    std::fs::create_dir_all(blocked.join("partition.jsonl")).expect("a folder in the way");
    let cases: [(&[&str], _, i32, &str); 2] = [
        (
            &["--strict"],
            dir.join("out"),
            3,
            "rejected input (--strict)",
        ),
        (&[], blocked, 1, "Is a directory"),
    ];
    for (extra, out, code, message) in cases {
        let hosts = hostfile(&dir);
        let first = start(&args, &out, &hosts, 0, extra);
        let second = start(&args, &dir.join("out1"), &hosts, 1, extra);
        let (status, _, stderr) = finish_status(first, Duration::from_secs(60), "process 0");
        assert_eq!(status.code(), Some(code), "{stderr}");
        assert!(
            stderr.contains(message) && !stderr.contains("failed at"),
            "{stderr}"
        );
        let (status, _, stderr) = finish_status(second, Duration::from_secs(60), "process 1");
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("lost peer process 0"), "{stderr}");
    }
}

#[test]
fn a_process_that_fails_mid_run_is_not_taken_for_success_by_its_peer() {
    // Process 0 refusing a record under --strict once the run was under way ended its
    // workers in order, and process 1 exited 0: a success for a run that never finished.
    // The demo's event log refuses its line 122 (an unknown device), well into the run.
    let dir = temp("mid-run");
    let args = short_scenario(&dir, 400);
    let hosts = hostfile(&dir);
    let first = start(&args, &dir.join("out"), &hosts, 0, &["--strict"]);
    let second = start(&args, &dir.join("out1"), &hosts, 1, &["--strict"]);
    let (status, _, stderr) = finish_status(first, Duration::from_secs(60), "process 0");
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("events.jsonl:122: unknown_device"),
        "the bad line named: {stderr}"
    );
    let (status, _, stderr) = finish_status(second, Duration::from_secs(60), "process 1");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("process 0") && !stderr.contains("failed at"),
        "{stderr}"
    );
}

/// A standard error with no reader loses augur's messages; it must not abort the process
/// (`eprintln!` panicked on the closed pipe, and the panic's own message aborted it).
#[test]
fn a_closed_standard_error_does_not_abort() {
    let dir = temp("closed-stderr");
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let status = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["run", "--workflow", "/nonexistent.json", "--out"])
        .arg(dir.join("out"))
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(2), "a usage error, not an abort");
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut args = short_scenario(&dir, 10);
    args.retain(|a| a != "--quiet");
    let status = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(&args)
        .arg("--out")
        .arg(dir.join("out"))
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .expect("runs");
    assert!(status.success(), "{status:?}");
    assert!(dir.join("out").join("summary.json").is_file());
}

/// A standard output whose reader went away ends `bench` as it ends the other commands that
/// print results: with success, the reader having had what it wanted (it exited 1, the
/// JSON writer's error hiding the closed pipe's kind).
#[test]
fn bench_with_a_closed_standard_output_exits_as_the_others_do() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let status = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "bench",
            "--smoke",
            "--single-epochs",
            "50",
            "--batch-epochs",
            "5",
        ])
        .stdout(writer)
        .stderr(Stdio::null())
        .status()
        .expect("runs");
    assert!(status.success(), "{status:?}");
}

#[test]
fn quiet_cluster_run_prints_nothing_while_waiting_for_its_peer() {
    let dir = temp("quiet");
    let args = short_scenario(&dir, 100);
    let hosts = hostfile(&dir);
    let out = dir.join("out");
    // Process 1 dials a process 0 that is not there yet, and process 0 then waits for it:
    // timely's own loop would print "error connecting" and "awaiting connections" lines.
    // (`short_scenario` passes --quiet.)
    let first = start(&args, &out, &hosts, 1, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let second = start(&args, &out, &hosts, 0, &[]);
    let (ok1, stdout1, stderr1) = finish(first, Duration::from_secs(120), "process 1");
    let (ok0, stdout0, stderr0) = finish(second, Duration::from_secs(120), "process 0");
    assert!(ok0 && ok1, "{stderr0}\n{stderr1}");
    for text in [&stdout0, &stdout1, &stderr0, &stderr1] {
        assert!(text.is_empty(), "printed under --quiet: {text}");
    }
    assert!(out.join("final_map.json").exists());
}

/// One format's file of good and bad lines, and what its good lines must have produced.
struct Mixed {
    /// The file's name (Bitbrains takes the device from it).
    name: &'static str,
    format: &'static str,
    lines: Vec<Vec<u8>>,
    /// Which of `lines` are records that must be refused (1-based line numbers).
    bad: Vec<u64>,
    /// Records (lines) the file holds, good and bad (a header is not one).
    records: u64,
    /// Latest CPU fraction of device n1 that the last good line leaves.
    latest_cpu: f64,
}

/// The CPU fraction of the last line [`bad_lines`] writes, a good one.
const LAST_CPU: f64 = 0.77;

fn bad_lines(good: impl Fn(u32, f64) -> String, bad: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u64>) {
    // good, bad, good, bad, ..., good: every bad line has good ones after it.
    let mut lines = Vec::new();
    let mut bad_at = Vec::new();
    for (i, bad_line) in bad.iter().enumerate() {
        lines.push(good(i as u32, 0.1 + 0.01 * i as f64).into_bytes());
        lines.push(bad_line.to_vec());
        bad_at.push(lines.len() as u64);
    }
    lines.push(good(bad.len() as u32, LAST_CPU).into_bytes());
    (lines, bad_at)
}

/// A file of `body` (from [`bad_lines`]) after an optional header line, which shifts the bad
/// lines' numbers by one and is not a record.
fn mixed(
    name: &'static str,
    format: &'static str,
    header: Option<&[u8]>,
    body: Vec<Vec<u8>>,
    bad: Vec<u64>,
) -> Mixed {
    let shift = u64::from(header.is_some());
    let mut lines: Vec<Vec<u8>> = header.map(<[u8]>::to_vec).into_iter().collect();
    lines.extend(body);
    Mixed {
        name,
        format,
        records: lines.len() as u64 - shift,
        bad: bad.iter().map(|line| line + shift).collect(),
        lines,
        latest_cpu: LAST_CPU,
    }
}

fn mixed_files() -> Vec<Mixed> {
    let long_csv = |t: u32, v: f64| format!("{},n1,cpu,{v}", 1000 + 60 * t);
    let (body, bad) = bad_lines(
        long_csv,
        &[
            b"soon,n1,cpu,0.5",
            b"1100,n1,cpu,NaN",
            b"1200,n1,cpu,-3",
            b"1300,n1",
            b"\xff\xfe,n1,cpu,0.5",
            b"1400,n1,cpu,1e999",
        ],
    );
    let long = mixed(
        "long.csv",
        "long",
        Some(b"time,device,resource,value"),
        body,
        bad,
    );

    let jsonl = |t: u32, v: f64| {
        format!(
            r#"{{"time":{},"device":"n1","resource":"cpu","value":{v}}}"#,
            1000 + 60 * t
        )
    };
    let (body, bad) = bad_lines(
        jsonl,
        &[
            b"{\"time\":1100,\"device\":\"n1\"",
            b"[1,2,3]",
            b"{\"time\":1200,\"device\":\"n1\",\"resource\":\"cpu\",\"value\":-1}",
            b"{\"time\":\"x\",\"device\":\"n1\",\"resource\":\"cpu\",\"value\":0.5}",
            b"\xc3\x28",
        ],
    );
    let jsonl = mixed("long.jsonl", "long", None, body, bad);

    let nab_row = |t: u32, v: f64| format!("2014-02-14 00:{:02}:00,{}", t * 5, v * 100.0);
    let (body, bad) = bad_lines(
        nab_row,
        &[
            b"2014-02-14 00:02:00,abc",
            b"not a date,12",
            b"2014-02-14 00:07:00",
            b"2014-02-14 00:08:00,-5",
        ],
    );
    let nab = mixed("nab.csv", "nab", Some(b"timestamp,value"), body, bad);

    let bitbrains_row = |t: u32, v: f64| {
        format!(
            "{};\t2;\t5851.9;\t100.0;\t{};\t8218624.0;\t1034592.8;\t160.8;\t21.7;\t0.26;\t0.5",
            1_372_629_804 + 300 * t,
            v * 100.0
        )
    };
    let (body, bad) = bad_lines(
        bitbrains_row,
        &[
            b"1372629900;\t2;\t5851.9",
            b"garbage",
            b"x;\t2;\t5851.9;\t100.0;\t50;\t8218624.0;\t1034592.8;\t160.8;\t21.7;\t0.26;\t0.5",
        ],
    );
    let header: &[u8] = b"Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\tDisk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]";
    let bitbrains = mixed("n1.csv", "bitbrains", Some(header), body, bad);

    let alibaba_row = |t: u32, v: f64| format!("n1,{},{},40,,,1.0,1.0,5", 1000 + 10 * t, v * 100.0);
    let (body, bad) = bad_lines(
        alibaba_row,
        &[b"n1,abc,41,92,,,43.04,33.08,5", b"n1", b"n1,1015,,,,,,,"],
    );
    let alibaba = mixed("usage.csv", "alibaba", None, body, bad);
    vec![long, jsonl, nab, bitbrains, alibaba]
}

const PLATFORM: &str = "[[device]]\nid = \"n1\"\ncores = 4\nmemory_gib = 8\n\n[[device]]\nid = \"n2\"\ncores = 8\nmemory_gib = 16\n";

const WORKFLOW: &str = r#"{"name":"w","schemaVersion":"1.5","workflow":{"specification":{"tasks":[
    {"name":"a","id":"a","parents":[],"children":["b"],"inputFiles":[],"outputFiles":[]},
    {"name":"b","id":"b","parents":["a"],"children":[],"inputFiles":[],"outputFiles":[]}],"files":[]},
    "execution":{"makespanInSeconds":1,"executedAt":"20240101T000000+0000","tasks":[
    {"id":"a","runtimeInSeconds":10,"coreCount":1},{"id":"b","runtimeInSeconds":5,"coreCount":1}],"machines":[]}}}"#;

/// Runs `augur run` in-process over `dir`'s fixtures with these extra flags.
fn run_in(dir: &Path, flags: &[String]) {
    let platform = dir.join("platform.toml");
    let workflow = dir.join("w.json");
    std::fs::write(&platform, PLATFORM).expect("platform");
    std::fs::write(&workflow, WORKFLOW).expect("workflow");
    let mut argv: Vec<String> = ["augur", "run", "--quiet", "--platform"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.push(platform.display().to_string());
    argv.push("--workflow".into());
    argv.push(workflow.display().to_string());
    argv.push("--out".into());
    argv.push(dir.join("out").display().to_string());
    argv.extend_from_slice(flags);
    let Ok(Cli {
        command: AugurCommand::Run(args),
    }) = Cli::try_parse_from(&argv)
    else {
        panic!("bad flags {argv:?}");
    };
    let config = run_config(&args).expect("valid flags");
    assert!(run(&config).is_ok(), "the run must not stop on bad lines");
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("output");
    serde_json::from_str(&text).expect("JSON")
}

/// Every rejection of `file`, as (line, kind).
fn rejections_of(dir: &Path, file: &str) -> Vec<(Option<u64>, String)> {
    std::fs::read_to_string(dir.join("out/rejected.jsonl"))
        .expect("rejected.jsonl")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON line"))
        .filter(|r| r["file"] == file)
        .map(|r| {
            (
                r["line"].as_u64(),
                r["kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn malformed_metric_lines_mid_stream_do_not_stop_any_format() {
    for mixed in mixed_files() {
        let dir = temp(&format!("mixed-{}-{}", mixed.format, mixed.name));
        let path = dir.join(mixed.name);
        std::fs::write(&path, mixed.lines.join(&b"\n"[..])).expect("metrics");
        let file = path.display().to_string();
        let mut flags = vec![
            "--metrics".to_string(),
            file.clone(),
            "--format".into(),
            mixed.format.into(),
        ];
        if mixed.format == "nab" {
            flags.extend(["--map".to_string(), format!("{file}=n1:cpu")]);
        }
        run_in(&dir, &flags);
        let what = format!("{} ({})", mixed.name, mixed.format);

        let summary = json(&dir.join("out/summary.json"));
        let counts = &summary["inputs"][&file];
        let count = |key: &str| counts[key].as_u64().unwrap_or(u64::MAX);
        assert_eq!(
            count("read"),
            mixed.records,
            "{what}: records read; {counts}"
        );
        assert_eq!(
            count("rejected"),
            mixed.bad.len() as u64,
            "{what}: rejected; {counts}"
        );
        assert_eq!(
            count("accepted"),
            mixed.records - mixed.bad.len() as u64,
            "{what}"
        );

        // Each bad line is refused with its line number, and nothing else is.
        // (A line can be refused for several reasons, one rejection each.)
        let mut refused: Vec<u64> = rejections_of(&dir, &file)
            .into_iter()
            .filter(|(_, kind)| kind != "dropped_field")
            .map(|(line, _)| line.unwrap_or(0))
            .collect();
        refused.sort_unstable();
        refused.dedup();
        assert_eq!(refused, mixed.bad, "{what}: the lines refused");

        // The last good line, after every bad one, reached the forecasts.
        let forecasts = json(&dir.join("out/forecasts.json"));
        let latest = forecasts["n1"]["cpu"]["latest"]
            .as_f64()
            .unwrap_or(f64::NAN);
        assert!(
            (latest - mixed.latest_cpu).abs() < 0.002,
            "{what}: latest CPU {latest}, expected {} from the last line; {forecasts}",
            mixed.latest_cpu
        );
    }
}

#[test]
fn malformed_event_lines_mid_stream_do_not_stop_the_events() {
    let dir = temp("mixed-events");
    let lines = [
        r#"{"time":100,"kind":"arrival","workflow":"w"}"#,
        r#"{"time":110,"kind":"start","workflow":"w""#,
        r#"{"time":120,"kind":"start","workflow":"w","task":"a","device":"n2"}"#,
        "\u{1}garbage",
        r#"{"time":130,"kind":"launch","workflow":"w","task":"a"}"#,
        r#"{"time":"later","kind":"complete","workflow":"w","task":"a"}"#,
        r#"{"time":140,"kind":"start","workflow":"w","task":"ghost","device":"n1"}"#,
        r#"{"time":150,"kind":"complete","workflow":"w","task":"a","duration":30}"#,
        r#"{"time":155,"kind":"start","workflow":"w","task":"b"}"#,
        r#"{"time":160,"kind":"start","workflow":"w","task":"b","device":"n1"}"#,
    ];
    let bad: Vec<u64> = vec![2, 4, 5, 6, 7, 9];
    let path = dir.join("events.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("events");
    let file = path.display().to_string();
    run_in(&dir, &["--events".to_string(), file.clone()]);

    let summary = json(&dir.join("out/summary.json"));
    let counts = &summary["inputs"][&file];
    assert_eq!(counts["read"], lines.len() as u64, "{counts}");
    assert_eq!(counts["rejected"], bad.len() as u64, "{counts}");
    assert_eq!(
        counts["accepted"],
        (lines.len() - bad.len()) as u64,
        "{counts}"
    );
    let mut refused: Vec<u64> = rejections_of(&dir, &file)
        .into_iter()
        .map(|(line, _)| line.unwrap_or(0))
        .collect();
    refused.sort_unstable();
    assert_eq!(refused, bad);
    // a completed after the bad lines; b started on n1 by the very last line.
    let map = json(&dir.join("out/final_map.json"));
    assert_eq!(map, serde_json::json!({"w": {"b": "n1"}}), "{map}");
}

/// Output paths and cluster flags that cannot work are usage errors (exit 2) naming the flag,
/// found before any work: an output path that is a file was a bare "Not a directory", exit 1,
/// after the work; `bench --processes 0` ran as one process.
#[test]
fn unusable_output_paths_and_cluster_flags_are_usage_errors() {
    let dir = temp("unusable-paths");
    let file = dir.join("a-file");
    std::fs::write(&file, "").expect("file");
    let folder = dir.join("a-folder");
    std::fs::create_dir_all(&folder).expect("folder");
    let series = crate::common::bundled_data()
        .join("demo/metrics/ec2_cpu_utilization_24ae8d.csv")
        .display()
        .to_string();
    let (file, folder) = (file.display().to_string(), folder.display().to_string());
    let missing = dir.join("no-such-hosts.txt").display().to_string();
    let mut run_args = short_scenario(&dir, 10);
    run_args.extend(["--out".to_string(), file.clone()]);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (run_args, "--out"),
        (
            ["anomalies", "--series", &series, "--out", &file]
                .map(String::from)
                .to_vec(),
            "--out",
        ),
        (
            ["bench", "ingest", "--smoke", "--dir", &file]
                .map(String::from)
                .to_vec(),
            "--dir",
        ),
        (
            ["bench", "--smoke", "--processes", "0"]
                .map(String::from)
                .to_vec(),
            "--processes",
        ),
        (
            [
                "bench",
                "--smoke",
                "--processes",
                "2",
                "--hostfile",
                &missing,
            ]
            .map(String::from)
            .to_vec(),
            "--hostfile",
        ),
        (
            ["collect", "--out", &folder, "--duration", "1s", "--quiet"]
                .map(String::from)
                .to_vec(),
            "--out",
        ),
    ];
    for (args, flag) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(&args)
            .stdout(Stdio::null())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}
