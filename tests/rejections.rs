//! One test per kind of bad input: no panic, a clear line in rejected.jsonl, and counts in
//! summary.json with read = accepted + rejected for every input.

use augur::cli::{run_config, Cli, Command};
use augur::run::{run, RunError, RunOutcome};
use augur::testing::Scratch;
use clap::Parser;
use serde_json::Value;

struct Scenario {
    dir: Scratch,
}

impl Scenario {
    fn new(name: &str) -> Scenario {
        let dir = Scratch::new(&format!("reject-{name}"));
        let scenario = Scenario { dir };
        scenario.write(
            "platform.toml",
            "[[device]]\nid = \"n1\"\ncores = 4\nmemory_gib = 8\n\n[[device]]\nid = \"n2\"\ncores = 8\nmemory_gib = 16\nspeed = 2.0\n",
        );
        scenario
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write fixture");
        path.display().to_string()
    }

    /// Runs `augur run` with these extra flags (plus --platform and --out).
    fn run(&self, flags: &[&str]) -> Result<Option<RunOutcome>, RunError> {
        let platform = self.dir.join("platform.toml").display().to_string();
        self.run_bare(&[&["--platform", platform.as_str()], flags].concat())
    }

    /// Runs `augur run` with these extra flags and --out only: no platform unless given.
    fn run_bare(&self, flags: &[&str]) -> Result<Option<RunOutcome>, RunError> {
        let out = self.dir.join("out").display().to_string();
        let mut argv = vec!["augur", "run", "--out", &out, "--quiet"];
        argv.extend_from_slice(flags);
        let Ok(Cli {
            command: Command::Run(args),
        }) = Cli::try_parse_from(argv)
        else {
            panic!("bad test flags: {flags:?}");
        };
        run(&run_config(&args).expect("valid config"))
    }

    /// (line, kind) of every line of `rejected.jsonl` about `file`, in the log's order.
    fn lines_of(&self, file: &str) -> Vec<(u64, String)> {
        self.rejected()
            .iter()
            .filter(|r| r["file"] == file)
            .map(|r| {
                let line = r["line"].as_u64().expect("a line");
                (line, r["kind"].as_str().unwrap_or_default().to_string())
            })
            .collect()
    }

    fn rejected(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("out/rejected.jsonl"))
            .expect("rejected.jsonl")
            .lines()
            .map(|line| serde_json::from_str(line).expect("each rejection is JSON"))
            .collect()
    }

    fn summary(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.join("out/summary.json")).expect("summary");
        serde_json::from_str(&text).expect("summary is JSON")
    }

    /// Checks the accounting of every input and returns the counts of `file`.
    fn counts(&self, file: &str) -> (u64, u64, u64) {
        let summary = self.summary();
        let inputs = summary["inputs"].as_object().expect("inputs");
        for (path, counts) in inputs {
            let read = counts["read"].as_u64().expect("read");
            let accepted = counts["accepted"].as_u64().expect("accepted");
            let rejected = counts["rejected"].as_u64().expect("rejected");
            assert_eq!(
                read,
                accepted + rejected,
                "{path}: read != accepted + rejected"
            );
        }
        let counts = &inputs[file];
        (
            counts["read"].as_u64().expect("read"),
            counts["accepted"].as_u64().expect("accepted"),
            counts["rejected"].as_u64().expect("rejected"),
        )
    }

    fn has_rejection(&self, kind: &str, line: Option<u64>, reason_part: &str) {
        let rejected = self.rejected();
        let found = rejected.iter().any(|r| {
            r["kind"] == kind
                && line.is_none_or(|l| r["line"] == l)
                && r["reason"]
                    .as_str()
                    .is_some_and(|s| s.contains(reason_part))
        });
        assert!(
            found,
            "no {kind} rejection at {line:?} mentioning '{reason_part}' in {rejected:#?}"
        );
    }
}

