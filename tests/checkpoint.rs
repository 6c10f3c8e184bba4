//! Checkpoints: a run stopped right after its k-th checkpoint (or killed with SIGKILL at any
//! moment) and resumed, with the same or another number of workers or processes, writes exactly
//! the outputs of an uninterrupted run; damaged, missing or foreign checkpoints are refused with
//! a clear message, never a panic.

use augur::testing::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::bundled_data;
use crate::determinism::short_scenario;

/// The fault-injection variable of `augur::checkpoint` (exit right after the k-th checkpoint).
const EXIT_AFTER: &str = "AUGUR_TEST_EXIT_AFTER_CHECKPOINT";
const PAUSE_AFTER: &str = "AUGUR_TEST_PAUSE_AFTER_CHECKPOINT";

/// Outputs compared byte for byte.
const COMPARED: [&str; 8] = [
    "partition.jsonl",
    "prewarm.jsonl",
    "scaleout.jsonl",
    "resculpt.jsonl",
    "rejected.jsonl",
    "final_map.json",
    "forecasts.json",
    "durations.json",
];

fn temp(name: &str) -> Scratch {
    Scratch::new(name)
}

/// `augur run` over the whole bundled demo (what `augur demo` runs), without `--out`.
pub fn demo_args() -> Vec<String> {
    let demo = bundled_data().join("demo");
    let path = |file: &str| demo.join(file).display().to_string();
    let mut args: Vec<String> = vec![
        "run".into(),
        "--workflow".into(),
        path("montage-chameleon-2mass-01d-001.json"),
        "--platform".into(),
        path("platform.toml"),
        "--events".into(),
        path("events.jsonl"),
        "--format".into(),
        "nab".into(),
        "--quiet".into(),
    ];
    for (file, device) in [
        ("ec2_cpu_utilization_24ae8d.csv", "edge-a"),
        ("ec2_cpu_utilization_53ea38.csv", "edge-b"),
        ("ec2_cpu_utilization_5f5533.csv", "cloud-c"),
        ("rds_cpu_utilization_cc0c53.csv", "cloud-d"),
    ] {
        let series = path(&format!("metrics/{file}"));
        args.extend([
            "--metrics".into(),
            series.clone(),
            "--map".into(),
            format!("{series}={device}:cpu"),
        ]);
    }
    args
}

/// `augur run` of the demo's workflow and platform over one long-format metric log, without
/// `--out`.
fn over_one_log(log: &Path) -> Vec<String> {
    let demo = bundled_data().join("demo");
    let path = |file: &str| demo.join(file).display().to_string();
    vec![
        "run".into(),
        "--workflow".into(),
        path("montage-chameleon-2mass-01d-001.json"),
        "--platform".into(),
        path("platform.toml"),
        "--metrics".into(),
        log.display().to_string(),
        "--quiet".into(),
    ]
}

fn command(args: &[String], out: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_augur"));
    command.args(args).arg("--out").arg(out).args(extra);
    command
}

fn run(args: &[String], out: &Path, extra: &[&str], exit_after: Option<u64>) -> Output {
    let mut command = command(args, out, extra);
    if let Some(k) = exit_after {
        command.env(EXIT_AFTER, k.to_string());
    }
    command.output().expect("run augur")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The uninterrupted run of the demo (1 worker, no checkpoints), shared by the tests.
fn baseline() -> &'static PathBuf {
    static BASELINE: OnceLock<PathBuf> = OnceLock::new();
    BASELINE.get_or_init(|| {
        // Shared by the tests for the whole run, so it outlives any one of them: a fixed place
        // in Cargo's scratch space for tests, emptied here.
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("checkpoint-baseline");
        let _ = std::fs::remove_dir_all(&out);
        let output = run(&demo_args(), &out, &[], None);
        assert!(output.status.success(), "baseline: {}", stderr(&output));
        out
    })
}

/// `summary.json` without what depends on the clock or the worker layout.
fn summary(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("summary is JSON");
    if let Some(object) = value.as_object_mut() {
        for key in [
            "wall_s",
            "epoch_latency",
            "workers",
            "processes",
            "peak_rss_mib",
        ] {
            object.remove(key);
        }
    }
    value
}

fn assert_same_outputs(expected: &Path, actual: &Path, context: &str) {
    for file in COMPARED {
        let read = |dir: &Path| std::fs::read(dir.join(file)).unwrap_or_default();
        assert!(
            read(expected) == read(actual),
            "{context}: {file} differs from the uninterrupted run's"
        );
    }
    assert_eq!(
        summary(expected),
        summary(actual),
        "{context}: summary.json"
    );
}

