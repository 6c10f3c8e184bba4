//! The reader as it was before typed deserialization (a `serde_json::Value` tree), kept only
//! to check that the new reader returns the same `WorkflowRead` for every input.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use serde_json::{Map, Value};

use super::{Machine, WfEdge, WfTask, Workflow, WorkflowRead};
use crate::input::rejection::{InputStats, RejectKind, Rejection};

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