/// A WfFormat 1.5 document from (id, parents, runtime, cores) tuples.
fn workflow(tasks: &[(&str, &[&str], f64, u32)]) -> String {
    let spec: Vec<Value> = tasks
        .iter()
        .map(|(id, parents, _, _)| {
            serde_json::json!({"name": id, "id": id, "parents": parents, "children": [],
                               "inputFiles": [], "outputFiles": []})
        })
        .collect();
    let exec: Vec<Value> = tasks
        .iter()
        .map(|(id, _, runtime, cores)| {
            serde_json::json!({"id": id, "runtimeInSeconds": runtime, "coreCount": cores})
        })
        .collect();
    serde_json::json!({
        "name": "test", "schemaVersion": "1.5",
        "workflow": {"specification": {"tasks": spec, "files": []},
                     "execution": {"makespanInSeconds": 1.0, "executedAt": "20240101T000000+0000",
                                   "tasks": exec, "machines": []}}
    })
    .to_string()
}

const GOOD: &[(&str, &[&str], f64, u32)] = &[("a", &[], 10.0, 1), ("b", &["a"], 5.0, 2)];

#[test]
fn cyclic_workflow_is_rejected_whole_and_names_the_cycle() {
    let s = Scenario::new("cycle");
    let wf = s.write(
        "cyc.json",
        &workflow(&[
            ("a", &["c"], 1.0, 1),
            ("b", &["a"], 1.0, 1),
            ("c", &["b"], 1.0, 1),
            ("d", &[], 1.0, 1),
        ]),
    );
    let outcome = s
        .run(&["--workflow", &wf])
        .expect("runs")
        .expect("process 0");
    assert_eq!(s.counts(&wf), (4, 0, 4));
    s.has_rejection("cycle", None, "->");
    assert!(outcome.final_map.is_empty());
}

#[test]
fn dangling_parent_and_duplicate_id() {
    let s = Scenario::new("dangling");
    let dangling = s.write("dangling.json", &workflow(&[("a", &["ghost"], 1.0, 1)]));
    let duplicate = s.write(
        "dup.json",
        &workflow(&[("a", &[], 1.0, 1), ("a", &[], 1.0, 1)]),
    );
    let good = s.write("good.json", &workflow(GOOD));
    let outcome = s
        .run(&["--workflow", &dangling, &duplicate, &good])
        .expect("runs")
        .expect("process 0");
    s.has_rejection("dangling_parent", None, "ghost");
    s.has_rejection("duplicate_id", None, "a");
    assert_eq!(s.counts(&dangling).2, 1);
    assert_eq!(s.counts(&duplicate).2, 2);
    assert_eq!(s.counts(&good), (2, 2, 0));
    assert_eq!(
        outcome.final_map["good"].len(),
        2,
        "the good workflow still runs"
    );
}

#[test]
fn infeasible_task_rejects_its_workflow() {
    let s = Scenario::new("infeasible");
    let wf = s.write(
        "big.json",
        &workflow(&[("a", &[], 1.0, 1), ("huge", &[], 1.0, 64)]),
    );
    s.run(&["--workflow", &wf]).expect("runs");
    s.has_rejection("infeasible", None, "huge");
    assert_eq!(s.counts(&wf), (2, 0, 2));
}

#[test]
fn metric_values_unknown_devices_nan_infinite_negative() {
    let s = Scenario::new("values");
    let wf = s.write("good.json", &workflow(GOOD));
    let metrics = s.write(
        "m.csv",
        "time,device,resource,value\n0,n1,cpu,0.5\n1,nowhere,cpu,0.5\n2,n1,cpu,NaN\n3,n1,cpu,inf\n4,n1,cpu,-0.2\n5,n2,cpu,1.7\n6,n1,gpu,0.5\n",
    );
    s.run(&["--workflow", &wf, "--metrics", &metrics])
        .expect("runs");
    s.has_rejection("unknown_device", Some(3), "nowhere");
    s.has_rejection("non_finite", Some(4), "");
    s.has_rejection("non_finite", Some(5), "");
    s.has_rejection("negative", Some(6), "");
    // Over-commit (1.7) is kept; an unknown resource is a parse error.
    let (read, accepted, rejected) = s.counts(&metrics);
    assert_eq!((read, accepted, rejected), (7, 2, 5));
}

