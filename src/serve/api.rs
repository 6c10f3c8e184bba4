//! The service's routes: which method and path does what, authentication, and the answers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use augur_dataflows::types::fraction_from_ppm;
use serde::Serialize;

use crate::http::{Handler, Head, Request, Response, Screen};
use crate::input::metrics::MetricOptions;
use crate::input::time::json_seconds;
use crate::output::ForecastView;

use super::exposition;
use super::extender::{self, DeviceState};
use super::parse::{
    parse_events, parse_metrics, parse_time_param, parse_workflow_body, valid_name,
};
use super::source::{Accepted, Refusal, ServiceHandle};
use super::state::{anomalous_devices, named_map, Shared, Topic, MAX_STREAMS};

/// How often an idle event stream sends a comment, so proxies and clients see it alive, and
/// so that the stream finds a client gone (a write to a socket its peer closed succeeds once,
/// then fails: a stream is dropped within two of these).
const KEEPALIVE: Duration = Duration::from_secs(5);

/// What the handlers share.
pub struct Api {
    /// The engine's published state.
    pub shared: Arc<Shared>,
    /// Where records go.
    pub handle: ServiceHandle,
    /// Set to stop the service.
    pub stop: Arc<AtomicBool>,
    /// The bearer token every request must carry, when set.
    pub token: Option<String>,
    /// How metric bodies are read (bandwidths for throughput series).
    pub metric_options: MetricOptions,
}

/// The handler the server calls for each request.
pub fn handler(api: Api) -> Handler {
    let api = Arc::new(api);
    Arc::new(move |request: Request| {
        let mut response = route(&api, &request);
        if request.head.method == "HEAD" {
            response = response.without_body();
        }
        *api.shared
            .counters()
            .requests
            .entry(response.status)
            .or_default() += 1;
        response
    })
}

/// Equal-time comparison, so the token cannot be guessed byte by byte from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers a request without the token on its head, before it takes a request slot or its
/// body is read (see [`crate::http::Screen`]).
pub fn screen(token: Option<String>) -> Screen {
    Arc::new(move |head: &Head| (!authorised_head(token.as_deref(), head)).then(unauthorised))
}

fn unauthorised() -> Response {
    Response::error(
        401,
        "a valid 'Authorization: Bearer <token>' header is required",
    )
    .with_header("WWW-Authenticate", "Bearer")
}

fn authorised(api: &Api, request: &Request) -> bool {
    authorised_head(api.token.as_deref(), &request.head)
}

fn authorised_head(token: Option<&str>, head: &Head) -> bool {
    let Some(token) = token else {
        return true;
    };
    head.header("authorization")
        .and_then(|value| value.split_once(' '))
        // The scheme is case-insensitive (RFC 9110, 11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, given)| same_secret(given.trim().as_bytes(), token.as_bytes()))
}