#[test]
fn resume_after_checkpoint_k_is_byte_identical_for_1_and_2_workers() {
    let baseline = baseline();
    let lines = std::fs::read_to_string(baseline.join("partition.jsonl")).expect("baseline");
    assert!(
        lines.lines().count() > 100,
        "the demo must exercise the map"
    );
    let dir = temp("checkpoint-k");
    let args = demo_args();
    // The demo has 8124 epochs: checkpoints at epochs 1000, 2000, ..., 8000.
    for (k, writers, resumers) in [(1, 1, 1), (4, 1, 2), (6, 2, 1), (8, 2, 2)] {
        let context =
            format!("stopped after checkpoint {k} of {writers} worker(s), resumed with {resumers}");
        let out = dir.join(format!("out-{k}"));
        let checkpoints = dir.join(format!("checkpoints-{k}"));
        let flags = |workers: &str| -> Vec<String> {
            [
                "--checkpoint",
                &checkpoints.display().to_string(),
                "--checkpoint-every",
                "1000",
                "--workers",
                workers,
            ]
            .map(str::to_string)
            .to_vec()
        };
        let writing = flags(&writers.to_string());
        let writing: Vec<&str> = writing.iter().map(String::as_str).collect();
        let stopped = run(&args, &out, &writing, Some(k));
        assert_eq!(
            stopped.status.code(),
            Some(75),
            "{context}: {}",
            stderr(&stopped)
        );
        assert!(
            !out.join("final_map.json").exists(),
            "{context}: the stopped run must not have finished"
        );
        let mut resuming = flags(&resumers.to_string());
        resuming.push("--resume".into());
        let resuming: Vec<&str> = resuming.iter().map(String::as_str).collect();
        let resumed = run(&args, &out, &resuming, None);
        assert!(resumed.status.success(), "{context}: {}", stderr(&resumed));
        assert_same_outputs(baseline, &out, &context);
    }
}

/// A resumed run's page starts at the checkpoint but counts the tasks per device from the
/// restored map, so its last counts are the final map's, and it says it resumed.
#[test]
fn a_resumed_runs_report_counts_from_the_restored_map() {
    let dir = temp("checkpoint-report");
    let (out, checkpoints) = (dir.join("out"), dir.join("checkpoints"));
    let checkpoints = checkpoints.display().to_string();
    let flags = [
        "--checkpoint",
        &checkpoints,
        "--checkpoint-every",
        "1000",
        "--report",
    ];
    let stopped = run(&demo_args(), &out, &flags, Some(5));
    assert_eq!(stopped.status.code(), Some(75), "{}", stderr(&stopped));
    let resumed = run(
        &demo_args(),
        &out,
        &[&flags[..], &["--resume"]].concat(),
        None,
    );
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_same_outputs(baseline(), &out, "resumed with --report");
    let page = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(page.contains("resumed from a checkpoint"), "{page}");
    let mut expected = crate::report::final_counts(&out);
    for device in ["edge-a", "edge-b", "cloud-c", "cloud-d"] {
        expected.entry(device.to_string()).or_insert(0);
    }
    assert_eq!(crate::report::tasks_at_end(&page), expected);
}

#[test]
fn a_resumed_run_numbers_its_checkpoints_on() {
    let dir = temp("checkpoint-numbers");
    let (out, checkpoints) = (dir.join("out"), dir.join("checkpoints"));
    let checkpoints = checkpoints.display().to_string();
    // Checkpoints at epochs 2000, 4000 (then stopped), 6000 and 8000 of 8124.
    let flags = ["--checkpoint", &checkpoints, "--checkpoint-every", "2000"];
    let stopped = run(&demo_args(), &out, &flags, Some(2));
    assert_eq!(stopped.status.code(), Some(75), "{}", stderr(&stopped));
    // Not quiet this time: each checkpoint is reported on stderr.
    let loud: Vec<String> = demo_args()
        .into_iter()
        .filter(|arg| arg != "--quiet")
        .collect();
    let resumed = run(&loud, &out, &[&flags[..], &["--resume"]].concat(), None);
    let text = stderr(&resumed);
    assert!(resumed.status.success(), "{text}");
    assert!(text.contains("checkpoint 3 at"), "{text}");
    assert!(text.contains("checkpoint 4 at"), "{text}");
    assert!(!text.contains("checkpoint 1 at"), "{text}");
}