#[test]
fn quoted_csv_fields_are_read_and_broken_quoting_is_refused_by_line() {
    // A platform whose device name holds a comma, as a spreadsheet export quotes it.
    let s = Scenario::new("quotes");
    s.write(
        "platform.toml",
        "[[device]]\nid = \"rack 1, node 3\"\ncores = 4\nmemory_gib = 8\n\n[[device]]\nid = \"n2\"\ncores = 8\nmemory_gib = 16\n",
    );
    let wf = s.write("good.json", &workflow(GOOD));
    let metrics = s.write(
        "m.csv",
        "time,device,resource,value\n\
         0,\"rack 1, node 3\",cpu,0.5\n\
         1,\"n2\",cpu,\"0.25\"\n\
         2,\"rack 1, node 3,cpu,0.5\n\
         3,\"n2\"x,cpu,0.5\n\
         4,rack 1, node 3,cpu,0.5\n",
    );
    s.run(&["--workflow", &wf, "--metrics", &metrics])
        .expect("runs");
    s.has_rejection(
        "parse",
        Some(4),
        "field 2 opens a double quote that is never closed",
    );
    s.has_rejection(
        "parse",
        Some(5),
        "field 2 has text after its closing double quote",
    );
    // Unquoted, the comma splits the name: one column too many for the header.
    s.has_rejection("schema", Some(6), "5 columns where the header has 4");
    assert_eq!(s.counts(&metrics), (5, 2, 3));
}

#[test]
fn an_input_with_nothing_accepted_is_pointed_out() {
    let s = Scenario::new("nothing-accepted");
    let wf = s.write("good.json", &workflow(GOOD));
    let good = s.write("m.csv", "time,device,resource,value\n0,n1,cpu,0.5\n");
    let wrong = s.write(
        "nowhere.csv",
        "time,device,resource,value\n0,x,cpu,0.5\n1,y,cpu,0.1\n",
    );
    let outcome = s
        .run(&["--workflow", &wf, "--metrics", &good, "--metrics", &wrong])
        .expect("runs")
        .expect("an outcome");
    let flagged: Vec<(&str, u64)> = outcome
        .summary
        .inputs_with_nothing_accepted()
        .map(|(path, counts)| (path, counts.read))
        .collect();
    assert_eq!(flagged, vec![(wrong.as_str(), 2)]);
}

#[test]
fn out_of_order_beyond_lateness() {
    let s = Scenario::new("lateness");
    let wf = s.write("good.json", &workflow(GOOD));
    let metrics = s.write(
        "m.jsonl",
        concat!(
            "{\"time\":100,\"device\":\"n1\",\"resource\":\"cpu\",\"value\":0.1}\n",
            "{\"time\":200,\"device\":\"n1\",\"resource\":\"cpu\",\"value\":0.2}\n",
            "{\"time\":150,\"device\":\"n1\",\"resource\":\"cpu\",\"value\":0.3}\n",
            "{\"time\":50,\"device\":\"n1\",\"resource\":\"cpu\",\"value\":0.4}\n",
        ),
    );
    s.run(&["--workflow", &wf, "--metrics", &metrics, "--lateness", "60"])
        .expect("runs");
    s.has_rejection("out_of_order", Some(4), "lateness");
    assert_eq!(s.counts(&metrics), (4, 3, 1));
}

