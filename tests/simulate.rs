//! `augur simulate`: the closed loop on small workflows (precedence, capacity, every task once,
//! determinism) and the `heft` policy against a schedule computed by hand.

use augur::testing::Scratch;
use std::path::PathBuf;

use augur::series::SeriesFormat;
use augur::simulate::outcome::Outcome;
use augur::simulate::{simulate, SimConfig};
use augur_dataflows::contention_forecast::ForecastConfig;
use augur_dataflows::placement::{PlacementConfig, Policy};

fn temp(name: &str) -> Scratch {
    Scratch::new(&format!("sim-{name}"))
}

/// A WfFormat 1.5 workflow: `(id, parents, runtime, cores, output bytes)`; every child reads
/// its parents' whole outputs.
fn workflow(tasks: &[(String, Vec<String>, f64, u32, u64)]) -> String {
    let spec: Vec<serde_json::Value> = tasks
        .iter()
        .map(|(id, parents, _, _, _)| {
            let inputs: Vec<String> = parents.iter().map(|p| format!("{p}.out")).collect();
            serde_json::json!({"name": id, "id": id, "parents": parents, "children": [],
                               "inputFiles": inputs, "outputFiles": [format!("{id}.out")]})
        })
        .collect();
    let files: Vec<serde_json::Value> = tasks
        .iter()
        .map(|(id, _, _, _, bytes)| serde_json::json!({"id": format!("{id}.out"), "sizeInBytes": bytes}))
        .collect();
    let exec: Vec<serde_json::Value> = tasks
        .iter()
        .map(|(id, _, runtime, cores, _)| {
            serde_json::json!({"id": id, "runtimeInSeconds": runtime, "coreCount": cores})
        })
        .collect();
    serde_json::json!({
        "name": "test", "schemaVersion": "1.5",
        "workflow": {"specification": {"tasks": spec, "files": files},
                     "execution": {"makespanInSeconds": 1.0, "executedAt": "20240101T000000+0000",
                                   "tasks": exec, "machines": []}}
    })
    .to_string()
}

fn task(
    id: &str,
    parents: &[&str],
    runtime: f64,
    cores: u32,
    bytes: u64,
) -> (String, Vec<String>, f64, u32, u64) {
    (
        id.to_string(),
        parents.iter().map(|p| p.to_string()).collect(),
        runtime,
        cores,
        bytes,
    )
}

/// A layered random DAG of `n` tasks (seeded), as WfFormat text.
fn random_workflow(n: usize, seed: u64) -> String {
    layered_workflow(n, seed, 1.0)
}

/// [`random_workflow`] with runtimes of `unit` to 20 `unit`s.
fn layered_workflow(n: usize, seed: u64, unit: f64) -> String {
    let mut x = seed;
    let mut next = move || {
        x = augur::simulate::background::splitmix64(x);
        x
    };
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let parents: Vec<String> = (0..i)
                .filter(|_| next() % 5 == 0)
                .take(3)
                .map(|p| format!("t{p}"))
                .collect();
            let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
            task(
                &format!("t{i}"),
                &parents,
                unit * (1.0 + (next() % 20) as f64),
                1 + (next() % 3) as u32,
                next() % 50_000_000,
            )
        })
        .collect();
    workflow(&tasks)
}

fn config(
    workflows: Vec<PathBuf>,
    platform: PathBuf,
    background: Vec<PathBuf>,
    seed: u64,
) -> SimConfig {
    SimConfig {
        workflows,
        platform: Some(platform),
        background,
        background_format: SeriesFormat::Long,
        policies: Policy::ALL.to_vec(),
        seed,
        ccr: None,
        forecast: ForecastConfig::default(),
        placement: PlacementConfig::default(),
        progress: false,
        trace_tasks: None,
        heft_knows_background: false,
        lockstep: false,
    }
}

fn background(dir: &std::path::Path) -> PathBuf {
    let mut text = String::from("time,device,resource,value\n");
    for step in 0..400 {
        let t = step * 300;
        let wave = |phase: f64| 0.4 + 0.35 * ((step as f64 / 40.0) + phase).sin();
        text.push_str(&format!(
            "{t},a,cpu,{:.3}\n{t},b,cpu,{:.3}\n",
            wave(0.0),
            wave(2.0)
        ));
    }
    let path = dir.join("bg.csv");
    std::fs::write(&path, text).expect("write background");
    path
}