#[test]
fn a_log_that_grew_since_its_checkpoint_is_read_on_to_its_new_end() {
    // A log being appended to: the run stops at its end, and is resumed once more rows came.
    // Two ways this went wrong: the last checkpoint (epoch 1,000) came within the lateness
    // (60 s) of the log's end (1,030 s), the feed had already read to that end to release it,
    // and the resumed run took the log as ended and read nothing new; and a log under 64 KiB
    // that grew was refused as another log, its first 64 KiB having been hashed.
    let dir = temp("checkpoint-grown-log");
    let rows: Vec<String> = (0..2_000)
        .map(|s| {
            format!(
                "{},edge-a,cpu,{:.3}\n",
                1_704_067_200 + s,
                0.3 + 0.2 * ((s % 97) as f64 / 97.0)
            )
        })
        .collect();
    let header = "time,device,resource,value\n";
    let log = dir.join("metrics.csv");
    let args = over_one_log(&log);
    std::fs::write(&log, format!("{header}{}", rows.concat())).expect("write the whole log");
    let whole = dir.join("whole");
    let uninterrupted = run(&args, &whole, &[], None);
    assert!(uninterrupted.status.success(), "{}", stderr(&uninterrupted));

    std::fs::write(&log, format!("{header}{}", rows[..1_031].concat())).expect("write the cut");
    let (out, checkpoints) = (
        dir.join("out"),
        dir.join("checkpoints").display().to_string(),
    );
    let flags = ["--checkpoint", &checkpoints, "--checkpoint-every", "500"];
    let first = run(&args, &out, &flags, None);
    assert!(first.status.success(), "{}", stderr(&first));
    // Grown to the whole log: still under 64 KiB, and the checkpoint came within the lateness.
    std::fs::write(&log, format!("{header}{}", rows.concat())).expect("grow the log");
    assert!(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) < 64 * 1024);
    let resumed = run(&args, &out, &[&flags[..], &["--resume"]].concat(), None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let read = &summary(&out)["inputs"][log.display().to_string()]["read"];
    assert_eq!(read, 2_000, "rows read by the resumed run");
    assert_same_outputs(&whole, &out, "a grown log");

    // A log that was empty when the checkpoint was taken has nothing to check: it may grow.
    // And one given by a path that is not UTF-8 is found again (its head was looked up by
    // the path's text, which such a path does not survive).
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = dir.join(std::ffi::OsStr::from_bytes(b"odd\xffname.csv"));
        let empty = dir.join("empty.csv");
        std::fs::write(&odd, format!("{header}{}", rows[..600].concat())).expect("odd log");
        std::fs::write(&empty, "").expect("empty log");
        let odd_out = dir.join("odd-out");
        let odd_checkpoints = dir.join("odd-checkpoints").display().to_string();
        let odd_flags = [
            "--checkpoint",
            &odd_checkpoints,
            "--checkpoint-every",
            "100",
        ];
        let with_odd = |extra: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_augur"))
                .args(&args)
                .arg("--metrics")
                .arg(&odd)
                .arg("--metrics")
                .arg(&empty)
                .arg("--out")
                .arg(&odd_out)
                .args(extra)
                .output()
                .expect("run augur")
        };
        let first = with_odd(&odd_flags);
        assert!(first.status.success(), "{}", stderr(&first));
        std::fs::write(&empty, format!("{header}{}", rows[..50].concat())).expect("grow empty");
        let resumed = with_odd(&[&odd_flags[..], &["--resume"]].concat());
        assert!(resumed.status.success(), "{}", stderr(&resumed));
    }

    // A log replaced by another (its first rows differ) is still refused.
    std::fs::write(&log, format!("{header}{}", rows[1..].concat())).expect("replace the log");
    let refused = run(&args, &out, &[&flags[..], &["--resume"]].concat(), None);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no longer holds the"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn rows_appended_behind_what_a_resumed_run_had_passed_are_refused_and_counted() {
    // The run read its log to the end (1,030 s) and checkpointed there, its reorder buffer
    // flushed past the lateness. Rows appended later but stamped before that end cannot be
    // applied at their own time any more: they were applied at the resumed run's time,
    // silently. Now each is refused, with its line and why, and counted.
    let dir = temp("checkpoint-behind");
    let row = |s: i64| format!("{},edge-a,cpu,0.400\n", 1_704_067_200 + s);
    let header = "time,device,resource,value\n";
    let first: String = (0..1_031).map(row).collect();
    // The last checkpoint was taken at 1,029 s: a row at exactly that time is behind too.
    let appended: String = (1_015..1_021)
        .chain([1_029])
        .chain(1_031..1_100)
        .map(row)
        .collect();
    let log = dir.join("metrics.csv");
    let args = over_one_log(&log);
    std::fs::write(&log, format!("{header}{first}")).expect("write the log");
    let (out, checkpoints) = (
        dir.join("out"),
        dir.join("checkpoints").display().to_string(),
    );
    let flags = ["--checkpoint", &checkpoints, "--checkpoint-every", "10"];
    let ran = run(&args, &out, &flags, None);
    assert!(ran.status.success(), "{}", stderr(&ran));
    std::fs::write(&log, format!("{header}{first}{appended}")).expect("grow the log");
    let resumed = run(&args, &out, &[&flags[..], &["--resume"]].concat(), None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let stats = &summary(&out)["inputs"][log.display().to_string()];
    assert_eq!(stats["read"], 1_031 + 7 + 69, "{stats}");
    assert_eq!(stats["rejected"], 7, "{stats}");
    let rejected = std::fs::read_to_string(out.join("rejected.jsonl")).unwrap_or_default();
    assert_eq!(rejected.lines().count(), 7, "{rejected}");
    assert!(rejected.contains("time 1704068229 is behind"), "{rejected}");
    assert!(rejected.contains("which the run had passed"), "{rejected}");
}