#[test]
fn oversized_line() {
    let s = Scenario::new("oversized");
    let wf = s.write("good.json", &workflow(GOOD));
    let config = s.write("c.toml", "max_line_bytes = 64\n");
    let long = format!("1,n1,cpu,0.{}\n", "1".repeat(200));
    let metrics = s.write(
        "m.csv",
        &format!("time,device,resource,value\n0,n1,cpu,0.5\n{long}2,n1,cpu,0.5\n"),
    );
    s.run(&[
        "--workflow",
        &wf,
        "--metrics",
        &metrics,
        "--config",
        &config,
    ])
    .expect("runs");
    s.has_rejection("oversized_line", Some(3), "");
    assert_eq!(s.counts(&metrics), (3, 2, 1));
}

#[test]
fn events_bad_transitions_unknown_task_workflow_device() {
    let s = Scenario::new("events");
    let wf = s.write("good.json", &workflow(GOOD));
    let events = s.write(
        "e.jsonl",
        concat!(
            "{\"time\":0,\"kind\":\"arrival\",\"workflow\":\"good\"}\n",
            "{\"time\":1,\"kind\":\"start\",\"workflow\":\"good\",\"task\":\"a\",\"device\":\"n1\"}\n",
            "{\"time\":2,\"kind\":\"start\",\"workflow\":\"good\",\"task\":\"a\",\"device\":\"n2\"}\n",
            "{\"time\":3,\"kind\":\"complete\",\"workflow\":\"good\",\"task\":\"a\",\"duration\":2}\n",
            "{\"time\":4,\"kind\":\"complete\",\"workflow\":\"good\",\"task\":\"a\"}\n",
            "{\"time\":5,\"kind\":\"start\",\"workflow\":\"good\",\"task\":\"zz\",\"device\":\"n1\"}\n",
            "{\"time\":6,\"kind\":\"start\",\"workflow\":\"other\",\"task\":\"a\",\"device\":\"n1\"}\n",
            "{\"time\":7,\"kind\":\"start\",\"workflow\":\"good\",\"task\":\"b\",\"device\":\"gpu\"}\n",
            "{\"time\":8,\"kind\":\"explode\",\"workflow\":\"good\",\"task\":\"b\"}\n",
            "not json\n",
            "{\"time\":9,\"kind\":\"complete\",\"workflow\":\"good\",\"task\":\"b\",\"duration\":-1}\n",
        ),
    );
    let outcome = s
        .run(&["--workflow", &wf, "--events", &events])
        .expect("runs")
        .expect("p0");
    s.has_rejection("bad_transition", Some(3), "already started");
    s.has_rejection("bad_transition", Some(5), "already completed");
    s.has_rejection("unknown_task", Some(6), "zz");
    s.has_rejection("unknown_workflow", Some(7), "other");
    s.has_rejection("unknown_device", Some(8), "gpu");
    s.has_rejection("parse", Some(9), "");
    s.has_rejection("parse", Some(10), "");
    // A bad optional field costs the field, not the completion.
    s.has_rejection("dropped_field", Some(11), "duration");
    assert_eq!(s.counts(&events), (11, 4, 7));
    assert_eq!(s.summary()["inputs"][&events]["dropped_fields"], 1);
    let logged = s
        .rejected()
        .iter()
        .filter(|r| r["file"] == events.as_str())
        .count();
    assert_eq!(logged, 7 + 1, "rejected + dropped_fields lines");
    // a and b completed.
    assert!(outcome
        .final_map
        .get("good")
        .is_none_or(|tasks| tasks.is_empty()));
}

#[test]
fn a_completion_on_another_device_than_the_start_is_refused() {
    let s = Scenario::new("events-device");
    let wf = s.write("good.json", &workflow(GOOD));
    let events = s.write(
        "e.jsonl",
        concat!(
            "{\"time\":0,\"kind\":\"arrival\",\"workflow\":\"good\"}\n",
            "{\"time\":1,\"kind\":\"start\",\"workflow\":\"good\",\"task\":\"a\",\"device\":\"n1\"}\n",
            "{\"time\":3,\"kind\":\"complete\",\"workflow\":\"good\",\"task\":\"a\",\"device\":\"n2\",\"duration\":2}\n",
            "{\"time\":4,\"kind\":\"complete\",\"workflow\":\"good\",\"task\":\"a\",\"device\":\"n1\",\"duration\":3}\n",
        ),
    );
    s.run(&["--workflow", &wf, "--events", &events])
        .expect("runs")
        .expect("p0");
    s.has_rejection("bad_transition", Some(3), "started on 'n1', not on 'n2'");
    assert_eq!(s.counts(&events), (4, 3, 1));
}