fn toml_platform(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("platform.toml");
    std::fs::write(
        &path,
        "[[device]]\nid = \"small\"\ncores = 2\nspeed = 1.0\nnetwork_gbps = 1\ncost_per_hour = 1.0\npower_watts = 100\n\n\
         [[device]]\nid = \"big\"\ncores = 4\nspeed = 2.0\nnetwork_gbps = 10\ncost_per_hour = 3.0\npower_watts = 300\n\n\
         [[device]]\nid = \"edge\"\ncores = 3\nspeed = 0.5\nnetwork_gbps = 0.1\n",
    )
    .expect("write platform");
    path
}

fn network(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("net.json");
    std::fs::write(
        &path,
        r#"{"nodes": [{"name": "n0", "speed": 1.0}, {"name": "n1", "speed": 2.0}], "bandwidth": 1e6}"#,
    )
    .expect("write network");
    path
}

/// Precedence, capacity, each task started once and completed.
fn check_invariants(outcome: &Outcome) {
    let label = format!("{} {}", outcome.summary.workflow, outcome.summary.policy);
    assert!(
        outcome.starts.iter().all(|&s| s == 1),
        "{label}: a task started other than once"
    );
    for (child, parents) in outcome.parents.iter().enumerate() {
        for &parent in parents {
            let (p, c) = (&outcome.records[parent as usize], &outcome.records[child]);
            assert!(
                c.start + 1e-9 >= p.end,
                "{label}: task {child} started before parent {parent} ended"
            );
            assert!(
                c.ready + 1e-9 >= p.end,
                "{label}: task {child} ready before parent {parent} ended"
            );
        }
    }
    for r in &outcome.records {
        assert!(
            r.end + 1e-9 >= r.start && r.start + 1e-9 >= r.ready,
            "{label}: times out of order"
        );
        assert!(
            r.end - r.start + 1e-9 >= r.uncontended,
            "{label}: ran faster than alone"
        );
        // At each start, the cores held on the device fit in it.
        let held: f64 = outcome
            .records
            .iter()
            .filter(|o| {
                o.device == r.device && o.start <= r.start + 1e-12 && o.end > r.start + 1e-12
            })
            .map(|o| o.cores)
            .sum();
        assert!(
            held <= outcome.device_cores[r.device] + 1e-9,
            "{label}: device over capacity"
        );
    }
}

#[test]
fn every_policy_respects_precedence_and_capacity_and_runs_each_task_once() {
    let dir = temp("invariants");
    let wf = dir.join("random.json");
    std::fs::write(&wf, random_workflow(40, 3)).expect("write workflow");
    let bg = background(&dir);
    for (platform, background) in [
        (toml_platform(&dir), vec![bg.clone()]),
        (toml_platform(&dir), vec![]),
        (network(&dir), vec![bg]),
    ] {
        let config = config(vec![wf.clone()], platform, background, 0);
        let outcomes = simulate(&config, |_| Ok(())).expect("simulates");
        assert_eq!(outcomes.len(), Policy::ALL.len());
        for outcome in &outcomes {
            assert_eq!(outcome.records.len(), 40, "every task completes");
            check_invariants(outcome);
            assert!(outcome.summary.makespan_s > 0.0);
            assert_eq!(
                outcome.summary.forecast_mae.is_some(),
                !config.background.is_empty()
                    && Policy::from_name(&outcome.summary.policy)
                        .is_some_and(Policy::uses_forecasts)
            );
        }
    }
}

/// The page shows every run: a row in the table, a Gantt bar per task, and the background
/// against its forecast, text escaped.
#[test]
fn the_report_page_draws_every_run() {
    let dir = temp("page");
    let wf = dir.join("random<1>.json");
    std::fs::write(&wf, random_workflow(12, 5)).expect("write workflow");
    let mut config = config(vec![wf], toml_platform(&dir), vec![background(&dir)], 0);
    config.policies = vec![Policy::Predictive, Policy::Heft];
    let outcomes = simulate(&config, |_| Ok(())).expect("simulates");
    let page = augur::simulate::report::html(&outcomes);
    assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>\n"));
    assert_eq!(page.matches("<tr><td>").count(), 2, "one row per run");
    assert_eq!(
        page.matches("<title>task ").count(),
        2 * 12,
        "a bar per task per run"
    );
    let charts: usize = outcomes.iter().map(|o| o.utilisation.len()).sum();
    assert!(charts > 0);
    assert_eq!(page.matches("<figure>").count(), charts);
    assert_eq!(page.matches("<svg").count(), 2 + charts);
    assert!(page.contains("random&lt;1&gt;") && !page.contains("random<1>"));
}