#[test]
fn an_alibaba_log_that_gained_a_machine_resumes_with_its_stream() {
    // Alibaba's machine_usage is read as one stream per machine, in order of first
    // appearance; rows of a machine first seen after the checkpoint made one stream more than
    // the checkpoint had, and the resume was refused whole. Now the machine's stream starts
    // where the run was: its rows before that are refused as passed, the rest applied.
    let dir = temp("checkpoint-alibaba-machine");
    let rows = |machine: &str, steps: std::ops::Range<u64>| -> String {
        steps
            .map(|s| format!("{machine},{},{},50,,,5,6,7\n", 10 * s, 30 + s % 40))
            .collect()
    };
    let before = format!("{}{}", rows("edge-a", 0..200), rows("edge-b", 0..200));
    let log = dir.join("machine_usage.csv");
    std::fs::write(&log, &before).expect("write the log");
    let mut args = over_one_log(&log);
    args.extend(["--format".to_string(), "alibaba".to_string()]);
    let (out, checkpoints) = (
        dir.join("out"),
        dir.join("checkpoints").display().to_string(),
    );
    let flags = ["--checkpoint", &checkpoints, "--checkpoint-every", "50"];
    let first = run(&args, &out, &flags, None);
    assert!(first.status.success(), "{}", stderr(&first));
    // The run reached 1,990 s; cloud-c reports from 1,000 s to 2,990 s. Its row at 1,990 s
    // itself is behind too: that epoch was handed over without it (it was applied at a time
    // no input has, 1,990.001 s).
    std::fs::write(&log, format!("{before}{}", rows("cloud-c", 100..300))).expect("grow");
    let resumed = run(&args, &out, &[&flags[..], &["--resume"]].concat(), None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let stats = &summary(&out)["inputs"][log.display().to_string()];
    assert_eq!(stats["read"], 600, "{stats}");
    assert_eq!(stats["rejected"], 100, "{stats}");
    // Epochs at 0, 10, ..., 2,990 s: none at a time no row has.
    assert_eq!(summary(&out)["epochs"], 300);
    let rejected = std::fs::read_to_string(out.join("rejected.jsonl")).unwrap_or_default();
    assert_eq!(
        rejected.matches("which the run had passed").count(),
        100,
        "{rejected}"
    );
    let forecasts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("forecasts.json")).expect("forecasts"),
    )
    .expect("JSON");
    assert!(
        forecasts["cloud-c"]["cpu"]["latest"].is_number(),
        "{forecasts}"
    );
    // Resumed again with nothing new: the three streams are the checkpoint's now.
    let again = run(&args, &out, &[&flags[..], &["--resume"]].concat(), None);
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn a_line_cut_off_at_the_logs_end_is_continued_after_the_resume() {
    // A log being written, read to its end in the middle of a row: the run takes the part as
    // it stands (here it is too short to be a row, and refused). Once the row is finished, the
    // resumed run read its rest as a line of its own, with every later line's number one off;
    // it is now refused as the rest of that line, and line numbers go on as in the log.
    let dir = temp("checkpoint-torn-line");
    let row = |s: i64| format!("{},edge-a,cpu,0.400\n", 1_704_067_200 + s);
    let header = "time,device,resource,value\n";
    let first: String = (0..1_031).map(row).collect();
    let torn = row(1_031);
    let (head, rest) = torn.split_at(16);
    let bad_later = "not a row\n";
    let later: String = (1_032..1_100).map(row).collect();
    let log = dir.join("metrics.csv");
    let args = over_one_log(&log);
    std::fs::write(&log, format!("{header}{first}{head}")).expect("write the cut log");
    let (out, checkpoints) = (
        dir.join("out"),
        dir.join("checkpoints").display().to_string(),
    );
    let flags = ["--checkpoint", &checkpoints, "--checkpoint-every", "500"];
    let ran = run(&args, &out, &flags, None);
    assert!(ran.status.success(), "{}", stderr(&ran));
    std::fs::write(
        &log,
        format!("{header}{first}{head}{rest}{bad_later}{later}"),
    )
    .expect("grow the log");
    let resumed = run(&args, &out, &[&flags[..], &["--resume"]].concat(), None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let rejected = std::fs::read_to_string(out.join("rejected.jsonl")).unwrap_or_default();
    let lines: Vec<serde_json::Value> = rejected
        .lines()
        .map(|line| serde_json::from_str(line).expect("a rejection is JSON"))
        .collect();
    // The row was line 1,033 (after the header and 1,031 rows), and the bad row after it 1,034.
    let numbers: Vec<_> = lines.iter().map(|r| r["line"].clone()).collect();
    assert_eq!(numbers, [1_033, 1_033, 1_034], "{rejected}");
    let reason = lines[1]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("the rest of line 1033"), "{reason}");
    let stats = &summary(&out)["inputs"][log.display().to_string()];
    assert_eq!(stats["read"], 1_031 + 2 + 1 + 68, "{stats}");
    assert_eq!(stats["rejected"], 3, "{stats}");
}

#[test]
fn a_checkpoint_folder_in_use_by_another_process_is_refused() {
    // Two services resumed from one folder raced each other's checkpoints (a tester: the
    // first, still draining, lost its last one). The folder is locked by the process writing
    // it; the lock is the operating system's, so a crashed run leaves none behind.
    let dir = temp("checkpoint-busy");
    let checkpoints = dir.join("checkpoints");
    let flags = ["--checkpoint", checkpoints.to_str().expect("UTF-8")];
    let held = augur::checkpoint::lock_folder(&checkpoints, false).expect("lock");
    let refused = run(&demo_args(), &dir.join("out"), &flags, None);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("another augur is using this checkpoint folder"),
        "{}",
        stderr(&refused)
    );
    drop(held);
    let ran = run(&demo_args(), &dir.join("out"), &flags, None);
    assert!(ran.status.success(), "{}", stderr(&ran));
}