#[test]
fn alibaba_bad_readings_drop_fields_not_rows() {
    let s = Scenario::new("alibaba");
    let wf = s.write("good.json", &workflow(GOOD));
    let trace = s.write(
        "usage.csv",
        "n1,10,40,50,,,5,6,-1\nn1,70,41,51,,,5,6,101\nn1,130,-1,-1,,,-1,-1,-1\nn2,10,20,30,,,1,2,3\n",
    );
    s.run(&[
        "--workflow",
        &wf,
        "--metrics",
        &trace,
        "--format",
        "alibaba",
    ])
    .expect("runs");
    let summary = s.summary();
    let counts = &summary["inputs"][&trace];
    assert_eq!(s.counts(&trace), (4, 3, 1));
    assert!(counts["dropped_fields"].as_u64().expect("dropped") >= 2);
    s.has_rejection("dropped_field", Some(1), "");
}

#[test]
fn an_event_refused_with_bad_optional_fields_is_one_line() {
    // A completion whose duration is bad loses the duration and is kept; the same on an event
    // refused anyway (a second completion, found when its time comes; an unknown task, found
    // as it is read) is only its refusal: its dropped fields used to be logged and counted
    // when it was read.
    let s = Scenario::new("events-dropped");
    let wf = s.write("good.json", &workflow(GOOD));
    let events = s.write(
        "e.jsonl",
        concat!(
            "{\"time\":0,\"kind\":\"arrival\",\"workflow\":\"good\"}\n",
            "{\"time\":1,\"kind\":\"start\",\"workflow\":\"good\",\"task\":\"a\",\"device\":\"n1\"}\n",
            "{\"time\":2,\"kind\":\"complete\",\"workflow\":\"good\",\"task\":\"a\",\"duration\":-1}\n",
            "{\"time\":3,\"kind\":\"complete\",\"workflow\":\"good\",\"task\":\"a\",\"duration\":-2}\n",
            "{\"time\":4,\"kind\":\"complete\",\"workflow\":\"good\",\"task\":\"zz\",\"duration\":-3}\n",
        ),
    );
    s.run(&["--workflow", &wf, "--events", &events])
        .expect("runs")
        .expect("p0");
    assert_eq!(s.counts(&events), (5, 3, 2));
    assert_eq!(s.summary()["inputs"][&events]["dropped_fields"], 1);
    let mut lines: Vec<(u64, String)> = s.lines_of(&events);
    lines.sort();
    let expected: Vec<(u64, String)> = [
        (3, "dropped_field"),
        (4, "bad_transition"),
        (5, "unknown_task"),
    ]
    .iter()
    .map(|(line, kind)| (*line, kind.to_string()))
    .collect();
    assert_eq!(lines, expected);
}