fn route(api: &Api, request: &Request) -> Response {
    if !authorised(api, request) {
        return unauthorised();
    }
    let segments: Vec<&str> = request.head.segments.iter().map(String::as_str).collect();
    let method = request.head.method.as_str();
    let allowed: &str = match segments.as_slice() {
        ["v1", "workflows"]
        | ["v1", "metrics"]
        | ["v1", "events"]
        | ["v1", "flush"]
        | ["v1", "shutdown"]
        | ["filter"]
        | ["prioritize"] => "POST",
        ["v1", "map"]
        | ["v1", "map", _]
        | ["v1", "map", _, _]
        | ["v1", "predictions"]
        | ["v1", "predictions", _]
        | ["v1", "anomalies"]
        | ["v1", "status"]
        | ["v1", "rejections"]
        | ["v1", "changes"]
        | ["v1", "scaleout"]
        | ["v1", "scaleout", "stream"]
        | ["metrics"]
        | ["healthz"] => "GET",
        _ => return Response::error(404, &format!("no such endpoint: {}", request.head.path)),
    };
    // HEAD is answered wherever GET is (RFC 9110, 9.3.2): the GET's head, without its body.
    let head_of_get = method == "HEAD" && allowed == "GET";
    if method != allowed && !head_of_get {
        let allow = if allowed == "GET" {
            "GET, HEAD"
        } else {
            allowed
        };
        return Response::error(
            405,
            &format!("{} takes {allow}, not {method}", request.head.path),
        )
        .with_header("Allow", allow);
    }
    // Where an endpoint reads parameters, one it does not know, or one given twice, is
    // refused: ignored, a typo (`arival=`) silently changed what the request did. Endpoints
    // that read none ignore them (a dashboard's cache-busting `?_=…` is harmless there).
    let takes: &[&str] = match segments.as_slice() {
        ["v1", "workflows"] => &["name", "arrival"],
        _ => &[],
    };
    let query = if takes.is_empty() {
        &[][..]
    } else {
        &request.head.query[..]
    };
    for (index, (key, _)) in query.iter().enumerate() {
        if !takes.contains(&key.as_str()) {
            let path = &request.head.path;
            let known = takes.join(", ");
            return Response::error(400, &format!("{path} takes {known}, not '{key}'"));
        }
        if query[..index].iter().any(|(seen, _)| seen == key) {
            return Response::error(400, &format!("parameter '{key}' is given twice"));
        }
    }
    // An endpoint that reads a body answers 411 to a request without a Content-Length: HTTP
    // reads such a request as bodiless, so whatever the client sent after the head would be
    // dropped and the request acknowledged as empty.
    let reads_body = matches!(
        segments.as_slice(),
        ["v1", "workflows"] | ["v1", "metrics"] | ["v1", "events"] | ["filter"] | ["prioritize"]
    );
    if reads_body && request.head.header("content-length").is_none() {
        return Response::error(
            411,
            &format!(
                "{} reads a body: send it with a Content-Length header",
                request.head.path
            ),
        );
    }
    // A compressed body would be parsed as text and refused line by line for nonsense.
    let encoding = request.head.header("content-encoding");
    if let Some(encoding) = encoding.filter(|e| reads_body && !e.eq_ignore_ascii_case("identity")) {
        return Response::error(
            415,
            &format!("Content-Encoding '{encoding}' is not accepted: send the body uncompressed"),
        );
    }
    match segments.as_slice() {
        ["v1", "workflows"] => post_workflow(api, request),
        ["v1", "metrics"] => post_metrics(api, request),
        ["v1", "events"] => post_events(api, request),
        ["v1", "flush"] => {
            if api.handle.flush() {
                Response::json(200, &status(api))
            } else {
                Response::error(503, "the engine did not finish in time or is stopping")
            }
        }
        ["v1", "shutdown"] => {
            api.stop.store(true, Ordering::SeqCst);
            Response::json(202, &serde_json::json!({ "stopping": true }))
        }
        ["v1", "map"] => {
            let catalog = api.shared.catalog();
            let view = api.shared.view();
            Response::json(200, &named_map(&catalog, &view.map, None))
        }
        ["v1", "map", workflow] => {
            let catalog = api.shared.catalog();
            let Some(id) = catalog.workflow_id(workflow) else {
                return Response::error(404, &format!("no workflow named '{workflow}'"));
            };
            let view = api.shared.view();
            let map = named_map(&catalog, &view.map, Some(id));
            Response::json(200, &map.into_values().next().unwrap_or_default())
        }
        ["v1", "map", workflow, task] => {
            let catalog = api.shared.catalog();
            let Some(key) = catalog.task_key(workflow, task) else {
                let message = match catalog.workflow_id(workflow) {
                    Some(_) => format!("workflow '{workflow}' has no task '{task}'"),
                    None => format!("no workflow named '{workflow}'"),
                };
                return Response::error(404, &message);
            };
            let view = api.shared.view();
            let device = view
                .map
                .get(&key)
                .map(|device| catalog.device_name(*device).to_string());
            Response::json(
                200,
                &serde_json::json!({ "workflow": workflow, "task": task, "device": device }),
            )
        }
        ["v1", "predictions"] => Response::json(200, &predictions(api, None)),
        ["v1", "predictions", device] => {
            if api.shared.catalog().device_id(device).is_none() {
                return Response::error(404, &format!("no device named '{device}'"));
            }
            let mut all = predictions(api, Some(device));
            Response::json(200, &all.remove(*device).unwrap_or_default())
        }
        ["v1", "anomalies"] => anomalies(api),
        ["v1", "status"] => Response::json(200, &status(api)),
        ["v1", "rejections"] => {
            let counters = api.shared.counters();
            let recent: Vec<_> = counters.recent_rejections.iter().cloned().collect();
            Response::json(200, &recent)
        }
        ["v1", "changes"] => stream(api, Topic::Map),
        ["v1", "scaleout"] => scaleout(api),
        ["v1", "scaleout", "stream"] => stream(api, Topic::Scaleout),
        ["metrics"] => {
            let view = api.shared.view();
            let counters = api.shared.counters();
            Response::bytes(
                200,
                exposition::CONTENT_TYPE,
                exposition::render(&counters, &view).into_bytes(),
            )
        }
        ["healthz"] => Response::json(200, &serde_json::json!({ "ok": true })),
        ["filter"] => extender_call(api, request, true),
        ["prioritize"] => extender_call(api, request, false),
        _ => Response::error(404, &format!("no such endpoint: {}", request.head.path)),
    }
}