#[test]
fn kill_9_then_resume_gives_the_same_map() {
    let baseline = baseline();
    let dir = temp("checkpoint-kill");
    let args = demo_args();
    let out = dir.join("out");
    let checkpoints = dir.join("checkpoints");
    let flags = [
        "--checkpoint",
        &checkpoints.display().to_string(),
        "--checkpoint-every",
        "50",
    ]
    .map(str::to_string);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The run holds still after its third checkpoint (the demo runs in well under a second),
    // so that SIGKILL lands on a live process past a checkpoint, at the same point every time.
    let mut child = command(&args, &out, &flags)
        .env(PAUSE_AFTER, "3")
        .stderr(Stdio::null())
        .spawn()
        .expect("start augur");
    let latest = checkpoints.join(augur::checkpoint::LATEST);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !latest.exists() && Instant::now() < deadline {
        if child.try_wait().expect("poll").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(latest.exists(), "no checkpoint appeared");
    std::thread::sleep(Duration::from_millis(100));
    let _ = child.kill(); // SIGKILL on Unix.
    let status = child.wait().expect("wait");
    assert!(
        status.code().is_none(),
        "the run ended ({status}) before it could be killed"
    );
    assert!(
        !out.join("final_map.json").exists(),
        "the killed run must not have finished"
    );
    let mut resuming = flags.clone();
    resuming.push("--resume");
    let resumed = run(&args, &out, &resuming, None);
    assert!(resumed.status.success(), "resume: {}", stderr(&resumed));
    assert_same_outputs(baseline, &out, "killed with SIGKILL and resumed");
}

#[test]
fn damaged_missing_or_foreign_checkpoints_are_refused_clearly() {
    let dir = temp("checkpoint-refused");
    let args = short_scenario(&dir, 300);
    let out = dir.join("out");
    let checkpoints = dir.join("checkpoints");
    let dir_flag = checkpoints.display().to_string();
    let flags = ["--checkpoint", &dir_flag, "--checkpoint-every", "20"];
    let first = run(&args, &out, &flags, None);
    assert!(first.status.success(), "{}", stderr(&first));
    let resume = [
        "--checkpoint",
        &dir_flag,
        "--checkpoint-every",
        "20",
        "--resume",
    ];
    let refused = |extra: &[&str], args: &[String], expected: &str, context: &str| {
        let output = run(args, &out, extra, None);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{context}: {message}");
        assert!(message.contains(expected), "{context}: {message}");
        assert!(!message.contains("panicked"), "{context}: {message}");
    };

    // An intact checkpoint resumes.
    let resumed = run(&args, &out, &resume, None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));

    // Outputs that another run has rewritten since (here one byte of the map's history, at its
    // start) are not spliced onto: the checkpoint holds a hash of what it had written.
    let partition = out.join("partition.jsonl");
    let written = std::fs::read(&partition).expect("partition.jsonl");
    let mut rewritten = written.clone();
    rewritten[2] = if rewritten[2] == b'x' { b'y' } else { b'x' };
    std::fs::write(&partition, &rewritten).expect("rewrite");
    refused(
        &resume,
        &args,
        "not what the checkpointed run wrote",
        "rewritten outputs",
    );
    std::fs::write(&partition, &written).expect("restore partition.jsonl");

    // A refused resume changes nothing: the map's history, longer than the checkpoint recorded
    // (as a killed run leaves it), is not cut back when a later output is found rewritten.
    let rejected_path = out.join("rejected.jsonl");
    let rejected = std::fs::read(&rejected_path).expect("rejected.jsonl");
    let mut longer = written.clone();
    longer.extend_from_slice(b"{\"a partial line");
    std::fs::write(&partition, &longer).expect("lengthen");
    let mut flipped = rejected.clone();
    if let Some(first) = flipped.first_mut() {
        *first ^= 0x20;
    }
    std::fs::write(&rejected_path, &flipped).expect("rewrite rejected.jsonl");
    refused(
        &resume,
        &args,
        "not what the checkpointed run wrote",
        "a later output rewritten",
    );
    assert_eq!(std::fs::read(&partition).expect("partition.jsonl"), longer);
    std::fs::write(&rejected_path, &rejected).expect("restore rejected.jsonl");
    std::fs::write(&partition, &written).expect("restore partition.jsonl");
    let gone = std::fs::read(&rejected_path).expect("rejected.jsonl");
    std::fs::remove_file(&rejected_path).expect("remove rejected.jsonl");
    if !gone.is_empty() {
        refused(&resume, &args, "the output is missing", "a deleted output");
    }
    std::fs::write(&rejected_path, &gone).expect("restore rejected.jsonl");

    // Other settings, other inputs.
    let mut other_policy = resume.to_vec();
    other_policy.extend(["--policy", "static"]);
    refused(
        &other_policy,
        &args,
        "other inputs or settings, changed since: the placement settings (--policy",
        "another policy",
    );
    let series = dir.join("metrics/ec2_cpu_utilization_24ae8d.csv");
    let original = std::fs::read(&series).expect("series");
    let mut changed = original.clone();
    // Within the head the checkpoint recorded.
    let at = (changed.len() / 2).min(60_000);
    changed[at] = if changed[at] == b'7' { b'8' } else { b'7' };
    std::fs::write(&series, &changed).expect("change series");
    refused(
        &resume,
        &args,
        "no longer holds the",
        "a changed metric log",
    );
    std::fs::write(&series, &original).expect("restore series");

    // Damaged files.
    let latest = checkpoints.join(augur::checkpoint::LATEST);
    let intact = std::fs::read(&latest).expect("checkpoint");
    std::fs::write(&latest, &intact[..intact.len() / 2]).expect("truncate");
    refused(
        &resume,
        &args,
        "not a usable checkpoint",
        "a truncated checkpoint",
    );
    let mut flipped = intact.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x5a;
    std::fs::write(&latest, &flipped).expect("flip");
    refused(&resume, &args, "not a usable checkpoint", "a flipped byte");
    std::fs::write(&latest, b"not a checkpoint at all").expect("garbage");
    refused(&resume, &args, "not a usable checkpoint", "garbage");
    std::fs::write(&latest, b"").expect("empty");
    refused(&resume, &args, "not a usable checkpoint", "an empty file");

    // Nothing to resume from: refused, and the mistyped folder is not made.
    let empty = dir.join("empty").display().to_string();
    refused(
        &["--checkpoint", &empty, "--resume"],
        &args,
        "no checkpoint to resume from",
        "an empty folder",
    );
    assert!(!dir.join("empty").exists(), "a folder made to resume from");
    let zero = run(
        &args,
        &out,
        &["--checkpoint", &empty, "--checkpoint-every", "0"],
        None,
    );
    assert_eq!(zero.status.code(), Some(2), "{}", stderr(&zero));
}

