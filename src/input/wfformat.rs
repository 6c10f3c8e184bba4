//! WfCommons WfFormat workflow instances (schemaVersion 1.4, 1.5 and 1.6).
//!
//! A workflow is all or nothing: placing half a DAG, or a DAG with a dependency missing, would
//! schedule tasks before their inputs exist. So every problem found is reported (one
//! [`Rejection`] each, naming the task), and any problem refuses the whole workflow.
//!
//! 1.4 lists tasks under `workflow.tasks`, each with its own `files` (sizes inline) and parents
//! named by task name. 1.5 split this into `workflow.specification` (the DAG and a file table)
//! and `workflow.execution` (what was measured); 1.6 only adds optional metrics.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use serde_json::{Map, Value};

use super::rejection::{InputStats, RejectKind, Rejection};

/// A validated workflow DAG.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The file stem, which names the workflow in events and outputs.
    pub name: String,
    /// The file it came from.
    pub path: String,
    /// Tasks in file order; their positions are the indices used everywhere else.
    pub tasks: Vec<WfTask>,
    /// Dependencies, sorted by (parent, child), without duplicates.
    pub edges: Vec<WfEdge>,
    /// The machines the instance was recorded on, in file order.
    pub machines: Vec<Machine>,
}

/// One task and what was measured of it.
#[derive(Debug, Clone, PartialEq)]
pub struct WfTask {
    /// Unique within the workflow.
    pub id: String,
    /// Display name; names repeat (one per Nextflow process, say), ids do not.
    pub name: String,
    /// The kind of task, for learning per-kind behaviour: the `category` field when given,
    /// else the one-word `command.program`, else the name without a Pegasus-style
    /// `_ID0000001` suffix.
    pub category: Option<String>,
    /// Measured runtime in seconds (0 when not recorded).
    pub runtime_s: f64,
    /// Cores it used (1 when not recorded).
    pub cores: f64,
    /// Peak resident memory, if recorded.
    pub memory_bytes: Option<u64>,
    /// Average CPU utilisation in percent of one core (may exceed 100), if recorded.
    pub avg_cpu_pct: Option<f64>,
    /// Bytes read from storage, if recorded.
    pub read_bytes: Option<u64>,
    /// Bytes written to storage, if recorded.
    pub written_bytes: Option<u64>,
    /// Total size of its input files.
    pub input_bytes: u64,
    /// Total size of its output files.
    pub output_bytes: u64,
    /// Indices of its parents in `Workflow::tasks`, ascending.
    pub parents: Vec<usize>,
    /// Indices of its children in `Workflow::tasks`, ascending.
    pub children: Vec<usize>,
}

/// A dependency, with the data that flows along it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WfEdge {
    /// Index of the task that must finish first.
    pub parent: usize,
    /// Index of the task that waits for it.
    pub child: usize,
    /// Total size of the files the parent writes and the child reads.
    pub bytes: u64,
}

/// A machine the instance was recorded on.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Its node name.
    pub name: String,
    /// Its core count, if recorded.
    pub cores: Option<u32>,
    /// Its clock speed in MHz, if recorded.
    pub speed_mhz: Option<f64>,
    /// Its memory in bytes, if recorded.
    pub memory_bytes: Option<u64>,
}

/// The outcome of reading one workflow file.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRead {
    /// The workflow, when it had no problem at all.
    pub workflow: Option<Workflow>,
    /// Every problem found; empty exactly when `workflow` is `Some`.
    pub rejections: Vec<Rejection>,
    /// One record per task (one for a file that could not be read as a workflow at all).
    pub stats: InputStats,
}

/// The UTF-8 byte-order mark some editors put first.
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Reads and validates a WfFormat file (see [`parse_workflow`]).
pub fn read_workflow(path: &Path) -> WorkflowRead {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => {
            // Editors on some systems start UTF-8 files with a byte-order mark; JSON has none.
            let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(&bytes);
            parse_value(serde_json::from_slice(bytes), &name)
        }
        Err(error) => refused_file(&name, RejectKind::Io, error.to_string()),
    }
}

/// Validates WfFormat text; `path` names it (its stem becomes the workflow name).
pub fn parse_workflow(text: &str, path: &str) -> WorkflowRead {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    parse_value(serde_json::from_str(text), path)
}

/// A problem with the workflow, before it is attached to the file name.
type Problem = (RejectKind, String);

fn parse_value(document: Result<Value, serde_json::Error>, path: &str) -> WorkflowRead {
    let document = match document {
        Ok(document) => document,
        Err(error) => {
            return refused_file(path, RejectKind::Parse, format!("invalid JSON: {error}"))
        }
    };
    let raw = match extract(&document) {
        Ok(raw) => raw,
        Err((kind, reason)) => return refused_file(path, kind, reason),
    };
    let record_count = raw.entries as u64;
    let (workflow, problems) = build(raw, path);
    if problems.is_empty() {
        WorkflowRead {
            workflow: Some(workflow),
            rejections: Vec::new(),
            stats: InputStats {
                read: record_count,
                accepted: record_count,
                ..InputStats::default()
            },
        }
    } else {
        let rejections = problems
            .into_iter()
            .map(|(kind, reason)| Rejection::whole_file(path, kind, reason))
            .collect();
        refused(rejections, record_count.max(1))
    }
}

fn refused_file(path: &str, kind: RejectKind, reason: String) -> WorkflowRead {
    refused(vec![Rejection::whole_file(path, kind, reason)], 1)
}

fn refused(rejections: Vec<Rejection>, records: u64) -> WorkflowRead {
    WorkflowRead {
        workflow: None,
        rejections,
        stats: InputStats {
            read: records,
            rejected: records,
            ..InputStats::default()
        },
    }
}

/// The workflow as the file states it, before cross-references are checked.
#[derive(Debug, Default)]
struct RawWorkflow {
    /// Task entries in the file, including those too malformed to become a `RawTask`.
    entries: usize,
    tasks: Vec<RawTask>,
    /// File id to size; sizes are checked later so that every bad one is reported.
    file_sizes: HashMap<String, Value>,
    machines: Vec<Machine>,
    /// Problems found while extracting (bad types, unknown execution entries).
    problems: Vec<Problem>,
    /// 1.4 names parents by task name rather than id.
    references_by_name: bool,
}