/// Refuses a body whose declared media type the endpoint does not read.
fn media_type(request: &Request, accepted: &[&str]) -> Option<Response> {
    let declared = request.head.header("content-type")?;
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if accepted.contains(&essence.as_str()) {
        None
    } else {
        Some(Response::error(
            415,
            &format!(
                "Content-Type '{declared}' is not read here; send one of {}",
                accepted.join(", ")
            ),
        ))
    }
}

// curl sends form encoding unless told otherwise; the body is read as what the endpoint takes,
// so a plain `curl --data-binary @file` works.
const JSON_TYPES: [&str; 2] = ["application/json", "application/x-www-form-urlencoded"];
const LINES_TYPES: [&str; 7] = [
    "application/x-www-form-urlencoded",
    "text/csv",
    "text/plain",
    "application/json",
    "application/jsonl",
    "application/x-ndjson",
    "application/octet-stream",
];

fn answer(result: Result<Accepted, Refusal>) -> Response {
    match result {
        Ok(accepted) => Response::json(200, &accepted),
        Err(refusal) => {
            let listed = refusal.rejections.len() as u64;
            let error = if refusal.problems > listed {
                format!(
                    "{} problem(s) found, the first {listed} listed; nothing was applied",
                    refusal.problems
                )
            } else {
                format!("{listed} record(s) refused; nothing was applied")
            };
            Response::json(
                refusal.status,
                &serde_json::json!({
                    "error": error,
                    "rejections": refusal.rejections,
                    "problems": refusal.problems,
                }),
            )
        }
    }
}

fn refused(rejections: Vec<crate::input::Rejection>) -> Response {
    answer(Err(Refusal::listing(422, rejections)))
}

fn post_workflow(api: &Api, request: &Request) -> Response {
    if let Some(refusal) = media_type(request, &JSON_TYPES) {
        return refusal;
    }
    let Some(name) = request.head.query_value("name") else {
        return Response::error(
            400,
            "name the workflow: POST /v1/workflows?name=NAME[&arrival=TIME]",
        );
    };
    if !valid_name(name) {
        return Response::error(
            400,
            "a workflow name is 1 to 200 of A-Z a-z 0-9 . _ - (not starting with a dot)",
        );
    }
    let arrival = match request.head.query_value("arrival") {
        Some(text) => match parse_time_param(text) {
            Ok(time) => Some(time),
            Err(reason) => return Response::error(400, &format!("arrival: {reason}")),
        },
        None => None,
    };
    match parse_workflow_body(&request.body, name) {
        Ok(workflow) => {
            // What was read in a way worth knowing (tasks without a runtime) goes back with
            // the acceptance, as `run` prints it.
            let notes = workflow.notes.clone();
            match api.handle.push_workflow(workflow, arrival) {
                Ok(accepted) if !notes.is_empty() => {
                    let mut body = serde_json::to_value(&accepted).unwrap_or_default();
                    if let Some(object) = body.as_object_mut() {
                        object.insert("notes".to_string(), serde_json::json!(notes));
                    }
                    Response::json(200, &body)
                }
                other => answer(other),
            }
        }
        Err(rejections) => {
            api.shared.counters().reject("workflow", 1, &rejections);
            refused(rejections)
        }
    }
}