/// A log changed anywhere in what the run had read of it, far past its first bytes, is refused
/// under its own name, whether the edit moves every later line (an insertion) or keeps every
/// length (a digit changed, which no offset check can see); the logs after it, unchanged, are
/// not named.
#[test]
fn a_log_changed_past_its_head_is_the_only_one_named() {
    let dir = temp("checkpoint-changed-past-head");
    let args = short_scenario(&dir, 4_000);
    let out = dir.join("out");
    let dir_flag = dir.join("checkpoints").display().to_string();
    let flags = ["--checkpoint", &dir_flag, "--checkpoint-every", "500"];
    let first = run(&args, &out, &flags, None);
    assert!(first.status.success(), "{}", stderr(&first));
    let changed = dir.join("metrics/ec2_cpu_utilization_24ae8d.csv");
    let text = std::fs::read_to_string(&changed).expect("series");
    assert!(text.len() > 80_000, "the log must outgrow its first 64 KiB");
    let resume = ["--checkpoint", &dir_flag, "--resume"];
    // One line past 64 KiB a byte longer: every line end after it moves by one.
    let at = 70_000 + text[70_000..].find('\n').expect("a line end");
    let mut inserted = text.clone();
    inserted.insert(at, '0');
    // A digit past 64 KiB changed: every length stays.
    let mut replaced = text.clone().into_bytes();
    let digit = 70_000
        + replaced[70_000..]
            .iter()
            .position(|b| b.is_ascii_digit())
            .expect("a digit");
    replaced[digit] = if replaced[digit] == b'7' { b'8' } else { b'7' };
    for (edit, what) in [
        (inserted.into_bytes(), "an insertion"),
        (replaced, "a digit"),
    ] {
        std::fs::write(&changed, &edit).expect("edit");
        let output = run(&args, &out, &resume, None);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{what}: {message}");
        assert!(
            message.contains("ec2_cpu_utilization_24ae8d.csv")
                && message.contains("no longer holds the"),
            "{what}: {message}"
        );
        for unchanged in [
            "ec2_cpu_utilization_53ea38.csv",
            "ec2_cpu_utilization_5f5533.csv",
            "rds_cpu_utilization_cc0c53.csv",
        ] {
            assert!(
                !message.contains(unchanged),
                "{what}: {unchanged} named: {message}"
            );
        }
    }
    // Cut short: the message says how long it is now.
    std::fs::write(&changed, &text[..70_000]).expect("cut");
    let cut = stderr(&run(&args, &out, &resume, None));
    assert!(cut.contains("(it has 70000 bytes now)"), "{cut}");
    // Restored, the log resumes.
    std::fs::write(&changed, &text).expect("restore");
    let resumed = run(&args, &out, &resume, None);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
}

#[test]
fn checkpoint_of_one_process_resumes_on_two() {
    let dir = temp("checkpoint-cluster");
    let args = short_scenario(&dir, 400);
    let whole = dir.join("whole");
    let output = run(&args, &whole, &[], None);
    assert!(output.status.success(), "{}", stderr(&output));

    let out = dir.join("out");
    let checkpoints = dir.join("checkpoints").display().to_string();
    let flags = ["--checkpoint", &checkpoints, "--checkpoint-every", "100"];
    let stopped = run(&args, &out, &flags, Some(2));
    assert_eq!(stopped.status.code(), Some(75), "{}", stderr(&stopped));

    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port")
    };
    let hostfile = dir.join("hosts.txt");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", port(), port()),
    )
    .expect("hostfile");
    let hosts = hostfile.display().to_string();
    let mut processes: Vec<_> = ["0", "1"]
        .iter()
        .map(|index| {
            let mut extra = flags.to_vec();
            extra.extend([
                "--resume",
                "--processes",
                "2",
                "--hostfile",
                &hosts,
                "--process",
                index,
            ]);
            command(&args, &out, &extra)
                .stderr(Stdio::piped())
                .spawn()
                .expect("start augur")
        })
        .collect();
    for (index, process) in processes.drain(..).enumerate() {
        let output = process.wait_with_output().expect("wait");
        assert!(
            output.status.success(),
            "process {index}: {}",
            stderr(&output)
        );
    }
    assert_same_outputs(&whole, &out, "written by 1 process, resumed on 2");
}

