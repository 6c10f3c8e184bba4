//! Re-sculpting end to end: a workflow declares an alternative for a task; under severe predicted
//! congestion of the only device its declared form fits, `augur run` runs the alternative
//! instead and says so in `resculpt.jsonl`; a malformed alternative is a clear rejection. And by
//! order: on a severely congested device a ready task runs in the wait of a head whose input is
//! not ready, and `resculpt.jsonl` says which, where and why.

use augur::testing::Scratch;
use std::path::Path;

use augur::cli::{run_config, Cli, Command};
use augur::run::run;
use clap::Parser;
use serde_json::Value;

fn temp(name: &str) -> Scratch {
    Scratch::new(&format!("resculpt-{name}"))
}

/// One task "render" needing 8 cores for 100 s, with a 2-core alternative taking 120 s.
fn workflow(alternatives: Value) -> String {
    serde_json::json!({
        "name": "render", "schemaVersion": "1.5",
        "workflow": {
            "specification": {"tasks": [
                {"name": "render", "id": "render", "parents": [], "children": [],
                 "inputFiles": [], "outputFiles": [], "alternatives": alternatives}
            ], "files": []},
            "execution": {"makespanInSeconds": 1.0, "executedAt": "20240101T000000+0000",
                          "tasks": [{"id": "render", "runtimeInSeconds": 100.0, "coreCount": 8}],
                          "machines": []}
        }
    })
    .to_string()
}

fn run_in(dir: &Path, workflow_text: &str, big_cpu: f64) -> augur::run::RunOutcome {
    std::fs::write(dir.join("w.json"), workflow_text).expect("workflow");
    std::fs::write(
        dir.join("platform.toml"),
        "[[device]]\nid = \"big\"\ncores = 8\n\n[[device]]\nid = \"small\"\ncores = 2\n",
    )
    .expect("platform");
    std::fs::write(
        dir.join("m.csv"),
        format!("time,device,resource,value\n0,big,cpu,{big_cpu}\n0,small,cpu,0.0\n"),
    )
    .expect("metrics");
    let path = |name: &str| dir.join(name).display().to_string();
    let argv = [
        "augur".to_string(),
        "run".into(),
        "--quiet".into(),
        "--workflow".into(),
        path("w.json"),
        "--platform".into(),
        path("platform.toml"),
        "--metrics".into(),
        path("m.csv"),
        "--out".into(),
        path("out"),
    ];
    let Ok(Cli {
        command: Command::Run(args),
    }) = Cli::try_parse_from(argv)
    else {
        panic!("bad flags");
    };
    run(&run_config(&args).expect("valid flags"))
        .expect("run succeeds")
        .expect("process 0")
}