fn post_metrics(api: &Api, request: &Request) -> Response {
    if let Some(refusal) = media_type(request, &LINES_TYPES) {
        return refusal;
    }
    let mut options = api.metric_options.clone();
    options.max_line_bytes = api.shared.settings.max_line_bytes;
    // The engine checks the parsed records too, so that a refusal lists every bad one.
    let parsed = parse_metrics(&request.body, &options);
    answer(api.handle.push_samples(parsed.records, parsed.rejections))
}

fn post_events(api: &Api, request: &Request) -> Response {
    if let Some(refusal) = media_type(request, &LINES_TYPES) {
        return refusal;
    }
    let parsed = parse_events(&request.body, api.shared.settings.max_line_bytes);
    answer(api.handle.push_events(parsed.records, parsed.rejections))
}

/// `GET /v1/status`.
#[derive(Serialize)]
struct Status {
    /// The event time of the last applied epoch, seconds (null before the first).
    time: serde_json::Value,
    epochs: u64,
    buffered_records: usize,
    queued_epochs: usize,
    tasks_mapped: usize,
    tasks_live: usize,
    tasks_pending_arrival: usize,
    tasks_placed: u64,
    tasks_moved: u64,
    workflows: usize,
    devices: usize,
    policy: String,
    lateness_s: f64,
    horizon_s: f64,
    accepted: BTreeMap<&'static str, u64>,
    rejected: BTreeMap<&'static str, u64>,
    /// Of the accepted, those refused when applied (impossible event transitions).
    refused_when_applied: BTreeMap<&'static str, u64>,
    stream_subscribers: usize,
    /// The latest checkpoint: what a restart resumes from (null when not checkpointing).
    checkpoint: Option<CheckpointStatus>,
}

/// The latest checkpoint in `GET /v1/status`. After a crash, a producer replays what it sent
/// after that checkpoint: in time order, every record later than `newest`.
#[derive(Serialize)]
struct CheckpointStatus {
    /// The event time of the last epoch it applied, seconds; null before the first.
    time: serde_json::Value,
    epochs: u64,
    /// The newest record time it holds, applied or buffered, seconds.
    newest: serde_json::Value,
}

fn status(api: &Api) -> Status {
    let (workflows, devices) = {
        let catalog = api.shared.catalog();
        (catalog.workflows.len(), catalog.platform.devices.len())
    };
    let view = api.shared.view();
    let (accepted, rejected, refused_when_applied) = {
        let counters = api.shared.counters();
        (
            counters.accepted.clone(),
            counters.rejected.clone(),
            counters.refused_when_applied.clone(),
        )
    };
    let settings = &api.shared.settings;
    Status {
        time: view.reached.map_or(serde_json::Value::Null, json_seconds),
        epochs: view.epochs,
        buffered_records: view.buffered,
        queued_epochs: view.queued_epochs,
        tasks_mapped: view.map.len(),
        tasks_live: view.live_tasks,
        tasks_pending_arrival: view.pending_tasks,
        tasks_placed: view.placed,
        tasks_moved: view.moved,
        workflows,
        devices,
        policy: settings.policy.clone(),
        lateness_s: settings.lateness_ms as f64 / 1000.0,
        horizon_s: settings.horizon_s,
        accepted,
        rejected,
        refused_when_applied,
        stream_subscribers: api.shared.subscriber_count(),
        checkpoint: view.checkpoint.map(|mark| CheckpointStatus {
            // Taken before any epoch was applied, it has no time yet (null, as `time` above).
            time: if mark.epochs == 0 {
                serde_json::Value::Null
            } else {
                json_seconds(mark.time)
            },
            epochs: mark.epochs,
            newest: mark.newest.map_or(serde_json::Value::Null, json_seconds),
        }),
    }
}

fn predictions(api: &Api, only: Option<&str>) -> BTreeMap<String, BTreeMap<String, ForecastView>> {
    let catalog = api.shared.catalog();
    let view = api.shared.view();
    let mut out: BTreeMap<String, BTreeMap<String, ForecastView>> = BTreeMap::new();
    for ((device, resource), forecast) in &view.forecasts {
        let name = catalog.device_name(*device);
        if only.is_some_and(|only| only != name) {
            continue;
        }
        out.entry(name.to_string()).or_default().insert(
            resource.name().to_string(),
            ForecastView {
                latest: fraction_from_ppm(forecast.latest),
                predicted: fraction_from_ppm(forecast.predicted),
                sigma: fraction_from_ppm(forecast.sigma),
                anomaly: fraction_from_ppm(forecast.anomaly),
            },
        );
    }
    out
}