#[test]
fn same_seed_gives_identical_results() {
    let dir = temp("seed");
    let wf = dir.join("random.json");
    std::fs::write(&wf, random_workflow(20, 11)).expect("write workflow");
    let bg = background(&dir);
    let run = |seed| {
        let mut config = config(
            vec![wf.clone()],
            toml_platform(&dir),
            vec![bg.clone()],
            seed,
        );
        config.policies = vec![Policy::Predictive, Policy::Heft];
        simulate(&config, |_| Ok(()))
            .expect("simulates")
            .into_iter()
            .map(|o| (o.summary, o.records))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
}

/// The source feeds epochs in groups while no task is ready and unstarted (the only tasks the
/// map is read for): every policy's schedule, records and forecast error must be those of
/// feeding one epoch at a time with the map back after each.
#[test]
fn grouped_epochs_simulate_exactly_as_one_at_a_time() {
    let dir = temp("lockstep");
    let bg = background(&dir);
    // Short tasks (the background's 300-s samples fall mostly while a task waits) and long
    // ones (hours: many samples while tasks run and their children are not yet ready, when
    // the map may move those children and the groups run ahead of it).
    for (seed, size, unit) in [(3, 12, 1.0), (5, 30, 1.0), (7, 12, 600.0), (9, 25, 1500.0)] {
        let wf = dir.join(format!("random-{seed}.json"));
        std::fs::write(&wf, layered_workflow(size, seed, unit)).expect("write workflow");
        let run = |lockstep| {
            let mut config = config(vec![wf.clone()], toml_platform(&dir), vec![bg.clone()], 0);
            config.lockstep = lockstep;
            simulate(&config, |_| Ok(()))
                .expect("simulates")
                .into_iter()
                .map(|o| (o.summary, o.records, o.map_moves, o.utilisation))
                .collect::<Vec<_>>()
        };
        let (grouped, lockstep) = (run(false), run(true));
        assert_eq!(grouped.len(), Policy::ALL.len());
        assert_eq!(grouped, lockstep, "seed {seed}");
    }
}

#[test]
fn heft_follows_the_hand_computed_schedule() {
    // Two nodes of speed 1 (n0) and 2 (n1), no data on the edges. Upward ranks with the mean
    // of 1/speed = 0.75: d 1.5, b 3, c 6, a 9, so the order is a, c, b, d. Earliest finish:
    // a on n1 [0, 2]; c on n1 [2, 5] (n0 would end at 8); b on n0 [2, 4] (n1 would end at 6);
    // d on n1 [5, 6] (n0 would end at 7). Makespan 6.
    let dir = temp("heft");
    let wf = dir.join("diamond.json");
    std::fs::write(
        &wf,
        workflow(&[
            task("a", &[], 4.0, 1, 0),
            task("b", &["a"], 2.0, 1, 0),
            task("c", &["a"], 6.0, 1, 0),
            task("d", &["b", "c"], 2.0, 1, 0),
        ]),
    )
    .expect("write workflow");
    let mut config = config(vec![wf], network(&dir), vec![], 0);
    config.policies = vec![Policy::Heft];
    let outcomes = simulate(&config, |_| Ok(())).expect("simulates");
    let outcome = &outcomes[0];
    let got: Vec<(usize, f64, f64)> = outcome
        .records
        .iter()
        .map(|r| (r.device, r.start, r.end))
        .collect();
    assert_eq!(
        got,
        vec![(1, 0.0, 2.0), (0, 2.0, 4.0), (1, 2.0, 5.0), (1, 5.0, 6.0)]
    );
    assert_eq!(outcome.summary.makespan_s, 6.0);
    assert_eq!(outcome.planned_makespan, Some(6.0));
    check_invariants(outcome);
}

#[test]
fn heft_counts_transfers_between_nodes() {
    // a (2 s) then b (2 s), 1 MB between them at 1 MB/s. On n1 both: a [0, 1], b [1, 2]; moving
    // b to n0 would cost 1 s of transfer and 2 s of run. Same node, no transfer: makespan 2.
    let dir = temp("transfer");
    let wf = dir.join("chain.json");
    std::fs::write(
        &wf,
        workflow(&[
            task("a", &[], 2.0, 1, 1_000_000),
            task("b", &["a"], 2.0, 1, 0),
        ]),
    )
    .expect("write workflow");
    let mut config = config(vec![wf], network(&dir), vec![], 0);
    config.policies = vec![Policy::Heft];
    let outcome = &simulate(&config, |_| Ok(())).expect("simulates")[0];
    assert_eq!(outcome.summary.makespan_s, 2.0);
    assert_eq!(outcome.summary.bytes_moved, 0);
    // With --ccr the link of a node with itself is rescaled too, as SAGA's scale_to_ccr does:
    // the 1 MB now costs time even on one node.
    config.ccr = Some(1.0);
    let outcome = &simulate(&config, |_| Ok(())).expect("simulates")[0];
    assert!(outcome.summary.makespan_s > 2.0);
}

#[test]
fn unreadable_inputs_are_errors_not_panics() {
    let dir = temp("bad");
    let wf = dir.join("bad.json");
    std::fs::write(&wf, "{not json").expect("write");
    let net = dir.join("bad-net.json");
    std::fs::write(&net, r#"{"nodes": []}"#).expect("write");
    let good = dir.join("good.json");
    std::fs::write(&good, workflow(&[task("a", &[], 1.0, 1, 0)])).expect("write");
    assert!(simulate(&config(vec![wf], network(&dir), vec![], 0), |_| Ok(())).is_err());
    assert!(simulate(&config(vec![good.clone()], net, vec![], 0), |_| Ok(())).is_err());
    let empty_bg = dir.join("empty.csv");
    std::fs::write(&empty_bg, "time,device,resource,value\nx,y,z,w\n").expect("write");
    assert!(simulate(
        &config(vec![good], network(&dir), vec![empty_bg], 0),
        |_| Ok(())
    )
    .is_err());
}

/// Each workflow is simulated on its own: one that is refused is named and counted, and the
/// ones after it are still simulated.
#[test]
fn a_refused_workflow_does_not_stop_the_others() {
    let dir = temp("one-refused");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{not json").expect("write");
    let good = dir.join("good.json");
    std::fs::write(&good, workflow(&[task("a", &[], 1.0, 1, 0)])).expect("write");
    let config = config(vec![bad, good], network(&dir), vec![], 0);
    let mut notes = Vec::new();
    let simulated =
        augur::simulate::simulate_noting(&config, |line| notes.push(line.to_string()), |_| Ok(()))
            .expect("simulates the good one");
    assert!(!simulated.outcomes.is_empty());
    assert!(
        simulated
            .outcomes
            .iter()
            .all(|o| o.summary.workflow == "good"),
        "{:?}",
        simulated.outcomes.len()
    );
    let Some(augur::simulate::SimError::Refused {
        refused: 1,
        total: 2,
        first,
    }) = simulated.refused
    else {
        panic!("the refusal is not counted");
    };
    assert!(first.contains("bad.json"), "{first}");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("skipped") && n.contains("bad.json")),
        "{notes:?}"
    );
    // `simulate` fails the whole, as the command's exit status does.
    assert!(simulate(&config, |_| Ok(())).is_err());
}

/// A workflow whose longest chain would span centuries of simulated time even on the fastest
/// device is refused at once (the simulator steps through the background for every second of
/// it: hours, or never); one just inside the bound is simulated.
#[test]
fn a_workflow_spanning_centuries_is_refused_up_front() {
    let dir = temp("centuries");
    // Three 1e9-s tasks in a chain on speed 2 at best: 1.5e9 s, inside the bound.
    let chain = |n: usize| -> Vec<(String, Vec<String>, f64, u32, u64)> {
        let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let parents: Vec<&str> = if i == 0 {
                    vec![]
                } else {
                    vec![names[i - 1].as_str()]
                };
                task(name, &parents, 1e9, 1, 0)
            })
            .collect()
    };
    let long = dir.join("long.json");
    std::fs::write(&long, workflow(&chain(21))).expect("write");
    let mut refused = config(vec![long], network(&dir), vec![], 0);
    refused.policies = vec![Policy::Heft];
    let Err(error) = simulate(&refused, |_| Ok(())) else {
        panic!("a span of 1.05e10 s was simulated");
    };
    assert!(error.to_string().contains("317 years"), "{error}");
    let short = dir.join("short.json");
    std::fs::write(&short, workflow(&chain(3))).expect("write");
    let mut fine = config(vec![short], network(&dir), vec![], 0);
    fine.policies = vec![Policy::Heft];
    let outcomes = simulate(&fine, |_| Ok(())).expect("simulates");
    assert!(outcomes[0].summary.makespan_s >= 1.5e9);
}
