//! The same logs give the same partition map with 1 worker, 2 workers and 2 processes.

use augur::testing::Scratch;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common::bundled_data;

/// A short version of the demo scenario: the demo's workflow, platform and events, and the first
/// `rows` rows of each of its NAB series (so a debug build runs it in seconds).
pub fn short_scenario(dir: &Path, rows: usize) -> Vec<String> {
    let demo = bundled_data().join("demo");
    std::fs::create_dir_all(dir.join("metrics")).expect("temp dir");
    let mut args = vec![
        "run".to_string(),
        "--workflow".into(),
        demo.join("montage-chameleon-2mass-01d-001.json")
            .display()
            .to_string(),
        "--platform".into(),
        demo.join("platform.toml").display().to_string(),
        "--events".into(),
        demo.join("events.jsonl").display().to_string(),
        "--format".into(),
        "nab".into(),
        "--quiet".into(),
    ];
    let series = [
        ("ec2_cpu_utilization_24ae8d.csv", "edge-a"),
        ("ec2_cpu_utilization_53ea38.csv", "edge-b"),
        ("ec2_cpu_utilization_5f5533.csv", "cloud-c"),
        ("rds_cpu_utilization_cc0c53.csv", "cloud-d"),
    ];
    for (file, device) in series {
        let text = std::fs::read_to_string(demo.join("metrics").join(file)).expect("demo series");
        let head: Vec<&str> = text.lines().take(rows + 1).collect();
        let path = dir.join("metrics").join(file);
        std::fs::write(&path, head.join("\n") + "\n").expect("write series");
        args.push("--metrics".into());
        args.push(path.display().to_string());
        args.push("--map".into());
        args.push(format!("{}={device}:cpu", path.display()));
    }
    args
}

fn augur(args: &[String], out: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .arg("--out")
        .arg(out)
        .args(extra)
        .spawn()
        .expect("start augur")
}

fn outputs(out: &Path) -> (Vec<u8>, BTreeSet<String>) {
    let map = std::fs::read(out.join("final_map.json")).expect("final_map.json");
    let lines = std::fs::read_to_string(out.join("partition.jsonl"))
        .expect("partition.jsonl")
        .lines()
        .map(str::to_string)
        .collect();
    (map, lines)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn temp(name: &str) -> Scratch {
    Scratch::new(name)
}

#[test]
fn same_map_with_1_worker_2_workers_and_2_processes() {
    let dir = temp("determinism");
    let args = short_scenario(&dir, 400);

    let one = dir.join("one");
    assert!(augur(&args, &one, &["--workers", "1"])
        .wait()
        .expect("wait")
        .success());
    let two = dir.join("two");
    assert!(augur(&args, &two, &["--workers", "2"])
        .wait()
        .expect("wait")
        .success());

    let hostfile = dir.join("hosts.txt");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .expect("hostfile");
    let cluster = dir.join("cluster");
    let hosts = hostfile.display().to_string();
    let mut processes: Vec<_> = (0..2)
        .map(|index| {
            let index = index.to_string();
            augur(
                &args,
                &cluster,
                &[
                    "--processes",
                    "2",
                    "--process",
                    &index,
                    "--hostfile",
                    &hosts,
                ],
            )
        })
        .collect();
    for process in &mut processes {
        assert!(process.wait().expect("wait").success());
    }

    let (map_one, lines_one) = outputs(&one);
    let (map_two, lines_two) = outputs(&two);
    let (map_cluster, lines_cluster) = outputs(&cluster);
    assert!(lines_one.len() > 100, "the scenario must exercise the map");
    assert_eq!(
        map_one, map_two,
        "final_map.json differs between 1 and 2 workers"
    );
    assert_eq!(
        map_one, map_cluster,
        "final_map.json differs between 1 worker and 2 processes"
    );
    assert_eq!(
        lines_one, lines_two,
        "partition.jsonl differs between 1 and 2 workers"
    );
    assert_eq!(
        lines_one, lines_cluster,
        "partition.jsonl differs between 1 worker and 2 processes"
    );
    for file in [
        "prewarm.jsonl",
        "scaleout.jsonl",
        "resculpt.jsonl",
        "durations.json",
        "forecasts.json",
    ] {
        let read = |dir: &Path| std::fs::read(dir.join(file)).expect(file);
        assert_eq!(
            read(&one),
            read(&two),
            "{file} differs between 1 and 2 workers"
        );
        assert_eq!(
            read(&one),
            read(&cluster),
            "{file} differs between 1 worker and 2 processes"
        );
    }
}

#[test]
fn rerun_is_byte_identical() {
    let dir = temp("rerun");
    let args = short_scenario(&dir, 200);
    let a = dir.join("a");
    let b = dir.join("b");
    assert!(augur(&args, &a, &[]).wait().expect("wait").success());
    assert!(augur(&args, &b, &[]).wait().expect("wait").success());
    assert_eq!(
        std::fs::read(a.join("partition.jsonl")).expect("a"),
        std::fs::read(b.join("partition.jsonl")).expect("b")
    );
    assert_eq!(outputs(&a).0, outputs(&b).0);
}
