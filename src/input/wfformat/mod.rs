//! WfCommons WfFormat workflow instances (schemaVersion 1.4, 1.5 and 1.6).
//!
//! A workflow is all or nothing: placing half a DAG, or a DAG with a dependency missing, would
//! schedule tasks before their inputs exist. So every problem found is reported (one
//! [`Rejection`] each, naming the task), and any problem refuses the whole workflow.
//!
//! 1.4 lists tasks under `workflow.tasks`, each with its own `files` (sizes inline) and parents
//! named by task name. 1.5 split this into `workflow.specification` (the DAG and a file table)
//! and `workflow.execution` (what was measured); 1.6 only adds optional metrics.
//!
//! Synthetic instances reach millions of tasks and gigabytes of JSON, so the file is streamed
//! through typed visitors (`de`) rather than held as a `serde_json::Value` tree, and every
//! task and file name is interned (`intern`): references between tasks and files are 4-byte
//! symbols, looked up in maps keyed by them, and a name becomes a `String` only once, in the
//! finished [`Workflow`].

mod de;
mod intern;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{Map, Value};

use super::rejection::{within_max_duration, InputStats, RejectKind, Rejection, MAX_FILE_BYTES};
use de::{
    Field, FileEntry, Quantity, Root, Shape, Sink, Span, TaskObject, V14File, WorkflowObject,
};
use intern::{Interner, Sym, SymMap};

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
    /// What was read in a way its user should hear of, though nothing was refused (tasks
    /// without a runtime, say).
    pub notes: Vec<String>,
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
    /// Equivalent variants it may run as instead (augur's `alternatives` extension).
    pub alternatives: Vec<WfAlternative>,
    /// The machine its runtime was recorded on (a 1.5 execution record's first `machines`
    /// entry, 1.4's `machine`), if named.
    pub machine: Option<String>,
}