#[test]
fn a_refused_record_is_one_line_and_dropped_fields_are_only_for_accepted_ones() {
    let s = Scenario::new("alibaba-dropped");
    let wf = s.write("good.json", &workflow(GOOD));
    let trace = s.write(
        "usage.csv",
        concat!(
            "n1,100,40,50,,,5,6,7\n",
            // Kept without its CPU reading.
            "n1,200,NaN,50,,,5,6,7\n",
            // Bad fields, and out of order anyway: only its refusal is logged.
            "n1,10,NaN,-1,,,5,6,7\n",
            // Every reading bad: one refusal naming them all.
            "n1,300,,,,,,,\n",
            // Bad fields, and an unknown machine.
            "n9,300,NaN,1,,,1,1,1\n",
        ),
    );
    s.run(&[
        "--workflow",
        &wf,
        "--metrics",
        &trace,
        "--format",
        "alibaba",
    ])
    .expect("runs");
    assert_eq!(s.counts(&trace), (5, 2, 3));
    let dropped = s.summary()["inputs"][&trace]["dropped_fields"]
        .as_u64()
        .expect("dropped_fields");
    assert_eq!(dropped, 1);
    let lines: Vec<(u64, String)> = s.lines_of(&trace);
    assert_eq!(lines.len() as u64, 3 + dropped, "{lines:?}");
    let kinds_at = |line: u64| -> Vec<&str> {
        let mut kinds: Vec<&str> = lines
            .iter()
            .filter(|(l, _)| *l == line)
            .map(|(_, kind)| kind.as_str())
            .collect();
        kinds.sort_unstable();
        kinds
    };
    assert_eq!(kinds_at(2), vec!["dropped_field"]);
    assert_eq!(kinds_at(3), vec!["out_of_order"]);
    assert_eq!(kinds_at(4), vec!["parse"]);
    assert_eq!(kinds_at(5), vec!["unknown_device"]);
    s.has_rejection("parse", Some(4), "net_out: empty");
}

#[test]
fn strict_makes_the_first_rejection_fatal_with_exit_code_3() {
    let s = Scenario::new("strict");
    let wf = s.write("good.json", &workflow(GOOD));
    let metrics = s.write(
        "m.csv",
        "time,device,resource,value\n0,n1,cpu,0.5\n1,nowhere,cpu,0.5\n",
    );
    let err = s.run(&["--workflow", &wf, "--metrics", &metrics, "--strict"]);
    assert!(matches!(err, Err(RunError::Strict(_))), "{:?}", err.err());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "run",
            "--workflow",
            &wf,
            "--metrics",
            &metrics,
            "--strict",
            "--quiet",
        ])
        .arg("--platform")
        .arg(s.dir.join("platform.toml"))
        .arg("--out")
        .arg(s.dir.join("strict-out"))
        .output()
        .expect("run augur");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nowhere") && stderr.contains(":3:"),
        "{stderr}"
    );
}

/// A workflow refused under --strict is logged in rejected.jsonl before the run stops, as a
/// refused metric is: a script reading --out finds why, not an empty folder.
#[test]
fn strict_logs_a_refused_workflow_before_stopping() {
    let s = Scenario::new("strict-workflow");
    let good = s.write("good.json", &workflow(GOOD));
    let cyclic = s.write(
        "cyc.json",
        &workflow(&[("a", &["b"], 1.0, 1), ("b", &["a"], 1.0, 1)]),
    );
    let err = s.run(&["--workflow", &good, &cyclic, "--strict"]);
    let Err(RunError::Strict(rejection)) = err else {
        panic!("not a strict stop: {:?}", err.err());
    };
    assert_eq!(rejection.file, cyclic);
    assert_eq!(s.rejected().len(), 1, "{:#?}", s.rejected());
    s.has_rejection("cycle", None, "->");
}

/// --strict whose only source of devices is a refused workflow stops as strict (exit 3), the
/// refusal logged, rather than for want of devices (exit 1), which hid the cause.
#[test]
fn strict_stops_at_a_refused_workflow_before_finding_no_devices() {
    let s = Scenario::new("strict-no-devices");
    let text = workflow(&[("a", &["b"], 1.0, 1), ("b", &["a"], 1.0, 1)]).replace(
        r#""machines":[]"#,
        r#""machines":[{"nodeName":"n1","cpu":{"coreCount":4}}]"#,
    );
    assert!(text.contains("n1"));
    let cyclic = s.write("cyc.json", &text);
    let run_with = |extra: &[&str]| s.run_bare(&[&["--workflow", cyclic.as_str()], extra].concat());
    let err = run_with(&["--strict"]);
    let Err(RunError::Strict(rejection)) = err else {
        panic!("not a strict stop: {:?}", err.err());
    };
    assert_eq!(rejection.file, cyclic);
    assert_eq!(s.rejected().len(), 1, "{:#?}", s.rejected());
    s.has_rejection("cycle", None, "->");
    // Not strict: there are no devices, and the refusal is named there. The strict run's
    // outputs stay as they were (they were cleared before the platform was known).
    let err = run_with(&[]);
    let Err(RunError::NoDevices { refused }) = err else {
        panic!("not a want of devices: {:?}", err.err());
    };
    assert!(
        refused.contains("cycle") || refused.contains("->"),
        "{refused}"
    );
    assert_eq!(s.rejected().len(), 1, "the earlier run's log is kept");
}