#[derive(Debug, Default)]
struct RawTask {
    id: String,
    name: String,
    category: Option<String>,
    runtime: Option<f64>,
    cores: Option<f64>,
    memory: Option<f64>,
    avg_cpu: Option<f64>,
    read: Option<f64>,
    written: Option<f64>,
    parents: Vec<String>,
    children: Vec<String>,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// `command.program` when it is one word (Pegasus names the transformation there).
    program: Option<String>,
}

/// Finds the tasks, files and machines in either layout. An `Err` is a problem so basic that
/// there are no tasks to speak of.
fn extract(document: &Value) -> Result<RawWorkflow, Problem> {
    let schema = |reason: String| (RejectKind::Schema, reason);
    let root = document
        .as_object()
        .ok_or_else(|| schema("the document is not a JSON object".to_string()))?;
    let version = match root.get("schemaVersion") {
        Some(Value::String(version)) => version.as_str(),
        Some(other) => return Err(schema(format!("schemaVersion {other} is not a string"))),
        None => return Err(schema("no schemaVersion".to_string())),
    };
    let workflow = root
        .get("workflow")
        .and_then(Value::as_object)
        .ok_or_else(|| schema("no workflow object".to_string()))?;
    match version {
        "1.4" => extract_v14(workflow),
        "1.5" | "1.6" => extract_v15(workflow),
        other => Err(schema(format!(
            "unsupported schemaVersion {other:?} (supported: 1.4, 1.5, 1.6; \
             wfcommons-migrate-instance.py upgrades older instances)"
        ))),
    }
}

fn extract_v15(workflow: &Map<String, Value>) -> Result<RawWorkflow, Problem> {
    let specification = workflow
        .get("specification")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            (
                RejectKind::Schema,
                "no workflow.specification object".to_string(),
            )
        })?;
    let spec_tasks = task_array(specification, "workflow.specification.tasks")?;
    let mut raw = RawWorkflow {
        entries: spec_tasks.len(),
        ..RawWorkflow::default()
    };
    for (position, entry) in spec_tasks.iter().enumerate() {
        match spec_task(entry, position) {
            Ok(task) => raw.tasks.push(task),
            Err(reason) => raw.problems.push((RejectKind::Schema, reason)),
        }
    }
    if let Some(files) = specification.get("files") {
        read_file_table(files, &mut raw);
    }
    if let Some(execution) = workflow.get("execution").and_then(Value::as_object) {
        merge_execution(execution, &mut raw);
        if let Some(machines) = execution.get("machines") {
            read_machines(machines, "coreCount", "speedInMHz", &mut raw);
        }
    }
    Ok(raw)
}

fn extract_v14(workflow: &Map<String, Value>) -> Result<RawWorkflow, Problem> {
    let tasks = task_array(workflow, "workflow.tasks")?;
    let mut raw = RawWorkflow {
        entries: tasks.len(),
        references_by_name: true,
        ..RawWorkflow::default()
    };
    for (position, entry) in tasks.iter().enumerate() {
        match v14_task(entry, position, &mut raw.file_sizes) {
            Ok(task) => raw.tasks.push(task),
            Err(reason) => raw.problems.push((RejectKind::Schema, reason)),
        }
    }
    if let Some(machines) = workflow.get("machines") {
        read_machines(machines, "count", "speed", &mut raw);
    }
    Ok(raw)
}

fn task_array<'a>(object: &'a Map<String, Value>, what: &str) -> Result<&'a Vec<Value>, Problem> {
    match object.get("tasks") {
        Some(Value::Array(tasks)) if !tasks.is_empty() => Ok(tasks),
        Some(Value::Array(_)) => Err((RejectKind::Schema, format!("{what} is empty"))),
        Some(_) => Err((RejectKind::Schema, format!("{what} is not an array"))),
        None => Err((RejectKind::Schema, format!("no {what}"))),
    }
}

fn spec_task(entry: &Value, position: usize) -> Result<RawTask, String> {
    let object = entry
        .as_object()
        .ok_or_else(|| format!("task #{position} is not an object"))?;
    let id = string_field(object, "id")
        .map_err(|error| format!("task #{position}: {error}"))?
        .ok_or_else(|| format!("task #{position} has no id"))?;
    if id.trim().is_empty() {
        return Err(format!("task #{position} has an empty id"));
    }
    let context = |error: String| format!("task {id}: {error}");
    let name = string_field(object, "name").map_err(context)?;
    Ok(RawTask {
        category: string_field(object, "category").map_err(context)?,
        name: name.unwrap_or_else(|| id.clone()),
        parents: string_list(object, "parents").map_err(context)?,
        children: string_list(object, "children").map_err(context)?,
        inputs: string_list(object, "inputFiles").map_err(context)?,
        outputs: string_list(object, "outputFiles").map_err(context)?,
        id,
        ..RawTask::default()
    })
}

fn read_file_table(files: &Value, raw: &mut RawWorkflow) {
    let Some(files) = files.as_array() else {
        raw.problems.push((
            RejectKind::Schema,
            "workflow.specification.files is not an array".to_string(),
        ));
        return;
    };
    for (position, file) in files.iter().enumerate() {
        let id = file.as_object().map(|object| string_field(object, "id"));
        match id {
            Some(Ok(Some(id))) => {
                let size = file.get("sizeInBytes").cloned().unwrap_or(Value::Null);
                if raw.file_sizes.insert(id.clone(), size).is_some() {
                    raw.problems.push((
                        RejectKind::DuplicateId,
                        format!("file {id} is listed twice"),
                    ));
                }
            }
            _ => raw.problems.push((
                RejectKind::Schema,
                format!("file #{position} has no string id"),
            )),
        }
    }
}