mod engine_level {
    //! The same at the engine's level, on the oracle test's seeded streams (inserts and
    //! retractions of tasks, starts, edges, alternatives, samples, completions) and under every
    //! policy: a run resumed from its j-th checkpoint, with another worker count, reports the
    //! same map, forecasts, estimates, advice and re-sculpted tasks after every later epoch.

    use std::collections::BTreeMap;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use augur::checkpoint::{decode, encode};
    use augur::engine::{
        apply_changes, run_engine_checkpointed, BatchSource, CheckpointStore, Checkpointing,
        DurationUpdate, EngineSnapshot, ForecastUpdate, MapSink, MapUpdate, PrewarmUpdate,
        VariantUpdate, Workers,
    };
    use augur_dataflows::contention_forecast::SeriesForecast;
    use augur_dataflows::placement::{PlacementConfig, Policy};
    use augur_dataflows::types::{DeviceId, InputBatch, Resculpt, Resource, TaskKey, Time};
    use augur_dataflows::EngineConfig;

    use crate::oracle_vs_dataflow::{devices, seeded_stream};

    /// A fixed stream that knows how far it got, and what its collections hold there.
    struct StreamSource {
        stream: Vec<(Time, InputBatch)>,
        next: usize,
    }

    impl BatchSource for StreamSource {
        type Error = Infallible;

        fn next_batch(&mut self) -> Result<Option<(Time, InputBatch)>, Infallible> {
            let batch = self.stream.get(self.next).cloned();
            self.next += 1;
            Ok(batch)
        }

        fn snapshot(&mut self) -> Result<Option<Vec<u8>>, Infallible> {
            Ok(encode(&(self.next as u64)).ok())
        }

        fn live_collections(&self) -> InputBatch {
            let mut live = InputBatch::default();
            for (_, batch) in self.stream.iter().take(self.next) {
                live.tasks.extend(batch.tasks.iter().copied());
                live.started.extend(batch.started.iter().copied());
                live.edges.extend(batch.edges.iter().copied());
                live.alternatives.extend(batch.alternatives.iter().copied());
            }
            differential_dataflow::consolidation::consolidate(&mut live.tasks);
            differential_dataflow::consolidation::consolidate(&mut live.started);
            differential_dataflow::consolidation::consolidate(&mut live.edges);
            differential_dataflow::consolidation::consolidate(&mut live.alternatives);
            live
        }
    }