fn anomalies(api: &Api) -> Response {
    let catalog = api.shared.catalog();
    let view = api.shared.view();
    let anomalous = anomalous_devices(&view);
    let series: Vec<serde_json::Value> = view
        .forecasts
        .iter()
        .filter(|((device, _), _)| anomalous.contains(device))
        .filter(|(_, f)| fraction_from_ppm(f.anomaly) >= augur_dataflows::anomaly::THRESHOLD)
        .map(|((device, resource), forecast)| {
            serde_json::json!({
                "device": catalog.device_name(*device),
                "resource": resource.name(),
                "score": fraction_from_ppm(forecast.anomaly),
                "latest": fraction_from_ppm(forecast.latest),
            })
        })
        .collect();
    Response::json(
        200,
        &serde_json::json!({
            "time": view.reached.map_or(serde_json::Value::Null, json_seconds),
            "threshold": augur_dataflows::anomaly::THRESHOLD,
            "anomalies": series,
        }),
    )
}

fn scaleout(api: &Api) -> Response {
    let catalog = api.shared.catalog();
    let view = api.shared.view();
    let settings = &api.shared.settings;
    let pools: Vec<serde_json::Value> = view
        .scaleout
        .advice()
        .into_iter()
        .map(|pool| {
            let reason = pool.reason(settings.horizon_s, settings.capacity_target);
            let mut value = serde_json::to_value(&pool).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("pool".into(), catalog.class_name(pool.class).into());
                object.insert(
                    "warm_up".into(),
                    pool.instances.saturating_sub(pool.current).into(),
                );
                object.insert("reason".into(), reason.into());
            }
            value
        })
        .collect();
    Response::json(
        200,
        &serde_json::json!({
            "time": view.reached.map_or(serde_json::Value::Null, json_seconds),
            "horizon_s": settings.horizon_s,
            "capacity_target": settings.capacity_target,
            "pools": pools,
        }),
    )
}

fn stream(api: &Api, topic: Topic) -> Response {
    let Some(events) = api.shared.subscribe(topic) else {
        return Response::error(
            503,
            &format!("{MAX_STREAMS} event streams are open; retry once one closes"),
        );
    };
    let stop = Arc::clone(&api.stop);
    Response::event_stream(Box::new(move |out| {
        // Held until this writer returns: a stopping service waits for it, and its client's
        // leaving (a failed write) drops it from the subscribers.
        // A first comment, so the client knows the subscription is in place.
        if out
            .write_all(b": subscribed\n\n")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
        loop {
            match events.recv_timeout(KEEPALIVE) {
                Ok(event) => {
                    if out
                        .write_all(event.as_bytes())
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if stop.load(Ordering::SeqCst)
                        || out
                            .write_all(b": keepalive\n\n")
                            .and_then(|()| out.flush())
                            .is_err()
                    {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }))
}

fn extender_call(api: &Api, request: &Request, is_filter: bool) -> Response {
    if let Some(refusal) = media_type(request, &JSON_TYPES) {
        return refusal;
    }
    let (args, names, pod) = match extender::parse_extender_args(&request.body) {
        Ok(parsed) => parsed,
        Err(reason) => return Response::error(400, &reason),
    };
    let catalog = api.shared.catalog();
    let view = api.shared.view();
    let settings = &api.shared.settings;
    let specs = catalog.device_specs();
    let device = |name: &str| {
        let id = catalog.device_id(name)?;
        let load = view.scaleout.load(id);
        Some(DeviceState {
            spec: *specs.get(id as usize)?,
            contention: view.scaleout.contention(id, settings.risk),
            anomaly: view.scaleout.anomaly(id),
            mapped_cores_milli: load.cores_milli,
            mapped_memory: load.memory_bytes,
        })
    };
    if is_filter {
        Response::json(
            200,
            &extender::filter(
                &args,
                &names,
                pod,
                device,
                settings.anomaly,
                settings.horizon_s,
            ),
        )
    } else {
        Response::json(200, &extender::prioritize(&names, pod, device))
    }
}