#[test]
fn garbage_inputs_never_panic() {
    let s = Scenario::new("garbage");
    let wf = s.write(
        "junk.json",
        "{\"schemaVersion\": \"1.5\", \"workflow\": [1,2,3]}",
    );
    let not_json = s.write("junk2.json", "\u{0}\u{1}binary\u{ff}");
    let metrics = s.write(
        "m.csv",
        "\u{feff}time,device\n,,,,\n\u{0}\n1e400,n1,cpu,1\n",
    );
    let events = s.write("e.jsonl", "[]\n{}\n{\"time\":\"x\"}\n");
    let outcome = s.run(&[
        "--workflow",
        &wf,
        &not_json,
        "--metrics",
        &metrics,
        "--events",
        &events,
    ]);
    assert!(outcome.is_ok(), "{:?}", outcome.err());
    for file in [&wf, &not_json, &metrics, &events] {
        let (read, accepted, _) = s.counts(file);
        assert!(read >= 1 && accepted == 0, "{file}");
    }
}

/// Without a platform the devices are the union of the workflows' machines: a later file
/// giving a machine other specs than an earlier one is refused whole (it was merged silently,
/// the first file winning), and a file repeating the same specs is taken.
#[test]
fn a_machine_given_other_specs_by_a_later_workflow_refuses_that_workflow() {
    let s = Scenario::new("machines-across-files");
    let with_machine = |cores: u32| {
        let mut doc: Value = serde_json::from_str(&workflow(GOOD)).expect("fixture");
        doc["workflow"]["execution"]["machines"] = serde_json::json!([
            {"nodeName": "m1", "cpu": {"coreCount": cores, "speedInMHz": 2000}}
        ]);
        doc.to_string()
    };
    let first = s.write("first.json", &with_machine(4));
    let other = s.write("other.json", &with_machine(8));
    let same = s.write("same.json", &with_machine(4));
    // Another file's record of m1 without its speed is another device (speed 1, not 2).
    let mut unsped: Value = serde_json::from_str(&with_machine(4)).expect("fixture");
    unsped["workflow"]["execution"]["machines"][0]["cpu"] = serde_json::json!({"coreCount": 4});
    let unsped = s.write("unsped.json", &unsped.to_string());
    let out = s.dir.join("out").display().to_string();
    let argv = [
        "augur",
        "run",
        "--workflow",
        &first,
        "--workflow",
        &other,
        "--workflow",
        &same,
        "--workflow",
        &unsped,
        "--out",
        &out,
        "--quiet",
    ];
    let Ok(Cli {
        command: Command::Run(args),
    }) = Cli::try_parse_from(argv)
    else {
        panic!("bad test flags");
    };
    run(&run_config(&args).expect("valid config")).expect("runs");
    s.has_rejection(
        "duplicate_id",
        None,
        "machine 'm1' is given with other specs than in",
    );
    assert_eq!(s.counts(&first), (2, 2, 0));
    assert_eq!(s.counts(&other), (2, 0, 2));
    assert_eq!(s.counts(&same), (2, 2, 0));
    assert_eq!(s.counts(&unsped), (2, 0, 2));
    let map: Value = serde_json::from_str(
        &std::fs::read_to_string(s.dir.join("out/final_map.json")).expect("final map"),
    )
    .expect("JSON");
    assert!(map.get("other").is_none(), "{map}");
    assert_eq!(map["same"]["a"], "m1");
}