/// Attaches each execution record to its specification task (by id).
fn merge_execution(execution: &Map<String, Value>, raw: &mut RawWorkflow) {
    let Some(entries) = execution.get("tasks") else {
        return;
    };
    let Some(entries) = entries.as_array() else {
        raw.problems.push((
            RejectKind::Schema,
            "workflow.execution.tasks is not an array".to_string(),
        ));
        return;
    };
    // Specification positions per id, in file order: the k-th execution entry of an id goes to
    // the k-th specification task with it, so a duplicated id is reported once, not again here.
    let mut unmerged: HashMap<String, VecDeque<usize>> = HashMap::new();
    for (position, task) in raw.tasks.iter().enumerate() {
        unmerged
            .entry(task.id.clone())
            .or_default()
            .push_back(position);
    }
    for (position, entry) in entries.iter().enumerate() {
        let Some(object) = entry.as_object() else {
            raw.problems.push((
                RejectKind::Schema,
                format!("execution task #{position} is not an object"),
            ));
            continue;
        };
        let id = match string_field(object, "id") {
            Ok(Some(id)) => id,
            _ => {
                raw.problems.push((
                    RejectKind::Schema,
                    format!("execution task #{position} has no string id"),
                ));
                continue;
            }
        };
        let Some(waiting) = unmerged.get_mut(&id) else {
            raw.problems.push((
                RejectKind::UnknownTask,
                format!("execution task {id} is not in workflow.specification.tasks"),
            ));
            continue;
        };
        let Some(task_position) = waiting.pop_front() else {
            raw.problems.push((
                RejectKind::DuplicateId,
                format!("execution task {id} is listed twice"),
            ));
            continue;
        };
        if let Some(task) = raw.tasks.get_mut(task_position) {
            if let Err(error) = measurements(object, "coreCount", task) {
                raw.problems
                    .push((RejectKind::Schema, format!("task {id}: {error}")));
            }
        }
    }
}

/// Copies the measured quantities of one task (same names in 1.4 and 1.5, but for cores).
fn measurements(
    object: &Map<String, Value>,
    cores_key: &str,
    task: &mut RawTask,
) -> Result<(), String> {
    task.runtime = number_field(object, "runtimeInSeconds")?;
    task.cores = number_field(object, cores_key)?;
    task.memory = number_field(object, "memoryInBytes")?;
    task.avg_cpu = number_field(object, "avgCPU")?;
    task.read = number_field(object, "readBytes")?;
    task.written = number_field(object, "writtenBytes")?;
    task.program = object
        .get("command")
        .and_then(|command| command.get("program"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|program| is_single_word(program))
        .map(str::to_string);
    Ok(())
}

/// A program name, not a whole script (Nextflow puts the process's script there).
fn is_single_word(text: &str) -> bool {
    !text.is_empty() && text.len() <= 128 && !text.chars().any(char::is_whitespace)
}

fn v14_task(
    entry: &Value,
    position: usize,
    file_sizes: &mut HashMap<String, Value>,
) -> Result<RawTask, String> {
    let object = entry
        .as_object()
        .ok_or_else(|| format!("task #{position} is not an object"))?;
    let at = |error: String| format!("task #{position}: {error}");
    let name = string_field(object, "name").map_err(at)?;
    let id = string_field(object, "id").map_err(at)?;
    // 1.4 makes only the name required; the id then defaults to it.
    let (id, name) = match (id, name) {
        (Some(id), Some(name)) => (id, name),
        (Some(id), None) => (id.clone(), id),
        (None, Some(name)) => (name.clone(), name),
        (None, None) => return Err(format!("task #{position} has neither id nor name")),
    };
    let context = |error: String| format!("task {id}: {error}");
    let mut task = RawTask {
        category: string_field(object, "category").map_err(context)?,
        parents: string_list(object, "parents").map_err(context)?,
        children: string_list(object, "children").map_err(context)?,
        ..RawTask::default()
    };
    measurements(object, "cores", &mut task).map_err(context)?;
    if let Some(files) = object.get("files") {
        let files = files
            .as_array()
            .ok_or_else(|| context("files is not an array".to_string()))?;
        for file in files {
            v14_file(file, &mut task, file_sizes).map_err(context)?;
        }
    }
    task.id = id;
    task.name = name;
    Ok(task)
}

/// Records one inline 1.4 file entry; a file is keyed by `path` + `name`, as the WfCommons
/// migration to 1.5 keys it.
fn v14_file(
    file: &Value,
    task: &mut RawTask,
    file_sizes: &mut HashMap<String, Value>,
) -> Result<(), String> {
    let object = file
        .as_object()
        .ok_or_else(|| "a file entry is not an object".to_string())?;
    let name =
        string_field(object, "name")?.ok_or_else(|| "a file entry has no name".to_string())?;
    let key = match string_field(object, "path")? {
        Some(path) => format!("{path}{name}"),
        None => name,
    };
    let size = object.get("sizeInBytes").cloned().unwrap_or(Value::Null);
    file_sizes.entry(key.clone()).or_insert(size);
    match string_field(object, "link")?.as_deref() {
        Some("input") => task.inputs.push(key),
        Some("output") => task.outputs.push(key),
        other => {
            return Err(format!(
                "file {key} has link {other:?}, expected \"input\" or \"output\""
            ))
        }
    }
    Ok(())
}

fn read_machines(machines: &Value, cores_key: &str, speed_key: &str, raw: &mut RawWorkflow) {
    let Some(machines) = machines.as_array() else {
        raw.problems
            .push((RejectKind::Schema, "machines is not an array".to_string()));
        return;
    };
    for (position, entry) in machines.iter().enumerate() {
        match machine(entry, cores_key, speed_key) {
            Ok(machine) => raw.machines.push(machine),
            Err((kind, reason)) => raw
                .problems
                .push((kind, format!("machine #{position}: {reason}"))),
        }
    }
}

fn machine(entry: &Value, cores_key: &str, speed_key: &str) -> Result<Machine, Problem> {
    let schema = |reason: String| (RejectKind::Schema, reason);
    let object = entry
        .as_object()
        .ok_or_else(|| schema("not an object".to_string()))?;
    let name = string_field(object, "nodeName")
        .map_err(schema)?
        .ok_or_else(|| schema("no nodeName".to_string()))?;
    let cpu = match object.get("cpu") {
        None | Some(Value::Null) => None,
        Some(Value::Object(cpu)) => Some(cpu),
        Some(_) => return Err(schema(format!("{name}: cpu is not an object"))),
    };
    let cpu_number = |key: &str| match cpu {
        Some(cpu) => number_field(cpu, key).map_err(|error| schema(format!("{name}: {error}"))),
        None => Ok(None),
    };
    let cores = cpu_number(cores_key)?;
    let speed_mhz = cpu_number(speed_key)?;
    let memory = number_field(object, "memoryInBytes")
        .map_err(|error| schema(format!("{name}: {error}")))?;
    let what = format!("machine {name}");
    let cores = match cores {
        Some(cores) => Some(
            checked_amount(&what, "cpu cores", cores)?
                .min(f64::from(u32::MAX))
                .round() as u32,
        ),
        None => None,
    };
    let speed_mhz = match speed_mhz {
        Some(speed) => Some(checked_amount(&what, "cpu speed", speed)?),
        None => None,
    };
    let memory_bytes = match memory {
        Some(memory) => Some(to_bytes(checked_amount(&what, "memoryInBytes", memory)?)),
        None => None,
    };
    Ok(Machine {
        name,
        cores,
        speed_mhz,
        memory_bytes,
    })
}

/// Resolves references, checks quantities and builds the DAG; returns the problems found.
fn build(raw: RawWorkflow, path: &str) -> (Workflow, Vec<Problem>) {
    let RawWorkflow {
        entries: _,
        tasks: raw_tasks,
        file_sizes,
        machines,
        mut problems,
        references_by_name,
    } = raw;
    let sizes = checked_file_sizes(&file_sizes, &mut problems);
    let resolver = Resolver::new(&raw_tasks, references_by_name, &mut problems);
    let pairs = resolve_edges(&raw_tasks, &resolver, &mut problems);
    let mut tasks: Vec<WfTask> = raw_tasks
        .iter()
        .map(|task| checked_task(task, &sizes, &mut problems))
        .collect();
    let edges = weigh_edges(&pairs, &raw_tasks, &sizes);
    for edge in &edges {
        if let Some(parent) = tasks.get_mut(edge.parent) {
            parent.children.push(edge.child);
        }
        if let Some(child) = tasks.get_mut(edge.child) {
            child.parents.push(edge.parent);
        }
    }
    if let Some(cycle) = find_cycle(&tasks) {
        let names: Vec<&str> = cycle
            .iter()
            .filter_map(|&index| tasks.get(index).map(|task| task.id.as_str()))
            .collect();
        problems.push((RejectKind::Cycle, describe_cycle(&names)));
    }
    let workflow = Workflow {
        name: file_stem(path),
        path: path.to_string(),
        tasks,
        edges,
        machines,
    };
    (workflow, problems)
}

fn file_stem(path: &str) -> String {
    Path::new(path).file_stem().map_or_else(
        || path.to_string(),
        |stem| stem.to_string_lossy().into_owned(),
    )
}

/// Checks every file size once, so each bad size is reported once however many tasks use it.
/// A file whose size was bad maps to `None`.
fn checked_file_sizes(
    file_sizes: &HashMap<String, Value>,
    problems: &mut Vec<Problem>,
) -> HashMap<String, Option<u64>> {
    let mut ids: Vec<&String> = file_sizes.keys().collect();
    ids.sort(); // deterministic order of problems
    let mut sizes = HashMap::with_capacity(ids.len());
    for id in ids {
        let what = format!("file {id}");
        let size = match file_sizes.get(id) {
            Some(Value::Number(number)) => number
                .as_f64()
                .ok_or_else(|| {
                    (
                        RejectKind::Schema,
                        format!("{what}: sizeInBytes is not a number"),
                    )
                })
                .and_then(|size| checked_amount(&what, "sizeInBytes", size)),
            _ => Err((
                RejectKind::Schema,
                format!("{what}: sizeInBytes is missing or not a number"),
            )),
        };
        let size = size.map_err(|problem| problems.push(problem)).ok();
        sizes.insert(id.clone(), size.map(to_bytes));
    }
    sizes
}

/// Maps task references to indices: by id, and in 1.4 also by name when the name is unique.
struct Resolver<'a> {
    by_id: HashMap<&'a str, usize>,
    by_name: HashMap<&'a str, Option<usize>>,
}