fn lines(dir: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join("out").join(name))
        .expect("output file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn congestion_runs_the_alternative_and_says_so() {
    let dir = temp("congested");
    let alternative =
        serde_json::json!([{"name": "two-core", "cores": 2, "runtimeInSeconds": 120}]);
    let outcome = run_in(&dir, &workflow(alternative), 0.95);
    assert_eq!(outcome.final_map["w"]["render"], "small");
    let decisions = lines(&dir, "resculpt.jsonl");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["task"], "render");
    assert_eq!(decisions[0]["variant"], "two-core");
    assert!(decisions[0]["reason"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(outcome.summary.resculpted, 1);
}

#[test]
fn without_congestion_the_declared_task_runs() {
    let dir = temp("idle");
    let alternative =
        serde_json::json!([{"name": "two-core", "cores": 2, "runtimeInSeconds": 120}]);
    let outcome = run_in(&dir, &workflow(alternative), 0.0);
    assert_eq!(outcome.final_map["w"]["render"], "big");
    assert!(lines(&dir, "resculpt.jsonl").is_empty());
}

#[test]
fn a_malformed_alternative_is_rejected_with_its_reason() {
    let dir = temp("malformed");
    let alternative = serde_json::json!([{"name": "bad", "cores": -1}]);
    let outcome = run_in(&dir, &workflow(alternative), 0.0);
    assert!(outcome.final_map.is_empty());
    let rejected = lines(&dir, "rejected.jsonl");
    assert!(
        rejected.iter().any(|r| r["reason"]
            .as_str()
            .is_some_and(|s| s.contains("alternatives[0]"))),
        "{rejected:?}"
    );
}

/// Re-sculpting by order: writes `w.json`, `platform.toml` and `m.csv` into `dir`. `prep` (2
/// cores, 16 GiB, 100 s) fits only on `small`; its child
/// `render` (8 cores, 10 s) and an independent `thumbs` (8 cores, 5 s) fit only on `big`, where
/// they queue in placement order, `render` first (its rank is higher) although its input is
/// 100 s away. `big` is 90% busy; when its forecast next changes, its queue is re-predicted
/// and `thumbs` runs in `render`'s wait.
pub fn reorder_inputs(dir: &std::path::Path, big_cpu: f64) {
    let task = |id: &str, parents: &[&str], children: &[&str]| {
        serde_json::json!({"name": id, "id": id, "parents": parents, "children": children,
                           "inputFiles": [], "outputFiles": []})
    };
    let execution = |id: &str, seconds: f64, cores: u32, memory: u64| {
        serde_json::json!({"id": id, "runtimeInSeconds": seconds, "coreCount": cores,
                           "memoryInBytes": memory})
    };
    let workflow = serde_json::json!({
        "name": "album", "schemaVersion": "1.5",
        "workflow": {
            "specification": {"tasks": [
                task("prep", &[], &["render"]),
                task("render", &["prep"], &[]),
                task("thumbs", &[], &[]),
            ], "files": []},
            "execution": {"makespanInSeconds": 1.0, "executedAt": "20240101T000000+0000",
                          "tasks": [execution("prep", 100.0, 2, 16 << 30),
                                    execution("render", 10.0, 8, 1 << 30),
                                    execution("thumbs", 5.0, 8, 1 << 30)],
                          "machines": []}
        }
    });
    std::fs::write(dir.join("w.json"), workflow.to_string()).expect("workflow");
    std::fs::write(
        dir.join("platform.toml"),
        "[[device]]\nid = \"big\"\ncores = 8\nmemory_gib = 4\n\n\
         [[device]]\nid = \"small\"\ncores = 2\nmemory_gib = 64\n",
    )
    .expect("platform");
    std::fs::write(
        dir.join("m.csv"),
        format!(
            "time,device,resource,value\n0,big,cpu,{big_cpu}\n0,small,cpu,0.0\n\
             10,big,cpu,{}\n",
            big_cpu + 0.02
        ),
    )
    .expect("metrics");
}

fn reorder_run(dir: &std::path::Path, big_cpu: f64) -> augur::run::RunOutcome {
    reorder_inputs(dir, big_cpu);
    let path = |name: &str| dir.join(name).display().to_string();
    let argv = [
        "augur",
        "run",
        "--quiet",
        "--workflow",
        &path("w.json"),
        "--platform",
        &path("platform.toml"),
        "--metrics",
        &path("m.csv"),
        "--out",
        &path("out"),
    ];
    let Ok(Cli {
        command: Command::Run(args),
    }) = Cli::try_parse_from(argv)
    else {
        panic!("bad flags");
    };
    run_config(&args)
        .ok()
        .and_then(|config| run(&config).ok().flatten())
        .expect("run succeeds")
}

#[test]
fn severe_congestion_runs_a_ready_task_ahead_of_a_waiting_one_and_says_so() {
    let dir = temp("reorder");
    let outcome = reorder_run(&dir, 0.9);
    assert_eq!(outcome.final_map["w"]["render"], "big");
    assert_eq!(outcome.final_map["w"]["thumbs"], "big");
    assert_eq!(outcome.final_map["w"]["prep"], "small");
    let decisions = lines(&dir, "resculpt.jsonl");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let line = &decisions[0];
    assert_eq!(line["action"], "reorder");
    assert_eq!(line["task"], "thumbs");
    assert_eq!(line["ahead_of"], "render");
    assert_eq!(line["device"], "big");
    assert_eq!(line["time"], 10);
    let seconds = |field: &str| line[field].as_f64().expect(field);
    assert!(seconds("contention") >= 0.5, "{line}");
    // Ahead, thumbs finishes inside render's wait for prep; behind, after render.
    assert!(seconds("finish") < seconds("ahead_of_ready"), "{line}");
    assert!(
        seconds("finish_behind") > seconds("ahead_of_ready"),
        "{line}"
    );
    assert!(line["reason"]
        .as_str()
        .is_some_and(|r| r.contains("render") && r.contains("contention")));
    assert_eq!(outcome.summary.resculpted, 1);
}

#[test]
fn mild_congestion_keeps_placement_order() {
    let dir = temp("no-reorder");
    let outcome = reorder_run(&dir, 0.2);
    assert_eq!(outcome.final_map["w"]["thumbs"], "big");
    assert!(lines(&dir, "resculpt.jsonl").is_empty());
}