/// A refused arrival (too late, or naming a device the platform lacks) brings nothing in at
/// its time: the run's first pass over the events, which finds each workflow's arrival before
/// the feed starts, took every arrival that parsed.
#[test]
fn a_refused_arrival_does_not_bring_its_workflow_in() {
    let s = Scenario::new("arrival-refused");
    let wf = s.write("good.json", &workflow(GOOD));
    let late = s.write(
        "late.jsonl",
        concat!(
            "{\"time\":100,\"kind\":\"arrival\",\"workflow\":\"good\"}\n",
            "{\"time\":300,\"kind\":\"start\",\"workflow\":\"good\",\"task\":\"a\",\"device\":\"n1\"}\n",
            "{\"time\":5,\"kind\":\"arrival\",\"workflow\":\"good\"}\n",
        ),
    );
    let unknown = s.write(
        "unknown.jsonl",
        "{\"time\":10,\"kind\":\"arrival\",\"workflow\":\"good\",\"device\":\"nope\"}\n",
    );
    s.run(&[
        "--workflow",
        &wf,
        "--events",
        &late,
        &unknown,
        "--lateness",
        "60",
    ])
    .expect("runs");
    s.has_rejection("out_of_order", Some(3), "lateness");
    s.has_rejection("unknown_device", Some(1), "nope");
    let partition = std::fs::read_to_string(s.dir.join("out/partition.jsonl")).expect("map");
    let times: Vec<i64> = partition
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).expect("JSON");
            entry["time"].as_i64().expect("a time")
        })
        .collect();
    assert_eq!(times.first(), Some(&100), "{partition}");
    assert!(times.iter().all(|time| *time >= 100), "{partition}");
}

/// A throughput series without a bandwidth is scaled by its largest rate; a row refused as
/// late is no part of the series, so its rate must not set that scale (it flattened every
/// accepted reading to 0).
#[test]
fn a_late_row_does_not_set_a_throughput_scale() {
    let s = Scenario::new("late-scale");
    let wf = s.write("good.json", &workflow(GOOD));
    let nab = s.write(
        "disk.csv",
        "timestamp,value\n1000,100\n1300,200\n1600,300\n100,900000000000\n",
    );
    let map = format!("{nab}=n1:disk");
    s.run(&[
        "--workflow",
        &wf,
        "--format",
        "nab",
        "--metrics",
        &nab,
        "--map",
        &map,
        "--lateness",
        "60",
    ])
    .expect("runs");
    s.has_rejection("out_of_order", Some(5), "lateness");
    let text = std::fs::read_to_string(s.dir.join("out/forecasts.json")).expect("forecasts");
    let forecasts: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(forecasts["n1"]["disk"]["latest"], 1.0, "{text}");
}

/// An Alibaba file is one stream per machine, and its lateness is measured per machine: a
/// late row says so (it said "already seen in this file", and an earlier row of another
/// machine is accepted).
#[test]
fn an_alibaba_row_is_late_for_its_machine() {
    let s = Scenario::new("alibaba-late");
    let wf = s.write("good.json", &workflow(GOOD));
    let trace = s.write(
        "usage.csv",
        "n1,1000,40,50,,,5,6,1\nn1,10,41,51,,,5,6,1\nn2,100,20,30,,,1,2,3\n",
    );
    s.run(&[
        "--workflow",
        &wf,
        "--metrics",
        &trace,
        "--format",
        "alibaba",
        "--lateness",
        "60",
    ])
    .expect("runs");
    assert_eq!(s.counts(&trace), (3, 2, 1));
    s.has_rejection(
        "out_of_order",
        Some(2),
        "already seen for machine 'n1' in this file",
    );
}