/// An equivalent variant of a task, from augur's WfFormat extension: a task object may carry
/// `"alternatives": [{"name": "gpu", "cores": 1, "runtimeInSeconds": 12.5, "memoryInBytes": …}]`
/// (cores default to 1, memory unknown; the runtime is required, since a variant without one
/// would look free and win every comparison), each doing the same work as the task with other
/// requirements and duration. Names are the variants' identities in `resculpt.jsonl`, so they
/// are distinct within a task.
#[derive(Debug, Clone, PartialEq)]
pub struct WfAlternative {
    /// Its name (default `alternative N`).
    pub name: String,
    /// Cores it needs.
    pub cores: f64,
    /// Memory it needs, if known.
    pub memory_bytes: Option<u64>,
    /// Its estimated runtime at speed 1, seconds.
    pub runtime_s: f64,
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

/// Reads and validates a WfFormat file (see [`parse_workflow`]), streaming it: memory holds
/// the workflow being built, not the file.
pub fn read_workflow(path: &Path) -> WorkflowRead {
    let name = path.display().to_string();
    let file = match crate::input::regular::open_regular(path) {
        Ok(file) => file,
        Err(error) => return refused_file(&name, RejectKind::Io, error.to_string()),
    };
    let bytes = file.metadata().map_or(0, |metadata| metadata.len());
    let mut reader = BufReader::with_capacity(1 << 20, file);
    match reader.fill_buf() {
        // Editors on some systems start UTF-8 files with a byte-order mark; JSON has none.
        Ok(start) if start.starts_with(UTF8_BOM) => reader.consume(UTF8_BOM.len()),
        // JSON is UTF-8 (RFC 8259, 8.1): a UTF-16 file was refused as "expected value at line
        // 1 column 1", which does not say what is wrong.
        Ok(start) if start.starts_with(b"\xFF\xFE") || start.starts_with(b"\xFE\xFF") => {
            return refused_file(
                &name,
                RejectKind::Parse,
                "the file is UTF-16 (it starts with a UTF-16 byte-order mark): JSON must be \
                 UTF-8, save it as such"
                    .into(),
            )
        }
        Ok(_) => {}
        Err(error) => return refused_file(&name, RejectKind::Io, error.to_string()),
    }
    let mut sink = Sink::for_document(bytes);
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let document = de::document(&mut deserializer, &mut sink)
        .and_then(|document| deserializer.end().map(|()| document));
    parse_document(document, sink, &name)
}

/// Validates WfFormat text; `path` names it (its stem becomes the workflow name).
pub fn parse_workflow(text: &str, path: &str) -> WorkflowRead {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sink = Sink::for_document(text.len() as u64);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let document = de::document(&mut deserializer, &mut sink)
        .and_then(|document| deserializer.end().map(|()| document));
    parse_document(document, sink, path)
}

/// A problem with the workflow, before it is attached to the file name.
type Problem = (RejectKind, String);

fn parse_document(
    document: Result<Shape<Root>, serde_json::Error>,
    mut sink: Sink,
    path: &str,
) -> WorkflowRead {
    let document = match document {
        Ok(document) => document,
        Err(error) if error.is_io() => {
            return refused_file(path, RejectKind::Io, error.to_string())
        }
        Err(error) => {
            return refused_file(path, RejectKind::Parse, format!("invalid JSON: {error}"))
        }
    };
    let raw = match extract(document, &mut sink) {
        Ok(raw) => raw,
        Err((kind, reason)) => return refused_file(path, kind, reason),
    };
    let record_count = raw.entries as u64;
    let (workflow, problems) = build(raw, &sink, path);
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
#[derive(Default)]
struct RawWorkflow {
    /// Task entries in the file, including those too malformed to become a `RawTask`.
    entries: usize,
    tasks: Vec<RawTask>,
    /// File to size (`None`: missing or not a number); sizes are checked later so that every
    /// bad one is reported.
    file_sizes: SymMap<Option<f64>>,
    machines: Vec<Machine>,
    /// Problems found while extracting (bad types, unknown execution entries).
    problems: Vec<Problem>,
    /// 1.4 names parents by task name rather than id.
    references_by_name: bool,
}

/// A task whose fields had the right types; its lists are runs of [`Sink::lists`].
struct RawTask {
    id: Sym,
    name: Sym,
    category: Option<Sym>,
    /// `command.program` when it is one word (Pegasus names the transformation there).
    program: Option<Sym>,
    measured: Measured,
    parents: Span,
    children: Span,
    inputs: Span,
    outputs: Span,
    alternatives: Option<serde_json::Value>,
    /// The machine it ran on, if named.
    machine: Option<Sym>,
}

#[derive(Default)]
struct Measured {
    runtime: Option<f64>,
    cores: Option<f64>,
    memory: Option<f64>,
    avg_cpu: Option<f64>,
    read: Option<f64>,
    written: Option<f64>,
}

type Tasks = Vec<Option<TaskObject>>;

fn schema(reason: impl Into<String>) -> Problem {
    (RejectKind::Schema, reason.into())
}

/// Finds the tasks, files and machines in either layout. An `Err` is a problem so basic that
/// there are no tasks to speak of.
fn extract(document: Shape<Root>, sink: &mut Sink) -> Result<RawWorkflow, Problem> {
    let Shape::Expected(root) = document else {
        return Err(schema("the document is not a JSON object"));
    };
    let version = match root.schema_version {
        Some(Value::String(version)) => version,
        Some(other) => return Err(schema(format!("schemaVersion {other} is not a string"))),
        None => return Err(schema("no schemaVersion")),
    };
    let Some(Shape::Expected(workflow)) = root.workflow else {
        return Err(schema("no workflow object"));
    };
    match version.as_str() {
        "1.4" => extract_v14(workflow, sink),
        "1.5" | "1.6" => extract_v15(workflow, sink),
        other => Err(schema(format!(
            "unsupported schemaVersion {other:?} (supported: 1.4, 1.5, 1.6; \
             wfcommons-migrate-instance.py upgrades older instances)"
        ))),
    }
}

fn extract_v15(workflow: WorkflowObject, sink: &mut Sink) -> Result<RawWorkflow, Problem> {
    let Some(Shape::Expected(specification)) = workflow.specification else {
        return Err(schema("no workflow.specification object"));
    };
    let spec_tasks = task_array(specification.tasks, "workflow.specification.tasks")?;
    let mut raw = RawWorkflow {
        entries: spec_tasks.len(),
        tasks: Vec::with_capacity(spec_tasks.len()),
        ..RawWorkflow::default()
    };
    for (position, entry) in spec_tasks.iter().enumerate() {
        match spec_task(entry.as_ref(), position, &sink.interner) {
            Ok(task) => raw.tasks.push(task),
            Err(reason) => raw.problems.push(schema(reason)),
        }
    }
    drop(spec_tasks);
    if let Some(files) = specification.files {
        read_file_table(files, &sink.interner, &mut raw);
    }
    if let Some(Shape::Expected(execution)) = workflow.execution {
        if let Some(entries) = execution.tasks {
            merge_execution(entries, &sink.interner, &mut raw);
        }
        if let Some(machines) = &execution.machines {
            read_machines(machines, "coreCount", "speedInMHz", &mut raw);
        }
    }
    Ok(raw)
}

fn extract_v14(workflow: WorkflowObject, sink: &mut Sink) -> Result<RawWorkflow, Problem> {
    let tasks = task_array(workflow.tasks, "workflow.tasks")?;
    let mut raw = RawWorkflow {
        entries: tasks.len(),
        tasks: Vec::with_capacity(tasks.len()),
        references_by_name: true,
        ..RawWorkflow::default()
    };
    for (position, entry) in tasks.iter().enumerate() {
        match v14_task(entry.as_ref(), position, &mut raw.file_sizes, sink) {
            Ok(task) => raw.tasks.push(task),
            Err(reason) => raw.problems.push(schema(reason)),
        }
    }
    if let Some(machines) = &workflow.machines {
        read_machines(machines, "count", "speed", &mut raw);
    }
    Ok(raw)
}

fn task_array(tasks: Option<Shape<Tasks>>, what: &str) -> Result<Tasks, Problem> {
    match tasks {
        Some(Shape::Expected(tasks)) if !tasks.is_empty() => {
            // Edges and spans number tasks with 32 bits.
            if u32::try_from(tasks.len()).is_err() {
                return Err(schema(format!("{what} holds more than 2^32 - 1 tasks")));
            }
            Ok(tasks)
        }
        Some(Shape::Expected(_)) => Err(schema(format!("{what} is empty"))),
        Some(Shape::Other) => Err(schema(format!("{what} is not an array"))),
        None => Err(schema(format!("no {what}"))),
    }
}

fn spec_task(
    entry: Option<&TaskObject>,
    position: usize,
    interner: &Interner,
) -> Result<RawTask, String> {
    let object = entry.ok_or_else(|| format!("task #{position} is not an object"))?;
    let id = object
        .string(Field::Id, object.id)
        .map_err(|error| format!("task #{position}: {error}"))?
        .ok_or_else(|| format!("task #{position} has no id"))?;
    let id_text = interner.get(id);
    if id_text.trim().is_empty() {
        return Err(format!("task #{position} has an empty id"));
    }
    let context = |error: String| format!("task {id_text}: {error}");
    let name = object.string(Field::Name, object.name).map_err(context)?;
    Ok(RawTask {
        category: object
            .string(Field::Category, object.category)
            .map_err(context)?,
        name: name.unwrap_or(id),
        parents: object
            .list(Field::Parents, object.parents)
            .map_err(context)?,
        children: object
            .list(Field::Children, object.children)
            .map_err(context)?,
        inputs: object
            .list(Field::InputFiles, object.inputs)
            .map_err(context)?,
        outputs: object
            .list(Field::OutputFiles, object.outputs)
            .map_err(context)?,
        id,
        program: None,
        measured: Measured::default(),
        alternatives: object.alternatives.clone(),
        machine: None,
    })
}

fn read_file_table(
    files: Shape<Vec<Option<FileEntry>>>,
    interner: &Interner,
    raw: &mut RawWorkflow,
) {
    let Shape::Expected(files) = files else {
        raw.problems
            .push(schema("workflow.specification.files is not an array"));
        return;
    };
    raw.file_sizes.reserve(files.len());
    for (position, file) in files.iter().enumerate() {
        match file.as_ref().and_then(|file| Some((file.id?, file.size))) {
            Some((id, size)) => {
                if raw.file_sizes.insert(id, size).is_some() {
                    raw.problems.push((
                        RejectKind::DuplicateId,
                        format!("file {} is listed twice", interner.get(id)),
                    ));
                }
            }
            None => raw
                .problems
                .push(schema(format!("file #{position} has no string id"))),
        }
    }
}

/// Attaches each execution record to its specification task (by id).
fn merge_execution(entries: Shape<Tasks>, interner: &Interner, raw: &mut RawWorkflow) {
    let Shape::Expected(entries) = entries else {
        raw.problems
            .push(schema("workflow.execution.tasks is not an array"));
        return;
    };
    // The k-th execution entry of an id goes to the k-th specification task with it, so a
    // duplicated id is reported once, not again here. `waiting` holds the next specification
    // task of each id, `later` the one after each task (`NONE` at the end).
    const NONE: usize = usize::MAX;
    let mut waiting: SymMap<usize> = SymMap::default();
    waiting.reserve(raw.tasks.len());
    let mut later = vec![NONE; raw.tasks.len()];
    for (position, task) in raw.tasks.iter().enumerate().rev() {
        if let (Some(next), Some(slot)) =
            (waiting.insert(task.id, position), later.get_mut(position))
        {
            *slot = next;
        }
    }
    for (position, entry) in entries.iter().enumerate() {
        let Some(object) = entry else {
            raw.problems.push(schema(format!(
                "execution task #{position} is not an object"
            )));
            continue;
        };
        let Ok(Some(id)) = object.string(Field::Id, object.id) else {
            raw.problems.push(schema(format!(
                "execution task #{position} has no string id"
            )));
            continue;
        };
        let id_text = interner.get(id);
        let Some(next) = waiting.get_mut(&id) else {
            raw.problems.push((
                RejectKind::UnknownTask,
                format!("execution task {id_text} is not in workflow.specification.tasks"),
            ));
            continue;
        };
        let task_position = *next;
        if task_position == NONE {
            raw.problems.push((
                RejectKind::DuplicateId,
                format!("execution task {id_text} is listed twice"),
            ));
            continue;
        }
        *next = later.get(task_position).copied().unwrap_or(NONE);
        if let Some(task) = raw.tasks.get_mut(task_position) {
            if let Err(error) = measurements(object, Quantity::CoreCount, task) {
                raw.problems
                    .push(schema(format!("task {id_text}: {error}")));
            }
        }
    }
}

/// Copies the measured quantities of one task (same names in 1.4 and 1.5, but for cores),
/// stopping at the first of the wrong type.
fn measurements(object: &TaskObject, cores: Quantity, task: &mut RawTask) -> Result<(), String> {
    let measured = &mut task.measured;
    measured.runtime = object.number(Quantity::Runtime)?;
    if measured.runtime.is_none() && object.legacy_runtime {
        // Read as 0 s, every task of a 1.3 file relabelled by hand would take no time.
        return Err(
            "it has `runtime`, WfFormat 1.3's key, and no runtimeInSeconds: the file \
                    is written as 1.3 (wfcommons-migrate-instance.py upgrades it)"
                .to_string(),
        );
    }
    task.machine = object.string(Field::Machine, object.machine)?;
    measured.cores = object.number(cores)?;
    measured.memory = object.number(Quantity::Memory)?;
    measured.avg_cpu = object.number(Quantity::AvgCpu)?;
    measured.read = object.number(Quantity::ReadBytes)?;
    measured.written = object.number(Quantity::WrittenBytes)?;
    task.program = object.program;
    Ok(())
}

/// A program name, not a whole script (Nextflow puts the process's script there).
fn is_single_word(text: &str) -> bool {
    !text.is_empty() && text.len() <= 128 && !text.chars().any(char::is_whitespace)
}

fn v14_task(
    entry: Option<&TaskObject>,
    position: usize,
    file_sizes: &mut SymMap<Option<f64>>,
    sink: &mut Sink,
) -> Result<RawTask, String> {
    let object = entry.ok_or_else(|| format!("task #{position} is not an object"))?;
    let at = |error: String| format!("task #{position}: {error}");
    let name = object.string(Field::Name, object.name).map_err(at)?;
    let id = object.string(Field::Id, object.id).map_err(at)?;
    // 1.4 makes only the name required; the id then defaults to it.
    let (id, name) = match (id, name) {
        (Some(id), Some(name)) => (id, name),
        (Some(id), None) => (id, id),
        (None, Some(name)) => (name, name),
        (None, None) => return Err(format!("task #{position} has neither id nor name")),
    };
    let id_text = sink.interner.get(id).to_string();
    let context = |error: String| format!("task {id_text}: {error}");
    let mut task = RawTask {
        id,
        name,
        category: object
            .string(Field::Category, object.category)
            .map_err(context)?,
        parents: object
            .list(Field::Parents, object.parents)
            .map_err(context)?,
        children: object
            .list(Field::Children, object.children)
            .map_err(context)?,
        program: None,
        measured: Measured::default(),
        inputs: Span::default(),
        outputs: Span::default(),
        alternatives: object.alternatives.clone(),
        machine: None,
    };
    measurements(object, Quantity::Cores, &mut task).map_err(context)?;
    if let Some(files) = object.files {
        let files = files.map_err(|()| context("files is not an array".to_string()))?;
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        for index in files.range() {
            let file = sink.v14_files.get(index).and_then(Option::as_ref);
            let (interner, sizes) = (&mut sink.interner, &mut *file_sizes);
            v14_file(file, interner, sizes, &mut inputs, &mut outputs).map_err(context)?;
        }
        task.inputs = sink.push_list(&inputs).map_err(context)?;
        task.outputs = sink.push_list(&outputs).map_err(context)?;
    }
    Ok(task)
}

/// Records one inline 1.4 file entry; a file is keyed by `path` + `name`, as the WfCommons
/// migration to 1.5 keys it.
fn v14_file(
    file: Option<&V14File>,
    interner: &mut Interner,
    file_sizes: &mut SymMap<Option<f64>>,
    inputs: &mut Vec<Sym>,
    outputs: &mut Vec<Sym>,
) -> Result<(), String> {
    let file = file.ok_or_else(|| "a file entry is not an object".to_string())?;
    let name = file
        .name
        .clone()?
        .ok_or_else(|| "a file entry has no name".to_string())?;
    let key = match file.path.clone()? {
        Some(path) => {
            let key = format!("{}{}", interner.get(path), interner.get(name));
            interner
                .intern(&key)
                .ok_or_else(|| "more than 4294967294 distinct strings".to_string())?
        }
        None => name,
    };
    file_sizes.entry(key).or_insert(file.size);
    let link = file.link.clone()?;
    match link.map(|link| interner.get(link)) {
        Some("input") => inputs.push(key),
        Some("output") => outputs.push(key),
        other => {
            return Err(format!(
                "file {} has link {other:?}, expected \"input\" or \"output\"",
                interner.get(key)
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
    let mut index: std::collections::HashMap<String, usize> = raw
        .machines
        .iter()
        .enumerate()
        .map(|(at, m)| (m.name.clone(), at))
        .collect();
    for (position, entry) in machines.iter().enumerate() {
        match machine(entry, cores_key, speed_key) {
            // One machine given twice alike is one device; given twice with other specs, the
            // file contradicts itself (it was merged silently, the first entry winning).
            Ok(machine) => match index.get(&machine.name).map(|&at| &raw.machines[at]) {
                Some(earlier) if *earlier == machine => {}
                Some(_) => raw.problems.push((
                    RejectKind::DuplicateId,
                    format!(
                        "machine #{position}: nodeName '{}' is given twice, with other specs",
                        machine.name
                    ),
                )),
                None => {
                    index.insert(machine.name.clone(), raw.machines.len());
                    raw.machines.push(machine);
                }
            },
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
    // It names a device of the map, as a platform's `id` does, which may not be blank either.
    if name.trim().is_empty() {
        return Err(schema("nodeName is empty".to_string()));
    }
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
fn build(raw: RawWorkflow, sink: &Sink, path: &str) -> (Workflow, Vec<Problem>) {
    let RawWorkflow {
        entries: _,
        tasks: raw_tasks,
        file_sizes,
        machines,
        mut problems,
        references_by_name,
    } = raw;
    let interner = &sink.interner;
    let sizes = checked_file_sizes(&file_sizes, interner, &mut problems);
    drop(file_sizes);
    let resolver = Resolver::new(&raw_tasks, references_by_name, interner, &mut problems);
    let pairs = resolve_edges(&raw_tasks, &resolver, sink, &mut problems);
    drop(resolver);
    let mut files = DistinctFiles::default();
    let mut tasks: Vec<WfTask> = raw_tasks
        .iter()
        .map(|task| checked_task(task, &sizes, sink, &mut files, &mut problems))
        .collect();
    let mut notes = Vec::new();
    let unmeasured = raw_tasks
        .iter()
        .filter(|task| task.measured.runtime.is_none())
        .count();
    if unmeasured > 0 {
        // WfCommons' tools read them as 0 s too; a user replaying the file should know.
        notes.push(format!(
            "{unmeasured} of {} tasks {} no runtimeInSeconds: {} 0 s",
            raw_tasks.len(),
            if unmeasured == 1 { "has" } else { "have" },
            if unmeasured == 1 {
                "it takes"
            } else {
                "each takes"
            }
        ));
    }
    drop(raw_tasks);
    let edges = weigh_edges(&pairs, &files, &sizes);
    drop(pairs);
    // Exact capacities: these lists live as long as the workflow, and growing them by
    // doubling left up to half of 18 million entries unused at a million tasks.
    let mut degrees = vec![(0usize, 0usize); tasks.len()];
    for edge in &edges {
        if let Some((_, children)) = degrees.get_mut(edge.parent) {
            *children += 1;
        }
        if let Some((parents, _)) = degrees.get_mut(edge.child) {
            *parents += 1;
        }
    }
    for (task, &(parents, children)) in tasks.iter_mut().zip(&degrees) {
        task.parents.reserve_exact(parents);
        task.children.reserve_exact(children);
    }
    drop(degrees);
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
        notes,
    };
    (workflow, problems)
}

fn file_stem(path: &str) -> String {
    Path::new(path).file_stem().map_or_else(
        || path.to_string(),
        |stem| stem.to_string_lossy().into_owned(),
    )
}

/// Checks every file size once, so each bad size is reported once however many tasks use it;
/// a bad size maps to `None`. Problems come in file-name order, as they always have.
fn checked_file_sizes(
    file_sizes: &SymMap<Option<f64>>,
    interner: &Interner,
    problems: &mut Vec<Problem>,
) -> SymMap<Option<u64>> {
    let mut sizes = SymMap::default();
    sizes.reserve(file_sizes.len());
    let mut bad = Vec::new();
    for (&id, &size) in file_sizes {
        let what = || format!("file {}", interner.get(id));
        let size = match size {
            Some(size) => checked_amount(&what(), "sizeInBytes", size).and_then(|size| {
                if size > MAX_FILE_BYTES {
                    Err((
                        RejectKind::OutOfRange,
                        format!(
                            "{}: sizeInBytes {} is over {} (a petabyte)",
                            what(),
                            crate::input::short_number(size),
                            crate::input::short_number(MAX_FILE_BYTES)
                        ),
                    ))
                } else {
                    Ok(size)
                }
            }),
            None => Err((
                RejectKind::Schema,
                format!("{}: sizeInBytes is missing or not a number", what()),
            )),
        };
        match size {
            Ok(size) => {
                sizes.insert(id, Some(to_bytes(size)));
            }
            Err(problem) => {
                sizes.insert(id, None);
                bad.push((interner.get(id), problem));
            }
        }
    }
    bad.sort_by(|left, right| left.0.cmp(right.0));
    problems.extend(bad.into_iter().map(|(_, problem)| problem));
    sizes
}

/// In [`Resolver::by_id`]: no task has this id.
const NO_TASK: u32 = u32::MAX;

/// Maps task references to indices: by id, and in 1.4 also by name when the name is unique.
struct Resolver {
    /// Indexed by symbol (`NO_TASK` where no task has that id): every parent and child reference
    /// is resolved here, so a direct index spares a hash lookup per edge end.
    by_id: Vec<u32>,
    /// `None` for a name that several tasks share.
    by_name: SymMap<Option<u32>>,
}

impl Resolver {
    /// Also reports duplicate ids; the first task with an id keeps it, matching what the rest
    /// of the file is checked against.
    fn new(
        tasks: &[RawTask],
        by_name: bool,
        interner: &Interner,
        problems: &mut Vec<Problem>,
    ) -> Resolver {
        let mut by_id = vec![NO_TASK; interner.len()];
        for (index, task) in (0u32..).zip(tasks) {
            if let Some(slot) = by_id
                .get_mut(task.id as usize)
                .filter(|slot| **slot == NO_TASK)
            {
                *slot = index;
                continue;
            }
            problems.push((
                RejectKind::DuplicateId,
                format!("task id {} is used twice", interner.get(task.id)),
            ));
        }
        let mut names: SymMap<Option<u32>> = SymMap::default();
        if by_name {
            for (index, task) in (0u32..).zip(tasks) {
                names
                    .entry(task.name)
                    .and_modify(|slot| *slot = None)
                    .or_insert(Some(index));
            }
        }
        Resolver {
            by_id,
            by_name: names,
        }
    }

    fn resolve(&self, reference: Sym) -> Option<u32> {
        self.by_id
            .get(reference as usize)
            .copied()
            .filter(|&index| index != NO_TASK)
            .or_else(|| self.by_name.get(&reference).copied().flatten())
    }
}

/// The union of both directions of the declared dependencies, deduplicated and sorted.
fn resolve_edges(
    tasks: &[RawTask],
    resolver: &Resolver,
    sink: &Sink,
    problems: &mut Vec<Problem>,
) -> Vec<(u32, u32)> {
    let interner = &sink.interner;
    let stated: usize = tasks
        .iter()
        .map(|task| (task.parents.len + task.children.len) as usize)
        .sum();
    let mut pairs = Vec::with_capacity(stated);
    for (index, task) in (0u32..).zip(tasks) {
        for &parent in sink.list(task.parents) {
            match resolver.resolve(parent) {
                Some(parent) => pairs.push((parent, index)),
                None => problems.push((
                    RejectKind::DanglingParent,
                    format!(
                        "task {} names parent {}, which is not a task",
                        interner.get(task.id),
                        interner.get(parent)
                    ),
                )),
            }
        }
        for &child in sink.list(task.children) {
            match resolver.resolve(child) {
                Some(child) => pairs.push((index, child)),
                None => problems.push((
                    RejectKind::DanglingParent,
                    format!(
                        "task {} names child {}, which is not a task",
                        interner.get(task.id),
                        interner.get(child)
                    ),
                )),
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Each task's distinct input and output files, sorted, back to back: an edge's data is the
/// intersection of its parent's outputs and its child's inputs.
#[derive(Default)]
struct DistinctFiles {
    files: Vec<Sym>,
    /// Per task, its inputs then its outputs.
    spans: Vec<(Span, Span)>,
}

impl DistinctFiles {
    fn get(&self, span: Span) -> &[Sym] {
        self.files.get(span.range()).unwrap_or_default()
    }

    fn inputs(&self, task: u32) -> &[Sym] {
        self.spans
            .get(task as usize)
            .map_or(&[][..], |&(inputs, _)| self.get(inputs))
    }

    fn outputs(&self, task: u32) -> &[Sym] {
        self.spans
            .get(task as usize)
            .map_or(&[][..], |&(_, outputs)| self.get(outputs))
    }

    /// Appends `files` sorted and deduplicated, returning where they went.
    fn push(&mut self, files: &[Sym]) -> Span {
        let start = self.files.len();
        self.files.extend_from_slice(files);
        let added = self.files.get_mut(start..).unwrap_or_default();
        added.sort_unstable();
        let mut kept = 0;
        for index in 0..added.len() {
            let file = added.get(index).copied();
            if kept == 0 || added.get(kept - 1).copied() != file {
                if let (Some(file), Some(slot)) = (file, added.get_mut(kept)) {
                    *slot = file;
                }
                kept += 1;
            }
        }
        self.files.truncate(start + kept);
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(kept).unwrap_or(0),
        }
    }
}

fn checked_task(
    task: &RawTask,
    sizes: &SymMap<Option<u64>>,
    sink: &Sink,
    files: &mut DistinctFiles,
    problems: &mut Vec<Problem>,
) -> WfTask {
    let interner = &sink.interner;
    let id = interner.get(task.id);
    let what = format!("task {id}");
    let mut check = |field: &str, value: Option<f64>| -> Option<f64> {
        let value = value?;
        checked_amount(&what, field, value)
            .map_err(|problem| problems.push(problem))
            .ok()
    };
    let measured = &task.measured;
    let runtime = check("runtimeInSeconds", measured.runtime);
    let cores = check("cores", measured.cores).unwrap_or(1.0);
    let memory_bytes = check("memoryInBytes", measured.memory).map(to_bytes);
    let avg_cpu_pct = check("avgCPU", measured.avg_cpu);
    let read_bytes = check("readBytes", measured.read).map(to_bytes);
    let written_bytes = check("writtenBytes", measured.written).map(to_bytes);
    let runtime_s =
        match runtime.map(|r| within_max_duration(format_args!("{what}: runtimeInSeconds"), r)) {
            Some(Ok(runtime)) => runtime,
            Some(Err(problem)) => {
                problems.push(problem);
                0.0
            }
            None => 0.0,
        };
    if cores == 0.0 {
        problems.push((
            RejectKind::Schema,
            format!("{what}: cores must be greater than zero"),
        ));
    }
    let inputs = files.push(sink.list(task.inputs));
    let outputs = files.push(sink.list(task.outputs));
    files.spans.push((inputs, outputs));
    let input_bytes = total_size(task, "input", sink, files.get(inputs), sizes, problems);
    let output_bytes = total_size(task, "output", sink, files.get(outputs), sizes, problems);
    let name = interner.get(task.name);
    let alternatives = checked_alternatives(&what, task.alternatives.as_ref(), problems);
    WfTask {
        id: id.to_string(),
        name: name.to_string(),
        // The kind of task: its declared category, else the program it runs (Pegasus names
        // tasks per input, e.g. `fast2bfq_fast2bfq_HEP2_..._ID0000002`, but the program is
        // `fast2bfq`), else the name without a Pegasus-style `_ID` suffix.
        category: task
            .category
            .or(task.program)
            .map(|category| interner.get(category).to_string())
            .or_else(|| derived_category(name)),
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
        alternatives,
        machine: task
            .machine
            .map(|machine| interner.get(machine).to_string()),
    }
}

/// The `alternatives` extension of a task, checked like its own numbers; a malformed one is a
/// problem of the workflow, as any other bad field.
fn checked_alternatives(
    what: &str,
    value: Option<&serde_json::Value>,
    problems: &mut Vec<Problem>,
) -> Vec<WfAlternative> {
    let Some(value) = value else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        problems.push((
            RejectKind::Schema,
            format!("{what}: alternatives must be an array of objects"),
        ));
        return Vec::new();
    };
    let mut alternatives = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Some(object) = item.as_object() else {
            problems.push((
                RejectKind::Schema,
                format!("{what}: alternatives[{index}] is not an object"),
            ));
            continue;
        };
        let label = format!("{what} alternatives[{index}]");
        let mut number = |field: &str| -> Result<Option<f64>, ()> {
            match object.get(field) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Number(n)) => match n.as_f64() {
                    Some(v) => checked_amount(&label, field, v)
                        .map(Some)
                        .map_err(|problem| problems.push(problem)),
                    None => Err(()),
                },
                Some(other) => {
                    problems.push((
                        RejectKind::Schema,
                        format!("{label}: {field} must be a number, not {other}"),
                    ));
                    Err(())
                }
            }
        };
        let (Ok(cores), Ok(runtime), Ok(memory)) = (
            number("cores"),
            number("runtimeInSeconds"),
            number("memoryInBytes"),
        ) else {
            continue;
        };
        let Some(runtime_s) = runtime else {
            problems.push((
                RejectKind::Schema,
                format!("{label}: runtimeInSeconds is required (the variant's estimated duration)"),
            ));
            continue;
        };
        let cores = cores.unwrap_or(1.0);
        if cores == 0.0 {
            problems.push((
                RejectKind::Schema,
                format!("{label}: cores must be greater than zero"),
            ));
            continue;
        }
        let name = match object.get("name") {
            Some(serde_json::Value::String(name)) if !name.trim().is_empty() => {
                name.trim().to_string()
            }
            _ => format!("alternative {}", index + 1),
        };
        if alternatives.iter().any(|a: &WfAlternative| a.name == name) {
            problems.push((
                RejectKind::Schema,
                format!("{label}: the name {name:?} is already another alternative's"),
            ));
            continue;
        }
        alternatives.push(WfAlternative {
            name,
            cores,
            memory_bytes: memory.map(to_bytes),
            runtime_s,
        });
    }
    alternatives
}

/// Sums the sizes of a task's distinct files; a file missing from the table is a problem,
/// since the transfer it implies could not be costed. Problems name the files in the order
/// the task lists them.
fn total_size(
    task: &RawTask,
    role: &str,
    sink: &Sink,
    distinct: &[Sym],
    sizes: &SymMap<Option<u64>>,
    problems: &mut Vec<Problem>,
) -> u64 {
    let mut total: u64 = 0;
    let mut missing = false;
    for file in distinct {
        match sizes.get(file) {
            Some(Some(size)) => total = total.saturating_add(*size),
            // Its bad size has been reported already.
            Some(None) => {}
            None => missing = true,
        }
    }
    if missing {
        let listed = match role {
            "input" => task.inputs,
            _ => task.outputs,
        };
        let mut seen = HashSet::new();
        for &file in sink.list(listed) {
            if seen.insert(file) && !sizes.contains_key(&file) {
                problems.push((
                    RejectKind::Schema,
                    format!(
                        "task {}: {role} file {} is not in the file list",
                        sink.interner.get(task.id),
                        sink.interner.get(file)
                    ),
                ));
            }
        }
    }
    total
}

/// The data along each edge: the files both in its parent's outputs and its child's inputs,
/// found by binary search of the longer sorted list for each file of the shorter (a Montage
/// mConcatFit reads thousands of files, each written by one parent).
fn weigh_edges(
    pairs: &[(u32, u32)],
    files: &DistinctFiles,
    sizes: &SymMap<Option<u64>>,
) -> Vec<WfEdge> {
    pairs
        .iter()
        .map(|&(parent, child)| {
            let written = files.outputs(parent);
            let read = files.inputs(child);
            let (small, large) = if written.len() <= read.len() {
                (written, read)
            } else {
                (read, written)
            };
            let bytes = small
                .iter()
                .filter(|file| large.binary_search(file).is_ok())
                .filter_map(|file| sizes.get(file).copied().flatten())
                .fold(0u64, u64::saturating_add);
            WfEdge {
                parent: parent as usize,
                child: child as usize,
                bytes,
            }
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;
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
    fn alternatives_need_a_runtime_and_distinct_names() {
        let with = |alternatives: serde_json::Value| {
            json!({
                "schemaVersion": "1.5",
                "workflow": {"specification": {"tasks": [
                    {"name": "a", "id": "a", "parents": [], "children": [],
                     "alternatives": alternatives}
                ]}}
            })
            .to_string()
        };
        let workflow = accepted(&with(json!([
            {"name": "gpu", "cores": 1, "runtimeInSeconds": 2.5},
            {"cores": 2, "runtimeInSeconds": 4}
        ])));
        let names: Vec<&str> = workflow.tasks[0]
            .alternatives
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, ["gpu", "alternative 2"]);
        assert_eq!(workflow.tasks[0].alternatives[0].runtime_s, 2.5);
        let missing = rejections(&with(json!([{"name": "gpu", "cores": 1}])));
        assert!(
            missing[0].reason.contains("runtimeInSeconds is required"),
            "{missing:?}"
        );
        let twice = rejections(&with(json!([
            {"name": "gpu", "runtimeInSeconds": 1},
            {"name": "gpu", "runtimeInSeconds": 2}
        ])));
        assert!(twice[0].reason.contains("already another"), "{twice:?}");
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
        // 1.4 names the machine a task ran on in `machine`.
        assert_eq!(workflow.tasks[0].machine.as_deref(), Some("m1"));
        assert_eq!(workflow.tasks[1].machine, None);
        // mAdd has no runtime: read as 0 s, and said.
        assert_eq!(workflow.tasks[1].runtime_s, 0.0);
        assert_eq!(
            workflow.notes,
            vec!["1 of 2 tasks has no runtimeInSeconds: it takes 0 s".to_string()]
        );
    }

    #[test]
    fn execution_records_name_the_machine_each_task_ran_on() {
        let text = json!({
            "name": "m", "schemaVersion": "1.5",
            "workflow": {
                "specification": {"tasks": [
                    {"name": "a", "id": "a", "parents": [], "children": ["b"]},
                    {"name": "b", "id": "b", "parents": ["a"], "children": []},
                    {"name": "c", "id": "c", "parents": [], "children": []}
                ], "files": []},
                "execution": {"makespanInSeconds": 1, "executedAt": "now",
                    "tasks": [
                        {"id": "a", "runtimeInSeconds": 2, "machines": ["fast", "slow"]},
                        {"id": "b", "runtimeInSeconds": 3, "machines": []},
                        {"id": "c", "runtimeInSeconds": 4}
                    ],
                    "machines": [{"nodeName": "fast", "cpu": {"coreCount": 4, "speedInMHz": 2400}},
                                 {"nodeName": "slow", "cpu": {"coreCount": 4, "speedInMHz": 1200}}]}
            }
        })
        .to_string();
        let workflow = accepted(&text);
        let machines: Vec<Option<&str>> = (workflow.tasks.iter())
            .map(|task| task.machine.as_deref())
            .collect();
        assert_eq!(machines, vec![Some("fast"), None, None]);
        assert_eq!(workflow.notes, Vec::<String>::new());
        // A null is no machine, and leaves the lists read before it alone (it read as the
        // first name ever listed, and cut every list read so far: a's child b was lost).
        let null = text.replace(r#""machines":["fast","slow"]"#, r#""machines":null"#);
        assert_ne!(null, text);
        let workflow = accepted(&null);
        assert_eq!(workflow.tasks[0].machine, None);
        assert_eq!(workflow.tasks[0].children, vec![1]);
        assert_eq!(workflow.tasks[1].parents, vec![0]);
        // Not a list of names: refused, as any field of the wrong type.
        for bad in [json!("fast"), json!([1]), json!({"name": "fast"})] {
            let text = text.replace(r#"["fast","slow"]"#, &bad.to_string());
            let reasons: Vec<String> = rejections(&text).into_iter().map(|r| r.reason).collect();
            assert!(
                reasons
                    .iter()
                    .any(|reason| reason.contains("task a: machines")),
                "{bad}: {reasons:?}"
            );
        }
    }

    #[test]
    fn a_runtime_under_the_1_3_key_is_refused_not_read_as_0() {
        let text = v15(&[("a", &[], &[], &[], &[], 1.0)], &[]);
        let legacy = text.replace("runtimeInSeconds", "runtime");
        assert_ne!(legacy, text);
        let reasons: Vec<String> = rejections(&legacy).into_iter().map(|r| r.reason).collect();
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].contains("task a") && reasons[0].contains("WfFormat 1.3"),
            "{reasons:?}"
        );
        // Beside runtimeInSeconds it is an unknown key like any other.
        let both = text.replace(
            r#""runtimeInSeconds":1.0"#,
            r#""runtime":9,"runtimeInSeconds":1.0"#,
        );
        assert_ne!(both, text);
        assert_eq!(accepted(&both).tasks[0].runtime_s, 1.0);
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
        // The strings of a list are interned together when it ends; an entry that is not a
        // string is still reported, quoted as written.
        let bad_entry = json!({"schemaVersion": "1.5", "workflow": {"specification": {"tasks": [
            {"id": "b", "name": "b", "parents": [], "children": []},
            {"id": "a", "name": "a", "parents": ["b", 5, {"x": true}], "children": []}]}}});
        let bad_entry = rejections(&bad_entry.to_string());
        assert_eq!(bad_entry.len(), 1, "{bad_entry:?}");
        assert_eq!(bad_entry[0].kind, RejectKind::Schema);
        assert!(
            bad_entry[0]
                .reason
                .contains("parents holds 5, which is not a string"),
            "{}",
            bad_entry[0].reason
        );
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

    /// A key given twice in one object is refused, not read as its last copy (serde_json's
    /// way), at any level; unknown keys may repeat.
    #[test]
    fn a_key_given_twice_in_one_object_is_refused() {
        let task = r#"{"id": "a", "name": "a", "parents": [], "children": [], "runtimeInSeconds": 1, "runtimeInSeconds": 9}"#;
        let text = format!(
            r#"{{"schemaVersion": "1.4", "workflow": {{"tasks": [{task}], "makespanInSeconds": 1}}}}"#
        );
        let refused = rejections(&text);
        assert!(
            refused[0]
                .reason
                .contains("\"runtimeInSeconds\" is given twice"),
            "{refused:?}"
        );
        let root = r#"{"schemaVersion": "1.5", "schemaVersion": "1.5", "workflow": {"specification": {"tasks": []}}}"#;
        assert!(rejections(root)[0].reason.contains("given twice"));
        let unknown = json!({"schemaVersion": "1.5", "workflow": {
            "specification": {"tasks": [{"id": "a", "name": "a", "parents": [], "children": []}]},
            "execution": {"tasks": [{"id": "a", "runtimeInSeconds": 1}]}}})
        .to_string()
        .replacen("{", r#"{"note": 1, "note": 2, "#, 1);
        assert!(parse_workflow(&unknown, "wf.json").workflow.is_some());
    }

    /// A blank machine name would become a device named "" in the map.
    #[test]
    fn a_machine_without_a_name_is_refused() {
        for blank in ["", "  "] {
            let text = json!({"schemaVersion": "1.5", "workflow": {
                "specification": {"tasks": [{"id": "a", "name": "a", "parents": [], "children": []}]},
                "execution": {
                    "machines": [{"nodeName": blank, "cpu": {"coreCount": 8}}],
                    "tasks": [{"id": "a", "runtimeInSeconds": 1}]}}})
            .to_string();
            let refused = rejections(&text);
            assert_eq!(refused[0].kind, RejectKind::Schema, "{refused:?}");
            assert!(
                refused[0].reason.contains("nodeName is empty"),
                "{}",
                refused[0].reason
            );
        }
    }

    #[test]
    fn a_machine_given_twice_with_other_specs_is_refused() {
        let with = |second: serde_json::Value| {
            json!({"schemaVersion": "1.5", "workflow": {
                "specification": {"tasks": [{"id": "a", "name": "a", "parents": [], "children": []}]},
                "execution": {
                    "machines": [{"nodeName": "z", "cpu": {"coreCount": 4, "speedInMHz": 100}}, second],
                    "tasks": [{"id": "a", "runtimeInSeconds": 1}]}}})
            .to_string()
        };
        let same = parse_workflow(
            &with(json!({"nodeName": "z", "cpu": {"coreCount": 4, "speedInMHz": 100}})),
            "wf.json",
        );
        assert_eq!(same.workflow.expect("kept").machines.len(), 1);
        let other = rejections(&with(
            json!({"nodeName": "z", "cpu": {"coreCount": 8, "speedInMHz": 200}}),
        ));
        assert_eq!(other[0].kind, RejectKind::DuplicateId);
        assert!(
            other[0].reason.contains("'z' is given twice"),
            "{}",
            other[0].reason
        );
    }

    #[test]
    fn a_file_over_a_petabyte_is_out_of_range() {
        for size in [1e30, 2e19, 1.5e15] {
            let text = json!({"schemaVersion": "1.5", "workflow": {
                "specification": {
                    "tasks": [{"id": "a", "name": "a", "parents": [], "children": [],
                               "inputFiles": [], "outputFiles": ["f"]}],
                    "files": [{"id": "f", "sizeInBytes": size}]},
                "execution": {"tasks": [{"id": "a", "runtimeInSeconds": 1}]}}});
            let found = rejections(&text.to_string());
            assert_eq!(found.len(), 1, "{size}: {found:?}");
            assert_eq!(found[0].kind, RejectKind::OutOfRange);
            assert!(found[0].reason.contains("over 1e15"), "{}", found[0].reason);
        }
    }

    #[test]
    fn a_runtime_over_thirty_years_is_out_of_range() {
        let runtime = rejections(&v15(&[("a", &[], &[], &[], &[], 1e12)], &[]));
        assert_eq!(runtime.len(), 1);
        assert_eq!(runtime[0].kind, RejectKind::OutOfRange);
        assert!(
            runtime[0].reason.contains("runtimeInSeconds 1e12"),
            "{}",
            runtime[0].reason
        );
        assert_eq!(
            accepted(&v15(&[("a", &[], &[], &[], &[], 9e8)], &[])).tasks[0].runtime_s,
            9e8
        );
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

    /// The 1.4 form of a 1.5 document: measurements and files inline, machines under
    /// `workflow`, as `wfcommons` wrote them before the split.
    fn as_v14(document: &Value) -> Value {
        let workflow = &document["workflow"];
        let sizes: HashMap<&str, &Value> = workflow["specification"]["files"]
            .as_array()
            .map(|files| {
                files
                    .iter()
                    .filter_map(|file| Some((file["id"].as_str()?, &file["sizeInBytes"])))
                    .collect()
            })
            .unwrap_or_default();
        let executed: HashMap<&str, &Value> = workflow["execution"]["tasks"]
            .as_array()
            .map(|tasks| {
                tasks
                    .iter()
                    .filter_map(|task| Some((task["id"].as_str()?, task)))
                    .collect()
            })
            .unwrap_or_default();
        let empty = Vec::new();
        let tasks: Vec<Value> = workflow["specification"]["tasks"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|task| {
                let mut files = Vec::new();
                for (key, link) in [("inputFiles", "input"), ("outputFiles", "output")] {
                    for file in task[key].as_array().unwrap_or(&empty) {
                        let name = file.as_str().unwrap_or_default();
                        let size = sizes.get(name).copied().cloned().unwrap_or(Value::Null);
                        files.push(json!({"link": link, "name": name, "sizeInBytes": size}));
                    }
                }
                let mut v14 = json!({"name": task["name"], "id": task["id"],
                    "category": task["category"], "parents": task["parents"],
                    "children": task["children"], "files": files});
                if let (Some(object), Some(measured)) = (
                    v14.as_object_mut(),
                    task["id"].as_str().and_then(|id| executed.get(id)),
                ) {
                    for key in [
                        "runtimeInSeconds",
                        "memoryInBytes",
                        "avgCPU",
                        "readBytes",
                        "writtenBytes",
                        "command",
                    ] {
                        if let Some(value) = measured.get(key) {
                            object.insert(key.to_string(), value.clone());
                        }
                    }
                    if let Some(cores) = measured.get("coreCount") {
                        object.insert("cores".to_string(), cores.clone());
                    }
                    if let Some(machine) = measured.get("machines").and_then(|m| m.get(0)) {
                        object.insert("machine".to_string(), machine.clone());
                    }
                }
                v14
            })
            .collect();
        let machines: Vec<Value> = workflow["execution"]["machines"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|machine| {
                json!({"nodeName": machine["nodeName"], "memoryInBytes": machine["memoryInBytes"],
                       "cpu": {"count": machine["cpu"]["coreCount"],
                               "speed": machine["cpu"]["speedInMHz"]}})
            })
            .collect();
        json!({"schemaVersion": "1.4", "workflow": {"tasks": tasks, "machines": machines}})
    }

    /// The same workflow in its 1.4 and 1.6 forms, or after a byte-order mark, reads the same.
    #[test]
    fn every_shared_wfinstance_reads_the_same_in_every_form() {
        let Some(directory) = crate::testing::shared_data().map(|d| d.join("wfinstances")) else {
            return;
        };
        let mut files = Vec::new();
        json_files_under(&directory, &mut files);
        assert!(!files.is_empty());
        for file in &files {
            let read = read_workflow(file);
            assert!(read.workflow.is_some(), "{}", file.display());
            let text = std::fs::read_to_string(file).expect("readable");
            let name = file.display().to_string();
            let document: Value = serde_json::from_str(&text).expect("JSON");
            let mut v16 = document.clone();
            v16["schemaVersion"] = json!("1.6");
            let v14 = as_v14(&document);
            for (form, variant) in [
                ("1.6", v16.to_string()),
                ("1.4", v14.to_string()),
                ("BOM", format!("\u{feff}{text}")),
            ] {
                assert_eq!(parse_workflow(&variant, &name), read, "{name} as {form}");
            }
        }
    }

    /// Every JSON pointer into `value`.
    fn pointers(value: &Value, at: String, found: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, child) in object {
                    pointers(child, format!("{at}/{key}"), found);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    pointers(child, format!("{at}/{index}"), found);
                }
            }
            _ => {}
        }
        found.push(at);
    }

    /// What a mutated node becomes.
    const NODES: &[&str] = &[
        "null",
        "true",
        "0",
        "-1",
        "2.5",
        "1e300",
        "\"x\"",
        "\"a\"",
        "\"b\"",
        "\"in\"",
        "\"z\"",
        "\"\"",
        "\" \"",
        "[]",
        "{}",
        "[\"a\"]",
        "[\"ghost\"]",
        "[\"c\"]",
        "[1]",
        "{\"a\": 1}",
        "\"1.4\"",
        "\"1.5\"",
        "\"input\"",
        "\"output\"",
        "{\"program\": \"p\"}",
        "{\"name\": \"f\", \"link\": \"input\"}",
    ];

    #[test]
    fn mutated_documents_are_accepted_whole_or_refused_whole() {
        const TOKENS: &[&str] = &[
            "\"",
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "null",
            "true",
            "0",
            "-1",
            "1e400",
            "2.5",
            "\"x\"",
            "[]",
            "{}",
            "[1]",
            "{\"a\":1}",
            "\"\\u00e9\"",
            "\"\\ud800\"",
            " ",
            "\"id\"",
            "\"name\"",
            "\"parents\"",
            "\"files\"",
            "\"sizeInBytes\"",
            "\"link\"",
            "\"input\"",
            "\"tasks\"",
            "\"1.4\"",
            "\"1.5\"",
            "\"command\"",
            "\"program\"",
        ];
        let v15_sample = v15(
            &[
                ("a", &[], &["b"], &["in"], &["x", "y"], 1.5),
                ("b", &["a"], &[], &["x"], &["z"], 2.0),
                ("c", &["a", "b"], &[], &["x", "y", "z"], &[], 0.0),
            ],
            &[("in", 1), ("x", 10), ("y", 100), ("z", 1000)],
        );
        let document: Value = serde_json::from_str(&v15_sample).expect("JSON");
        let mut with_commands = document.clone();
        with_commands["workflow"]["execution"]["tasks"][0]["command"] =
            json!({"program": " tool ", "arguments": ["-v"]});
        let samples = [
            v15_sample,
            as_v14(&document).to_string(),
            with_commands.to_string(),
        ];
        let mut outcomes: HashMap<Option<RejectKind>, usize> = HashMap::new();
        for (index, sample) in samples.iter().enumerate() {
            assert!(accepted(sample).tasks.len() == 3);
            for seed in 0..3000u64 {
                let mut state = (seed * 3 + index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                let mut next = move || {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state
                };
                let text = if seed % 2 == 0 {
                    let mut text: Vec<char> = sample.chars().collect();
                    for _ in 0..(1 + next() % 3) {
                        let at = (next() % (text.len() as u64 + 1)) as usize;
                        let token = TOKENS[(next() % TOKENS.len() as u64) as usize];
                        let end = (at + (next() % 3) as usize).min(text.len());
                        text.splice(at..end, token.chars());
                    }
                    text.into_iter().collect()
                } else {
                    // Valid JSON with a node replaced or removed, to reach the checks past the
                    // syntax.
                    let mut document: Value = serde_json::from_str(sample).expect("JSON");
                    for _ in 0..(1 + next() % 2) {
                        let mut paths = Vec::new();
                        pointers(&document, String::new(), &mut paths);
                        let path = &paths[(next() % paths.len() as u64) as usize];
                        let replacement: Value =
                            serde_json::from_str(NODES[(next() % NODES.len() as u64) as usize])
                                .expect("JSON");
                        let (parent, key) = path.rsplit_once('/').unwrap_or(("", ""));
                        if next() % 4 == 0 {
                            if let Some(Value::Object(object)) = document.pointer_mut(parent) {
                                object.remove(key);
                                continue;
                            }
                        }
                        if let Some(node) = document.pointer_mut(path) {
                            *node = replacement;
                        }
                    }
                    document.to_string()
                };
                let read = parse_workflow(&text, "m.json");
                assert_eq!(
                    read.workflow.is_some(),
                    read.rejections.is_empty(),
                    "{text}"
                );
                assert_eq!(read.stats.read, read.stats.accepted + read.stats.rejected);
                *outcomes
                    .entry(read.rejections.first().map(|rejection| rejection.kind))
                    .or_insert(0) += 1;
            }
        }
        // The mutations reach past the JSON syntax into every kind of check.
        println!("{outcomes:?}");
        for kind in [
            None,
            Some(RejectKind::Parse),
            Some(RejectKind::Schema),
            Some(RejectKind::DanglingParent),
            Some(RejectKind::Negative),
            Some(RejectKind::DuplicateId),
            Some(RejectKind::Cycle),
        ] {
            assert!(
                outcomes.get(&kind).is_some_and(|&count| count >= 5),
                "{kind:?}: {outcomes:?}"
            );
        }
    }

    #[test]
    fn files_that_are_not_clean_json() {
        let directory = crate::testing::Scratch::new("wfformat");
        let good = v15(&[("a", &[], &[], &["f"], &[], 1.0)], &[("f", 3)]);
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("bom", [UTF8_BOM, good.as_bytes()].concat()),
            ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
            ("trailing", format!("{good} x").into_bytes()),
            ("empty", Vec::new()),
            (
                "bad-utf8-ignored-field",
                good.replacen("\"test\"", "\"t\u{e9}st\"", 1).into_bytes(),
            ),
        ];
        if let Some((_, bytes)) = cases.last_mut() {
            // Latin-1 é inside the ignored `name` field: still not JSON.
            let at = bytes.iter().position(|&byte| byte == 0xc3).expect("é");
            bytes.splice(at..at + 2, [0xe9]);
        }
        for (name, bytes) in &cases {
            let path = directory.join(format!("{name}.json"));
            std::fs::write(&path, bytes).expect("write");
            let read = read_workflow(&path);
            if *name == "bom" {
                assert_eq!(read, parse_workflow(&good, &path.display().to_string()));
            } else {
                let kinds: Vec<RejectKind> = read.rejections.iter().map(|r| r.kind).collect();
                assert_eq!(kinds, vec![RejectKind::Parse], "{name}");
                assert!(
                    read.rejections[0].reason.starts_with("invalid JSON: "),
                    "{name}"
                );
            }
        }
        // UTF-16 (as some Windows editors save) is named as such.
        let utf16 = directory.join("utf16.json");
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(good.encode_utf16().flat_map(u16::to_le_bytes));
        std::fs::write(&utf16, bytes).expect("write");
        let read = read_workflow(&utf16);
        assert!(read.rejections[0].reason.contains("UTF-16"), "{read:?}");
        let read = read_workflow(&directory);
        let kinds: Vec<RejectKind> = read.rejections.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, vec![RejectKind::Io]);
        let _ = std::fs::remove_dir_all(&directory);
    }
}