impl<'a> Resolver<'a> {
    /// Also reports duplicate ids.
    fn new(tasks: &'a [RawTask], by_name: bool, problems: &mut Vec<Problem>) -> Resolver<'a> {
        let mut by_id = HashMap::with_capacity(tasks.len());
        for (index, task) in tasks.iter().enumerate() {
            if by_id.insert(task.id.as_str(), index).is_some() {
                problems.push((
                    RejectKind::DuplicateId,
                    format!("task id {} is used twice", task.id),
                ));
            }
        }
        // Keep the first of duplicates, matching what the rest of the file is checked against.
        for (index, task) in tasks.iter().enumerate().rev() {
            by_id.insert(task.id.as_str(), index);
        }
        let mut names: HashMap<&str, Option<usize>> = HashMap::new();
        if by_name {
            for (index, task) in tasks.iter().enumerate() {
                names
                    .entry(task.name.as_str())
                    .and_modify(|slot| *slot = None)
                    .or_insert(Some(index));
            }
        }
        Resolver {
            by_id,
            by_name: names,
        }
    }

    fn resolve(&self, reference: &str) -> Option<usize> {
        self.by_id
            .get(reference)
            .copied()
            .or_else(|| self.by_name.get(reference).copied().flatten())
    }
}

/// The union of both directions of the declared dependencies, deduplicated and sorted.
fn resolve_edges(
    tasks: &[RawTask],
    resolver: &Resolver<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (index, task) in tasks.iter().enumerate() {
        for parent in &task.parents {
            match resolver.resolve(parent) {
                Some(parent) => pairs.push((parent, index)),
                None => problems.push((
                    RejectKind::DanglingParent,
                    format!(
                        "task {} names parent {parent}, which is not a task",
                        task.id
                    ),
                )),
            }
        }
        for child in &task.children {
            match resolver.resolve(child) {
                Some(child) => pairs.push((index, child)),
                None => problems.push((
                    RejectKind::DanglingParent,
                    format!("task {} names child {child}, which is not a task", task.id),
                )),
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

fn checked_task(
    task: &RawTask,
    sizes: &HashMap<String, Option<u64>>,
    problems: &mut Vec<Problem>,
) -> WfTask {
    let what = format!("task {}", task.id);
    let mut check = |field: &str, value: Option<f64>| -> Option<f64> {
        let value = value?;
        checked_amount(&what, field, value)
            .map_err(|problem| problems.push(problem))
            .ok()
    };
    let runtime_s = check("runtimeInSeconds", task.runtime).unwrap_or(0.0);
    let cores = check("cores", task.cores).unwrap_or(1.0);
    let memory_bytes = check("memoryInBytes", task.memory).map(to_bytes);
    let avg_cpu_pct = check("avgCPU", task.avg_cpu);
    let read_bytes = check("readBytes", task.read).map(to_bytes);
    let written_bytes = check("writtenBytes", task.written).map(to_bytes);
    if cores == 0.0 {
        problems.push((
            RejectKind::Schema,
            format!("{what}: cores must be greater than zero"),
        ));
    }
    let input_bytes = total_size(&task.id, "input", &task.inputs, sizes, problems);
    let output_bytes = total_size(&task.id, "output", &task.outputs, sizes, problems);
    WfTask {
        id: task.id.clone(),
        name: task.name.clone(),
        // The kind of task: its declared category, else the program it runs (Pegasus names
        // tasks per input, e.g. `fast2bfq_fast2bfq_HEP2_..._ID0000002`, but the program is
        // `fast2bfq`), else the name without a Pegasus-style `_ID` suffix.
        category: task
            .category
            .clone()
            .or_else(|| task.program.clone())
            .or_else(|| derived_category(&task.name)),
        runtime_s,
        cores,
        memory_bytes,
        avg_cpu_pct,
        read_bytes,
        written_bytes,
        input_bytes,
        output_bytes,
        parents: Vec::new(),
        children: Vec::new(),
    }
}

/// Sums the sizes of a task's distinct files; a file missing from the table is a problem,
/// since the transfer it implies could not be costed.
fn total_size(
    task: &str,
    role: &str,
    files: &[String],
    sizes: &HashMap<String, Option<u64>>,
    problems: &mut Vec<Problem>,
) -> u64 {
    let mut seen = HashSet::new();
    let mut total: u64 = 0;
    for file in files.iter().filter(|file| seen.insert(file.as_str())) {
        match sizes.get(file) {
            Some(Some(size)) => total = total.saturating_add(*size),
            // Its bad size has been reported already.
            Some(None) => {}
            None => problems.push((
                RejectKind::Schema,
                format!("task {task}: {role} file {file} is not in the file list"),
            )),
        }
    }
    total
}

/// Pegasus and Makeflow name tasks `<transformation>_ID<digits>`; the transformation is the kind.
fn derived_category(name: &str) -> Option<String> {
    let stem = match name.rsplit_once("_ID") {
        Some((stem, digits))
            if !stem.is_empty()
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            stem
        }
        _ => name,
    };
    (!stem.is_empty()).then(|| stem.to_string())
}

fn weigh_edges(
    pairs: &[(usize, usize)],
    tasks: &[RawTask],
    sizes: &HashMap<String, Option<u64>>,
) -> Vec<WfEdge> {
    let outputs: Vec<HashSet<&str>> = tasks
        .iter()
        .map(|task| task.outputs.iter().map(String::as_str).collect())
        .collect();
    let inputs: Vec<HashSet<&str>> = tasks
        .iter()
        .map(|task| task.inputs.iter().map(String::as_str).collect())
        .collect();
    let empty = HashSet::new();
    pairs
        .iter()
        .map(|&(parent, child)| {
            let written = outputs.get(parent).unwrap_or(&empty);
            let read = inputs.get(child).unwrap_or(&empty);
            // Probe the larger set from the smaller: fan-in tasks read thousands of files.
            let (small, large) = if written.len() <= read.len() {
                (written, read)
            } else {
                (read, written)
            };
            let bytes = small
                .iter()
                .filter(|file| large.contains(*file))
                .filter_map(|file| sizes.get(*file).copied().flatten())
                .fold(0u64, u64::saturating_add);
            WfEdge {
                parent,
                child,
                bytes,
            }
        })
        .collect()
}

/// Finds a cycle by depth-first search over children, iteratively so that deep DAGs cannot
/// overflow the stack. Returns the tasks on the cycle in order, the first repeated at the end.
fn find_cycle(tasks: &[WfTask]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unvisited,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::Unvisited; tasks.len()];
    // The current path, each node with the position of its next child to visit.
    let mut path: Vec<(usize, usize)> = Vec::new();
    for root in 0..tasks.len() {
        if marks.get(root) != Some(&Mark::Unvisited) {
            continue;
        }
        path.push((root, 0));
        if let Some(mark) = marks.get_mut(root) {
            *mark = Mark::OnPath;
        }
        while let Some((node, next)) = path.last_mut() {
            let children = tasks.get(*node).map_or(&[][..], |task| &task.children);
            let Some(&child) = children.get(*next) else {
                if let Some(mark) = marks.get_mut(*node) {
                    *mark = Mark::Done;
                }
                path.pop();
                continue;
            };
            *next += 1;
            match marks.get(child) {
                Some(Mark::Unvisited) => {
                    if let Some(mark) = marks.get_mut(child) {
                        *mark = Mark::OnPath;
                    }
                    path.push((child, 0));
                }
                Some(Mark::OnPath) => {
                    let start = path.iter().position(|&(on_path, _)| on_path == child)?;
                    let mut cycle: Vec<usize> =
                        path.iter().skip(start).map(|&(node, _)| node).collect();
                    cycle.push(child);
                    return Some(cycle);
                }
                _ => {}
            }
        }
    }
    None
}

/// `a -> b -> c -> a`, with the middle of very long cycles elided to keep the message readable.
fn describe_cycle(ids: &[&str]) -> String {
    const SHOWN_EACH_END: usize = 8;
    if ids.len() <= 2 * SHOWN_EACH_END + 1 {
        return ids.join(" -> ");
    }
    let head = ids.get(..SHOWN_EACH_END).unwrap_or_default();
    let tail = ids.get(ids.len() - SHOWN_EACH_END..).unwrap_or_default();
    let elided = ids.len() - 2 * SHOWN_EACH_END;
    format!(
        "{} -> ... ({elided} more) ... -> {}",
        head.join(" -> "),
        tail.join(" -> ")
    )
}

/// Checks a quantity that must be a finite non-negative number.
fn checked_amount(what: &str, field: &str, value: f64) -> Result<f64, Problem> {
    if !value.is_finite() {
        Err((
            RejectKind::NonFinite,
            format!("{what}: {field} {value} is not finite"),
        ))
    } else if value < 0.0 {
        Err((
            RejectKind::Negative,
            format!("{what}: {field} {value} is negative"),
        ))
    } else {
        Ok(value)
    }
}

/// Rounds a checked (finite, non-negative) amount to whole bytes; `as` saturates at `u64::MAX`.
fn to_bytes(value: f64) -> u64 {
    value.round() as u64
}

fn string_field(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("{key} {other} is not a string")),
    }
}

fn number_field(object: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{key} {number} is not representable")),
        Some(other) => Err(format!("{key} {other} is not a number")),
    }
}