    /// Everything the engine reports, as it stands after an epoch.
    #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Reported {
        map: BTreeMap<TaskKey, DeviceId>,
        forecasts: BTreeMap<(DeviceId, Resource), SeriesForecast>,
        durations: BTreeMap<(u32, u32), u64>,
        prewarm: BTreeMap<u32, u32>,
        /// Tasks run as an alternative or ahead of their placement order, with the figures.
        resculpted: std::collections::BTreeSet<Resculpt>,
    }

    #[derive(Clone, Default)]
    struct StateSink {
        now: Reported,
        log: Arc<Mutex<Vec<(Time, Reported)>>>,
    }

    impl MapSink for StateSink {
        type Error = Infallible;
        fn forecasts(&mut self, _: Time, changes: &[ForecastUpdate]) -> Result<(), Infallible> {
            apply_changes(&mut self.now.forecasts, changes);
            Ok(())
        }
        fn durations(&mut self, _: Time, changes: &[DurationUpdate]) -> Result<(), Infallible> {
            apply_changes(&mut self.now.durations, changes);
            Ok(())
        }
        fn prewarm(&mut self, _: Time, changes: &[PrewarmUpdate]) -> Result<(), Infallible> {
            apply_changes(&mut self.now.prewarm, changes);
            Ok(())
        }
        fn variants(&mut self, _: Time, changes: &[VariantUpdate]) -> Result<(), Infallible> {
            for &(resculpt, diff) in changes {
                if diff > 0 {
                    self.now.resculpted.insert(resculpt);
                } else {
                    self.now.resculpted.remove(&resculpt);
                }
            }
            Ok(())
        }
        fn epoch(
            &mut self,
            time: Time,
            changes: &[MapUpdate],
            _: Duration,
        ) -> Result<(), Infallible> {
            apply_changes(&mut self.now.map, changes);
            if let Ok(mut log) = self.log.lock() {
                log.push((time, self.now.clone()));
            }
            Ok(())
        }
        fn snapshot(&mut self) -> Result<Option<Vec<u8>>, Infallible> {
            Ok(encode(&self.now).ok())
        }
    }

    #[derive(Clone, Default)]
    struct MemoryStore(Arc<Mutex<Vec<EngineSnapshot>>>);

    impl CheckpointStore for MemoryStore {
        fn save(&mut self, snapshot: &EngineSnapshot) -> Result<(), String> {
            let mut kept = self.0.lock().map_err(|e| e.to_string())?;
            kept.push(snapshot.clone());
            Ok(())
        }
    }

    fn run(
        stream: &[(Time, InputBatch)],
        policy: Policy,
        workers: usize,
        every: u64,
        resume: Option<EngineSnapshot>,
    ) -> (Vec<(Time, Reported)>, Vec<EngineSnapshot>) {
        let config = EngineConfig {
            devices: devices(),
            placement: PlacementConfig {
                policy,
                ..PlacementConfig::default()
            },
            ..EngineConfig::default()
        };
        let (next, now) = match &resume {
            Some(snapshot) => (
                decode::<u64>(&snapshot.source).expect("source state") as usize,
                decode::<Reported>(&snapshot.sink).expect("sink state"),
            ),
            None => (0, Reported::default()),
        };
        let sink = StateSink {
            now,
            log: Arc::default(),
        };
        let log = Arc::clone(&sink.log);
        let store = MemoryStore::default();
        let kept = Arc::clone(&store.0);
        let checkpointing = Checkpointing {
            every,
            at_end: false,
            store: Box::new(store),
            resume,
        };
        let stream = stream.to_vec();
        let outcome = run_engine_checkpointed(
            Workers::Threads(workers),
            config,
            Some(checkpointing),
            move || {
                let source = StreamSource {
                    stream: stream.clone(),
                    next,
                };
                (source, sink.clone())
            },
        );
        assert!(outcome.is_ok(), "engine failed");
        let log = log.lock().map(|l| l.clone()).unwrap_or_default();
        let kept = kept.lock().map(|k| k.clone()).unwrap_or_default();
        (log, kept)
    }

    #[test]
    fn resumed_engine_matches_uninterrupted_for_every_policy() {
        for policy in Policy::ALL {
            for (seed, writers, resumers) in [(40, 1, 2), (41, 2, 1), (42, 2, 3)] {
                let stream = seeded_stream(seed, 150);
                let (whole, snapshots) = run(&stream, policy, writers, 25, None);
                assert_eq!(whole.len(), stream.len());
                assert_eq!(snapshots.len(), 150 / 25);
                for j in [0, 2, 4] {
                    let snapshot = snapshots[j].clone();
                    let from = snapshot.epochs as usize;
                    let (resumed, later) = run(&stream, policy, resumers, 25, Some(snapshot));
                    let context = format!(
                        "{policy:?}, seed {seed}, checkpoint {j}, {writers}->{resumers} workers"
                    );
                    assert_eq!(resumed.len(), whole.len() - from, "{context}");
                    for ((time, want), (got_time, got)) in whole[from..].iter().zip(&resumed) {
                        assert_eq!(time, got_time, "{context}");
                        assert_eq!(want, got, "{context}: at {time}");
                    }
                    // And the resumed run's own checkpoints are the uninterrupted run's.
                    for (mine, theirs) in later.iter().zip(&snapshots[j + 1..]) {
                        assert_eq!(mine.time, theirs.time, "{context}");
                        assert_eq!(mine.epochs, theirs.epochs, "{context}");
                        assert_eq!(mine.sink, theirs.sink, "{context}");
                    }
                }
            }
        }
    }
}

/// A resume may name the same logs and files otherwise (`./m.csv` for `m.csv`): they are the
/// same inputs, so the run goes on from its checkpoint, and its counts go by the names given
/// now. The text of the names was hashed as given, and such a resume was refused as over
/// other logs.
#[test]
fn a_resume_that_spells_the_paths_otherwise_goes_on() {
    let baseline = baseline();
    let dir = temp("checkpoint-spelling");
    let args = demo_args();
    let respelled: Vec<String> = args
        .iter()
        .map(|arg| arg.replace("/demo/", "/demo/./"))
        .collect();
    assert_ne!(
        args, respelled,
        "the demo's paths run through a demo folder"
    );
    let out = dir.join("out");
    let checkpoints = dir.join("checkpoints").display().to_string();
    let flags = ["--checkpoint", &checkpoints, "--checkpoint-every", "1000"];
    let stopped = run(&args, &out, &flags, Some(2));
    assert_eq!(stopped.status.code(), Some(75), "{}", stderr(&stopped));
    let resumed = run(
        &respelled,
        &out,
        &[&flags[..], &["--resume"]].concat(),
        None,
    );
    assert!(resumed.status.success(), "resume: {}", stderr(&resumed));
    for file in COMPARED.iter().filter(|&&file| file != "rejected.jsonl") {
        let read = |dir: &Path| std::fs::read(dir.join(file)).unwrap_or_default();
        assert!(read(baseline) == read(&out), "{file} differs");
    }
    // Every input counted in full under the name the resume gave it.
    let (expected, actual) = (summary(baseline), summary(&out));
    for (name, spelled) in args.iter().zip(&respelled).filter(|(a, b)| a != b) {
        if let Some(counts) = expected["inputs"].get(name) {
            assert_eq!(&actual["inputs"][spelled], counts, "{spelled}");
        }
    }
    assert_eq!(expected["epochs"], actual["epochs"]);
}