fn string_list(object: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key} holds {item}, which is not a string"))
            })
            .collect(),
        Some(other) => Err(format!("{key} {other} is not an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    /// `(id, parents, children, inputs, outputs, runtime)`.
    type TaskRow<'a> = (
        &'a str,
        &'a [&'a str],
        &'a [&'a str],
        &'a [&'a str],
        &'a [&'a str],
        f64,
    );

    /// A 1.5 document from task rows and `(file id, size)` pairs.
    fn v15(tasks: &[TaskRow<'_>], files: &[(&str, i64)]) -> String {
        let specification: Vec<Value> = tasks
            .iter()
            .map(|(id, parents, children, inputs, outputs, _)| {
                json!({"name": id, "id": id, "parents": parents, "children": children,
                       "inputFiles": inputs, "outputFiles": outputs})
            })
            .collect();
        let execution: Vec<Value> = tasks
            .iter()
            .map(|(id, .., runtime)| json!({"id": id, "runtimeInSeconds": runtime}))
            .collect();
        let files: Vec<Value> = files
            .iter()
            .map(|(id, size)| json!({"id": id, "sizeInBytes": size}))
            .collect();
        json!({
            "name": "test", "schemaVersion": "1.5",
            "workflow": {
                "specification": {"tasks": specification, "files": files},
                "execution": {"makespanInSeconds": 1, "executedAt": "now", "tasks": execution,
                              "machines": [{"nodeName": "n1", "cpu": {"coreCount": 48, "speedInMHz": 2400},
                                            "memoryInBytes": 1000}]}
            }
        })
        .to_string()
    }

    fn accepted(text: &str) -> Workflow {
        let read = parse_workflow(text, "dir/wf-1.json");
        assert_eq!(read.rejections, Vec::new());
        read.workflow.expect("accepted")
    }

    fn rejections(text: &str) -> Vec<Rejection> {
        let read = parse_workflow(text, "wf.json");
        assert!(read.workflow.is_none());
        assert!(!read.rejections.is_empty());
        assert_eq!(read.stats.accepted, 0);
        assert_eq!(read.stats.read, read.stats.rejected);
        assert!(read
            .rejections
            .iter()
            .all(|rejection| rejection.line.is_none()));
        read.rejections
    }

    fn kinds(text: &str) -> Vec<RejectKind> {
        rejections(text)
            .iter()
            .map(|rejection| rejection.kind)
            .collect()
    }

    #[test]
    fn diamond_with_edges_given_one_way_each() {
        // a lists its child b; c lists its parents a and b; the union is the DAG.
        let text = v15(
            &[
                ("a", &[], &["b"], &["in"], &["x", "y"], 1.5),
                ("b", &[], &[], &["x"], &["z"], 2.0),
                ("c", &["a", "b", "a"], &[], &["x", "y", "z"], &[], 0.0),
            ],
            &[("in", 1), ("x", 10), ("y", 100), ("z", 1000)],
        );
        let workflow = accepted(&text);
        assert_eq!(workflow.name, "wf-1");
        assert_eq!(workflow.tasks.len(), 3);
        let edges: Vec<(usize, usize, u64)> = workflow
            .edges
            .iter()
            .map(|edge| (edge.parent, edge.child, edge.bytes))
            .collect();
        assert_eq!(edges, vec![(0, 1, 10), (0, 2, 110), (1, 2, 1000)]);
        assert_eq!(workflow.tasks[2].parents, vec![0, 1]);
        assert_eq!(workflow.tasks[0].children, vec![1, 2]);
        assert_eq!(workflow.tasks[0].input_bytes, 1);
        assert_eq!(workflow.tasks[0].output_bytes, 110);
        assert_eq!(workflow.tasks[0].runtime_s, 1.5);
        assert_eq!(workflow.tasks[0].cores, 1.0);
        assert_eq!(
            workflow.machines,
            vec![Machine {
                name: "n1".into(),
                cores: Some(48),
                speed_mhz: Some(2400.0),
                memory_bytes: Some(1000)
            }]
        );
        let read = parse_workflow(&text, "wf.json");
        assert_eq!(
            read.stats,
            InputStats {
                read: 3,
                accepted: 3,
                rejected: 0,
                dropped_fields: 0
            }
        );
    }

    #[test]
    fn execution_measurements_and_defaults() {
        let text = json!({
            "schemaVersion": "1.6",
            "workflow": {
                "specification": {"tasks": [
                    {"name": "blast", "id": "blast_ID000002", "parents": [], "children": []},
                    {"name": "NFCORE.X", "id": "NFCORE.X_3", "parents": [], "children": []}
                ]},
                "execution": {"tasks": [
                    {"id": "blast_ID000002", "runtimeInSeconds": 3, "coreCount": 4, "avgCPU": 150.5,
                     "readBytes": 10, "writtenBytes": 20.4, "memoryInBytes": 3e6, "metrics": {"x": 1}}
                ]}
            }
        })
        .to_string();
        let workflow = accepted(&text);
        let blast = &workflow.tasks[0];
        assert_eq!(
            (blast.runtime_s, blast.cores, blast.avg_cpu_pct),
            (3.0, 4.0, Some(150.5))
        );
        assert_eq!(
            (blast.read_bytes, blast.written_bytes, blast.memory_bytes),
            (Some(10), Some(20), Some(3_000_000))
        );
        assert_eq!(blast.category.as_deref(), Some("blast"));
        let other = &workflow.tasks[1];
        assert_eq!(
            (other.runtime_s, other.cores, other.memory_bytes),
            (0.0, 1.0, None)
        );
        assert_eq!(other.category.as_deref(), Some("NFCORE.X"));
        assert_eq!(
            derived_category("mProject_ID0000001").as_deref(),
            Some("mProject")
        );
        assert_eq!(
            derived_category("chr21_chr21_ID0000001").as_deref(),
            Some("chr21_chr21")
        );
        assert_eq!(derived_category("odd_IDx").as_deref(), Some("odd_IDx"));
    }

    #[test]
    fn version_1_4_document() {
        let text = json!({
            "name": "old", "schemaVersion": "1.4",
            "workflow": {
                "makespanInSeconds": 10, "executedAt": "then",
                "machines": [{"nodeName": "m1", "cpu": {"count": 8, "speed": 1200}, "memoryInBytes": 4096}],
                "tasks": [
                    {"name": "mProject_ID01", "id": "ID01", "type": "compute", "category": "mProject",
                     "runtimeInSeconds": 4.5, "cores": 2, "machine": "m1",
                     "files": [{"link": "input", "name": "raw.fits", "sizeInBytes": 7},
                               {"link": "output", "name": "p.fits", "sizeInBytes": 30}]},
                    {"name": "mAdd_ID02", "id": "ID02", "type": "compute",
                     "parents": ["mProject_ID01"],
                     "files": [{"link": "input", "name": "p.fits", "sizeInBytes": 30},
                               {"link": "output", "name": "out.fits", "path": "/o/", "sizeInBytes": 5}]}
                ]
            }
        })
        .to_string();
        let workflow = accepted(&text);
        assert_eq!(workflow.tasks[0].id, "ID01");
        assert_eq!(workflow.tasks[0].name, "mProject_ID01");
        assert_eq!(workflow.tasks[0].category.as_deref(), Some("mProject"));
        assert_eq!(
            (workflow.tasks[0].runtime_s, workflow.tasks[0].cores),
            (4.5, 2.0)
        );
        assert_eq!(
            workflow.edges,
            vec![WfEdge {
                parent: 0,
                child: 1,
                bytes: 30
            }]
        );
        assert_eq!(workflow.tasks[1].output_bytes, 5);
        assert_eq!(workflow.machines[0].cores, Some(8));
        assert_eq!(workflow.machines[0].speed_mhz, Some(1200.0));
    }

    #[test]
    fn unreadable_and_invalid_files() {
        let read = read_workflow(Path::new("/nonexistent/augur/wf.json"));
        assert_eq!(read.rejections.len(), 1);
        assert_eq!(read.rejections[0].kind, RejectKind::Io);
        assert_eq!(
            read.stats,
            InputStats {
                read: 1,
                accepted: 0,
                rejected: 1,
                dropped_fields: 0
            }
        );
        assert_eq!(kinds("{\"schemaVersion\": "), vec![RejectKind::Parse]);
        assert_eq!(kinds("[]"), vec![RejectKind::Schema]);
    }

    #[test]
    fn schema_problems() {
        let missing_tasks = json!({"schemaVersion": "1.5", "workflow": {"specification": {}}});
        assert_eq!(kinds(&missing_tasks.to_string()), vec![RejectKind::Schema]);
        let empty_tasks =
            json!({"schemaVersion": "1.5", "workflow": {"specification": {"tasks": []}}});
        assert_eq!(kinds(&empty_tasks.to_string()), vec![RejectKind::Schema]);
        let old = json!({"schemaVersion": "1.3", "workflow": {"tasks": [{"name": "a"}]}});
        let old = rejections(&old.to_string());
        assert!(old[0].reason.contains("1.3"), "{}", old[0].reason);
        let no_version = json!({"workflow": {"tasks": []}});
        assert_eq!(kinds(&no_version.to_string()), vec![RejectKind::Schema]);
        let missing_file = v15(&[("a", &[], &[], &["ghost"], &[], 1.0)], &[]);
        let missing_file = rejections(&missing_file);
        assert_eq!(missing_file[0].kind, RejectKind::Schema);
        assert!(missing_file[0].reason.contains("ghost"));
        let bad_type = json!({"schemaVersion": "1.5", "workflow": {"specification": {"tasks": [
            {"id": "a", "name": "a", "parents": "b", "children": []}]}}});
        assert_eq!(kinds(&bad_type.to_string()), vec![RejectKind::Schema]);
    }

    #[test]
    fn duplicate_ids_and_dangling_references() {
        let duplicate = rejections(&v15(
            &[
                ("a", &[], &[], &[], &[], 1.0),
                ("a", &[], &[], &[], &[], 1.0),
            ],
            &[],
        ));
        assert_eq!(duplicate.len(), 1);
        assert_eq!(duplicate[0].kind, RejectKind::DuplicateId);
        assert!(duplicate[0].reason.contains('a'));
        let dangling = rejections(&v15(&[("a", &["ghost"], &["phantom"], &[], &[], 1.0)], &[]));
        let reasons: Vec<&str> = dangling
            .iter()
            .map(|rejection| rejection.reason.as_str())
            .collect();
        assert_eq!(dangling.len(), 2);
        assert!(dangling
            .iter()
            .all(|rejection| rejection.kind == RejectKind::DanglingParent));
        assert!(
            reasons[0].contains("task a") && reasons[0].contains("ghost"),
            "{reasons:?}"
        );
        assert!(reasons[1].contains("phantom"));
    }

    #[test]
    fn unknown_execution_task() {
        let text = json!({"schemaVersion": "1.5", "workflow": {
            "specification": {"tasks": [{"id": "a", "name": "a", "parents": [], "children": []}]},
            "execution": {"tasks": [{"id": "b", "runtimeInSeconds": 1}]}}});
        assert_eq!(kinds(&text.to_string()), vec![RejectKind::UnknownTask]);
        let twice = json!({"schemaVersion": "1.5", "workflow": {
            "specification": {"tasks": [{"id": "a", "name": "a", "parents": [], "children": []}]},
            "execution": {"tasks": [{"id": "a", "runtimeInSeconds": 1}, {"id": "a", "runtimeInSeconds": 2}]}}});
        assert_eq!(kinds(&twice.to_string()), vec![RejectKind::DuplicateId]);
    }

    #[test]
    fn negative_quantities() {
        let runtime = rejections(&v15(&[("a", &[], &[], &[], &[], -1.0)], &[]));
        assert_eq!(runtime[0].kind, RejectKind::Negative);
        assert!(runtime[0].reason.contains("task a"));
        let size = rejections(&v15(&[("a", &[], &[], &["f"], &[], 1.0)], &[("f", -5)]));
        assert_eq!(size.len(), 1, "a bad size is reported once: {size:?}");
        assert_eq!(size[0].kind, RejectKind::Negative);
        let text = json!({"schemaVersion": "1.5", "workflow": {
            "specification": {"tasks": [{"id": "a", "name": "a", "parents": [], "children": []}]},
            "execution": {"tasks": [{"id": "a", "runtimeInSeconds": 1, "coreCount": 0}]}}});
        assert_eq!(kinds(&text.to_string()), vec![RejectKind::Schema]);
        let text = text
            .to_string()
            .replace("\"coreCount\":0", "\"coreCount\":-2");
        assert_eq!(kinds(&text), vec![RejectKind::Negative]);
    }

    #[test]
    fn non_finite_quantities_are_refused() {
        // serde_json never yields NaN, so the check is exercised directly.
        let problem = checked_amount("task a", "runtimeInSeconds", f64::NAN);
        assert!(
            matches!(problem, Err((RejectKind::NonFinite, reason)) if reason.contains("task a"))
        );
        assert!(matches!(
            checked_amount("t", "x", f64::INFINITY),
            Err((RejectKind::NonFinite, _))
        ));
    }

    #[test]
    fn cycle_is_named() {
        let text = v15(
            &[
                ("a", &[], &["b"], &[], &[], 1.0),
                ("b", &[], &["c"], &[], &[], 1.0),
                ("c", &[], &["a"], &[], &[], 1.0),
                ("d", &["c"], &[], &[], &[], 1.0),
            ],
            &[],
        );
        let cycle = rejections(&text);
        assert_eq!(cycle.len(), 1);
        assert_eq!(cycle[0].kind, RejectKind::Cycle);
        assert_eq!(cycle[0].reason, "a -> b -> c -> a");
        let self_loop = rejections(&v15(&[("s", &["s"], &[], &[], &[], 1.0)], &[]));
        assert_eq!(self_loop[0].reason, "s -> s");
    }

    /// A chain of `length` tasks, optionally closed into a cycle, in 1.5 form.
    fn chain(length: usize, closed: bool) -> String {
        let tasks: Vec<Value> = (0..length)
            .map(|index| {
                let mut children = vec![];
                if index + 1 < length {
                    children.push(format!("t{}", index + 1));
                } else if closed {
                    children.push("t0".to_string());
                }
                json!({"id": format!("t{index}"), "name": "t", "parents": [], "children": children})
            })
            .collect();
        json!({"schemaVersion": "1.5", "workflow": {"specification": {"tasks": tasks}}}).to_string()
    }

    #[test]
    fn deep_chains_do_not_overflow_the_stack() {
        let workflow = accepted(&chain(100_000, false));
        assert_eq!(workflow.tasks.len(), 100_000);
        assert_eq!(workflow.edges.len(), 99_999);
        let cycle = rejections(&chain(100_000, true));
        assert_eq!(cycle[0].kind, RejectKind::Cycle);
        assert!(
            cycle[0].reason.starts_with("t0 -> t1 -> "),
            "{}",
            cycle[0].reason
        );
        assert!(
            cycle[0].reason.contains("(99985 more)"),
            "{}",
            cycle[0].reason
        );
        assert!(
            cycle[0].reason.ends_with("t99999 -> t0"),
            "{}",
            cycle[0].reason
        );
    }

    fn json_files_under(directory: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(directory) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                json_files_under(&path, found);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "json")
            {
                found.push(path);
            }
        }
    }

    #[test]
    fn every_shared_wfinstance_parses() {
        let Some(directory) = crate::testing::shared_data().map(|d| d.join("wfinstances")) else {
            return;
        };
        let mut files = Vec::new();
        json_files_under(&directory, &mut files);
        files.sort();
        assert!(!files.is_empty(), "no JSON under {}", directory.display());
        for file in &files {
            let read = read_workflow(file);
            assert_eq!(read.rejections, Vec::new(), "{}", file.display());
            let workflow = read.workflow.expect("accepted");
            let tasks = workflow.tasks.len();
            assert!(tasks > 0);
            assert_eq!(read.stats.read, tasks as u64);
            assert!(
                workflow.edges.len() >= tasks - 1 || tasks < 2,
                "{}: too few edges",
                file.display()
            );
            assert!(workflow
                .tasks
                .iter()
                .all(|task| task.runtime_s >= 0.0 && task.cores > 0.0));
            assert!(!workflow.machines.is_empty(), "{}", file.display());
            if workflow.name == "montage-chameleon-2mass-01d-001" {
                assert_eq!(tasks, 103);
                assert_eq!(workflow.edges.len(), 231);
                assert!(workflow.edges.iter().any(|edge| edge.bytes > 0));
            }
        }
        println!("{} WfInstances parsed", files.len());
    }
}
