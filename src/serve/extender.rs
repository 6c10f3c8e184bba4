//! The Kubernetes scheduler extender protocol (`k8s.io/kube-scheduler/extender/v1`): kube-scheduler
//! POSTs `ExtenderArgs` to `/filter` and `/prioritize`; augur answers an `ExtenderFilterResult`
//! and a `HostPriorityList` from predicted contention, with nodes as devices (by name).
//!
//! - Filter drops a node that is not an augur device, that is anomalous while the anomaly mode
//!   is `exclude`, that is smaller than the pod, or whose predicted utilisation over the forecast
//!   horizon, with the pod added, would exceed its capacity; each with its reason.
//! - Prioritize scores every node 0 to 10 (`MaxExtenderPriority`): `10 × (1 − u)` rounded, where
//!   `u` is that predicted utilisation with the pod (clamped to [0, 1]); an unknown node scores 0.
//!
//! The pod's demand is the sum of its containers' `resources.requests` (cpu, memory).
//! Go's decoder matches keys case-insensitively, so the request's own keys may be spelled in
//! any case (`Pod`, `POD`, `NodeNames`; one given twice that way is refused), and `Items` is
//! read as `items`; answers use the v1 JSON tags.

use std::collections::BTreeMap;

use augur_dataflows::contention_forecast::AnomalyPolicy;
use augur_dataflows::finish_time::cost;
use augur_dataflows::types::DeviceSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most a prioritize score can be (kube-scheduler's `MaxExtenderPriority`).
pub const MAX_EXTENDER_PRIORITY: i64 = 10;

/// `ExtenderArgs`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExtenderArgs {
    /// The pod being scheduled.
    #[serde(default)]
    pub pod: Option<Value>,
    /// Candidate nodes (when the extender is not node-cache capable).
    #[serde(default)]
    pub nodes: Option<NodeList>,
    /// Candidate node names (when it is).
    #[serde(default)]
    pub nodenames: Option<Vec<String>>,
}

/// A `NodeList`: the nodes are passed back as given.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct NodeList {
    /// The nodes.
    #[serde(default, alias = "Items")]
    pub items: Vec<Value>,
}

/// `ExtenderFilterResult`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FilterResult {
    /// The nodes that pass, when the request gave nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Value>,
    /// The names that pass, when the request gave names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodenames: Option<Vec<String>>,
    /// Node → why it was dropped.
    #[serde(rename = "failedNodes")]
    pub failed_nodes: BTreeMap<String, String>,
    /// Empty: augur never fails a filter it could parse.
    pub error: String,
}

/// One `HostPriority`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPriority {
    /// The node.
    pub host: String,
    /// 0 to [`MAX_EXTENDER_PRIORITY`].
    pub score: i64,
}

/// What the extender knows of a device (from the service's view).
#[derive(Clone, Copy, Debug)]
pub struct DeviceState {
    /// Its capability.
    pub spec: DeviceSpec,
    /// Predicted contention over the horizon (mean plus risk sigmas), fraction of capacity.
    pub contention: f64,
    /// Its highest anomaly score.
    pub anomaly: f64,
    /// Cores (thousandths) of the tasks mapped there.
    pub mapped_cores_milli: u64,
    /// Memory of the tasks mapped there.
    pub mapped_memory: u64,
}

/// What a pod asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodDemand {
    /// Cores, thousandths.
    pub cores_milli: u64,
    /// Memory, bytes.
    pub memory_bytes: u64,
}

/// Parses `ExtenderArgs` and the pod's demand: pure over bytes.
pub fn parse_extender_args(body: &[u8]) -> Result<(ExtenderArgs, Vec<String>, PodDemand), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("not ExtenderArgs JSON: {error}"))?;
    // An array would otherwise fill the struct by position (`[]` read as no fields at all).
    if !value.is_object() {
        return Err("ExtenderArgs must be a JSON object".into());
    }
    let value = keys_in_any_case(value)?;
    let args: ExtenderArgs =
        serde_json::from_value(value).map_err(|error| format!("not ExtenderArgs JSON: {error}"))?;
    let names = candidate_names(&args)?;
    // Kubernetes always sends the pod: without one there is nothing to place (a body that
    // lacked it was scored as a pod asking for nothing).
    let demand = match &args.pod {
        Some(pod) => pod_demand(pod)?,
        None => return Err("ExtenderArgs has no pod".into()),
    };
    Ok((args, names, demand))
}

/// `ExtenderArgs`' keys as its JSON tags, however they were spelled (Go matches them without
/// regard to case); a key given twice that way is refused, since which one Go keeps depends on
/// their order, which a JSON object does not have here.
fn keys_in_any_case(value: Value) -> Result<Value, String> {
    let Value::Object(fields) = value else {
        return Ok(value);
    };
    let mut named = serde_json::Map::new();
    for (key, field) in fields {
        let lower = key.to_ascii_lowercase();
        let tag = match lower.as_str() {
            "pod" | "nodes" | "nodenames" => lower,
            _ => key,
        };
        if named.contains_key(&tag) {
            return Err(format!(
                "ExtenderArgs gives '{tag}' twice (keys match in any case)"
            ));
        }
        named.insert(tag, field);
    }
    Ok(Value::Object(named))
}

/// The candidates' names, in the order given.
fn candidate_names(args: &ExtenderArgs) -> Result<Vec<String>, String> {
    let names: Vec<String> = match (&args.nodenames, &args.nodes) {
        (Some(names), _) => names.clone(),
        (None, Some(nodes)) => nodes
            .items
            .iter()
            .map(|node| {
                node_name(node)
                    .map(str::to_string)
                    .ok_or_else(|| "a node has no metadata.name".to_string())
            })
            .collect::<Result<_, _>>()?,
        (None, None) => return Err("ExtenderArgs has neither nodes nor nodenames".into()),
    };
    // Kubernetes never names a node with the empty string; one here is a broken request (the
    // http_bodies fuzzer sent `"nodenames": [""]`), not a node to score.
    if names.iter().any(String::is_empty) {
        return Err("a candidate node has an empty name".into());
    }
    // Nor twice: the filter answered such a node twice in its list and once among the
    // failed, and prioritize scored it twice, which the scheduler would have to reconcile.
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = names.iter().find(|name| !seen.insert(name.as_str())) {
        return Err(format!("candidate node {twice:?} is given twice"));
    }
    Ok(names)
}

fn node_name(node: &Value) -> Option<&str> {
    node.get("metadata")?.get("name")?.as_str()
}

/// The largest cpu request taken, cores: past it the thousandths saturated and the answer
/// named a pod of "18446744073709550 cores".
const MAX_REQUEST_CORES: f64 = 1e9;

/// The largest memory request taken, bytes (an exabyte): within what the byte count holds
/// (1e21 was taken, and anything past 1.8e19 saturated into a false figure in the answer).
const MAX_REQUEST_BYTES: f64 = 1e18;

/// `value` as an object when it is one, nothing when absent or null, else why not.
fn object_at<'a>(
    value: Option<&'a Value>,
    what: &str,
) -> Result<Option<&'a serde_json::Map<String, Value>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(other) => Err(format!("{what} {} is not an object", short(other))),
    }
}

/// A value as a message quotes it: at most 60 characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The sum of the pod's containers' requests.
pub fn pod_demand(pod: &Value) -> Result<PodDemand, String> {
    let mut demand = PodDemand::default();
    // Absent parts ask for nothing; present ones of the wrong shape are a broken pod, not a
    // pod asking for nothing (`"containers": "x"`, `"pod": 5` were scored as one).
    let Some(pod) = object_at(Some(pod), "the pod")? else {
        return Err("ExtenderArgs has no pod".into());
    };
    let spec = object_at(pod.get("spec"), "pod spec")?;
    let containers = match spec.and_then(|spec| spec.get("containers")) {
        None | Some(Value::Null) => None,
        Some(Value::Array(containers)) => Some(containers),
        Some(other) => {
            return Err(format!(
                "pod spec.containers {} is not an array",
                short(other)
            ))
        }
    };
    for container in containers.into_iter().flatten() {
        let container = object_at(Some(container), "a container")?;
        let resources = object_at(
            container.and_then(|c| c.get("resources")),
            "a container's resources",
        )?;
        let Some(requests) = object_at(
            resources.and_then(|r| r.get("requests")),
            "a container's resources.requests",
        )?
        else {
            continue;
        };
        if let Some(cpu) = requests.get("cpu") {
            let cores = quantity(cpu)
                .filter(|&cores| cores <= MAX_REQUEST_CORES)
                .ok_or_else(|| format!("bad cpu request {} (0 to 1e9 cores)", short(cpu)))?;
            demand.cores_milli = demand
                .cores_milli
                .checked_add((cores * 1000.0).ceil() as u64)
                .ok_or("the pod's cpu requests add up to more than can be counted")?;
        }
        if let Some(memory) = requests.get("memory") {
            let bytes = quantity(memory)
                .filter(|&bytes| bytes <= MAX_REQUEST_BYTES)
                .ok_or_else(|| format!("bad memory request {} (0 to 1e18 bytes)", short(memory)))?;
            // Checked: many containers would saturate the sum into a false figure.
            demand.memory_bytes = demand
                .memory_bytes
                .checked_add(bytes.ceil() as u64)
                .ok_or("the pod's memory requests add up to more than can be counted")?;
        }
    }
    Ok(demand)
}

/// A Kubernetes resource quantity (`500m`, `2`, `1.5Gi`, `128M`, `1e3`) as a plain number.
pub fn quantity(value: &Value) -> Option<f64> {
    let text = match value {
        Value::String(text) => text.trim().to_string(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    // Binary suffixes first: `Pi` is not `P` followed by `i`. (`1E` is exa; `1E3` is an
    // exponent, which the number parser reads.)
    const SUFFIXES: [(&str, f64); 15] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, scale) = SUFFIXES
        .iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((text.as_str(), 1.0));
    let parsed: f64 = number.parse().ok()?;
    let value = parsed * scale;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// Predicted utilisation of a device over the horizon with the pod added.
fn utilisation_with(device: &DeviceState, pod: PodDemand) -> f64 {
    cost::utilisation(
        &device.spec,
        device.contention,
        device.mapped_cores_milli.saturating_add(pod.cores_milli),
        device.mapped_memory.saturating_add(pod.memory_bytes),
    )
}

/// Why a node cannot take the pod, if it cannot.
fn refuse(
    device: Option<&DeviceState>,
    pod: PodDemand,
    anomaly: AnomalyPolicy,
    horizon_s: f64,
) -> Option<String> {
    let Some(device) = device else {
        return Some("not a device augur knows (no such name in its platform)".into());
    };
    if matches!(anomaly, AnomalyPolicy::Exclude)
        && device.anomaly >= augur_dataflows::anomaly::THRESHOLD
    {
        return Some(format!(
            "anomalous (score {:.2}) and the anomaly mode is exclude",
            device.anomaly
        ));
    }
    if pod.cores_milli > u64::from(device.spec.cores_milli)
        || pod.memory_bytes > device.spec.memory_bytes
    {
        return Some(format!(
            "the pod asks for {} cores and {} bytes; the device has {} cores and {} bytes",
            pod.cores_milli as f64 / 1000.0,
            pod.memory_bytes,
            f64::from(device.spec.cores_milli) / 1000.0,
            device.spec.memory_bytes
        ));
    }
    let utilisation = utilisation_with(device, pod);
    if utilisation > 1.0 {
        return Some(format!(
            "predicted utilisation over the next {horizon_s} s would be {utilisation:.2} of \
             capacity with the pod"
        ));
    }
    None
}

/// The filter answer for candidates `names` (in `args`' form: nodes or names).
pub fn filter(
    args: &ExtenderArgs,
    names: &[String],
    pod: PodDemand,
    device: impl Fn(&str) -> Option<DeviceState>,
    anomaly: AnomalyPolicy,
    horizon_s: f64,
) -> FilterResult {
    let mut failed_nodes = BTreeMap::new();
    let mut passing = Vec::new();
    for (index, name) in names.iter().enumerate() {
        match refuse(device(name).as_ref(), pod, anomaly, horizon_s) {
            Some(reason) => {
                failed_nodes.insert(name.clone(), reason);
            }
            None => passing.push(index),
        }
    }
    let mut result = FilterResult {
        failed_nodes,
        ..FilterResult::default()
    };
    match &args.nodes {
        Some(nodes) if args.nodenames.is_none() => {
            let items: Vec<Value> = passing
                .iter()
                .filter_map(|index| nodes.items.get(*index).cloned())
                .collect();
            result.nodes = Some(serde_json::json!({ "items": items }));
        }
        _ => {
            result.nodenames = Some(
                passing
                    .iter()
                    .filter_map(|index| names.get(*index).cloned())
                    .collect(),
            );
        }
    }
    result
}

/// The prioritize answer: every candidate with its score, in the order given.
pub fn prioritize(
    names: &[String],
    pod: PodDemand,
    device: impl Fn(&str) -> Option<DeviceState>,
) -> Vec<HostPriority> {
    names
        .iter()
        .map(|name| {
            let score = match device(name) {
                Some(state) => {
                    let free = (1.0 - utilisation_with(&state, pod)).clamp(0.0, 1.0);
                    (free * MAX_EXTENDER_PRIORITY as f64).round() as i64
                }
                None => 0,
            };
            HostPriority {
                host: name.clone(),
                score,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_in_any_case() {
        let body = br#"{"POD":{"spec":{"containers":[]}},"NODENAMES":["a"]}"#;
        let (_, names, _) = parse_extender_args(body).expect("Go would read it");
        assert_eq!(names, ["a"]);
        let twice = br#"{"pod":{},"Pod":{},"nodenames":["a"]}"#;
        let error = parse_extender_args(twice).expect_err("the pod twice");
        assert!(error.contains("twice"), "{error}");
    }

    #[test]
    fn quantities() {
        let q = |s: &str| quantity(&Value::String(s.into()));
        assert_eq!(q("500m"), Some(0.5));
        assert_eq!(q("2"), Some(2.0));
        assert_eq!(q("1Gi"), Some(1073741824.0));
        assert_eq!(q("128M"), Some(128e6));
        assert_eq!(q("1e3"), Some(1000.0));
        assert_eq!(q("1E3"), Some(1000.0));
        assert_eq!(q("1P"), Some(1e15));
        assert_eq!(q("1E"), Some(1e18));
        assert_eq!(q("1Pi"), Some(1125899906842624.0));
        assert_eq!(q("-1"), None);
        assert_eq!(q("lots"), None);
        assert_eq!(quantity(&serde_json::json!(3)), Some(3.0));
    }

    #[test]
    fn a_node_named_twice_is_a_broken_request() {
        let pod = r#""pod":{"spec":{"containers":[]}}"#;
        let body = format!(r#"{{{pod},"nodenames":["a","b","a"]}}"#);
        let error = parse_extender_args(body.as_bytes()).expect_err("twice");
        assert!(error.contains(r#"node "a" is given twice"#), "{error}");
        let body = format!(
            r#"{{{pod},"nodes":{{"items":[{{"metadata":{{"name":"b"}}}},{{"metadata":{{"name":"b"}}}}]}}}}"#
        );
        assert!(parse_extender_args(body.as_bytes()).is_err());
        let body = format!(r#"{{{pod},"nodenames":["a","b"]}}"#);
        assert!(parse_extender_args(body.as_bytes()).is_ok());
    }

    #[test]
    fn parse_survives_arbitrary_bytes() {
        let sample = br#"{"pod":{"spec":{"containers":[{"resources":{"requests":{"cpu":"500m","memory":"1Gi"}}}]}},"nodenames":["a","b"]}"#;
        let mut state: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..5000 {
            let mut bytes = sample.to_vec();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % bytes.len() as u64) as usize;
                bytes[at] = (state >> 24) as u8;
            }
            if let Ok((args, names, pod)) = parse_extender_args(&bytes) {
                let none = |_: &str| None;
                let result = filter(&args, &names, pod, none, AnomalyPolicy::Ignore, 1.0);
                assert_eq!(result.failed_nodes.len(), names.len());
                assert_eq!(prioritize(&names, pod, none).len(), names.len());
            }
        }
        for bad in ["1e400", "NaN", "inf", "-0.5"] {
            assert_eq!(quantity(&Value::String(bad.into())), None, "{bad}");
        }
        // Absurd but finite requests are refused, naming the range (they saturated, and the
        // answer named a pod of 18446744073709550 cores).
        for requests in [
            serde_json::json!({"cpu": "99999999999999999999Ei"}),
            serde_json::json!({"memory": "9e300"}),
        ] {
            let pod = serde_json::json!({"spec": {"containers": [{"resources": {"requests": requests}}]}});
            let error = pod_demand(&pod).expect_err("absurd");
            assert!(error.contains("to 1e"), "{error}");
        }
        let pod = serde_json::json!({"spec": {"containers": [
            {"resources": {"requests": {"cpu": "1G", "memory": "1E"}}},
            {"resources": {"requests": {"cpu": "1G"}}}]}});
        let demand = pod_demand(&pod).expect("at the bounds");
        assert_eq!(demand.cores_milli, 2_000_000_000_000);
        assert_eq!(demand.memory_bytes, 1_000_000_000_000_000_000);
        // Past what the byte count holds, one request or their sum is refused, not saturated
        // into a false figure (1e21 bytes was taken, and read 18446744073709551615).
        let one = serde_json::json!({"spec": {"containers": [
            {"resources": {"requests": {"memory": "1e21"}}}]}});
        assert!(pod_demand(&one).is_err_and(|error| error.contains("0 to 1e18")));
        let many = serde_json::json!({"spec": {"containers": vec![
            serde_json::json!({"resources": {"requests": {"memory": "1E"}}}); 20]}});
        assert!(pod_demand(&many).is_err_and(|error| error.contains("add up")));
    }

    /// A body of the wrong shape is refused, not read as a pod asking for nothing.
    #[test]
    fn malformed_shapes_are_refused() {
        let error = parse_extender_args(b"[]").expect_err("an array");
        assert!(error.contains("must be a JSON object"), "{error}");
        for spec in [
            serde_json::json!({"containers": "x"}),
            serde_json::json!({"containers": [{"resources": {"requests": [1]}}]}),
            serde_json::json!({"containers": [5]}),
            serde_json::json!({"containers": [{"resources": 5}]}),
        ] {
            assert!(
                pod_demand(&serde_json::json!({ "spec": spec })).is_err(),
                "{spec}"
            );
        }
        // Nor is a pod or a spec that is not an object (read as a pod asking for nothing).
        for pod in ["5", "\"x\"", "[]", "{\"spec\":5}"] {
            let body = format!("{{\"pod\":{pod},\"nodenames\":[\"a\"]}}");
            let error = parse_extender_args(body.as_bytes()).expect_err(pod);
            assert!(error.contains("not an object"), "{pod}: {error}");
        }
        let empty = serde_json::json!({"spec": {"containers": [{"resources": {}}]}});
        assert_eq!(pod_demand(&empty), Ok(PodDemand::default()));
    }

    fn state(cores: u32, contention: f64, anomaly: f64) -> DeviceState {
        DeviceState {
            spec: DeviceSpec {
                cores_milli: cores * 1000,
                memory_bytes: 16 << 30,
                speed: 1.0,
                network_bytes_per_s: 0.0,
                cost_per_hour: 0.0,
                power_watts: 0.0,
                zone: 0,
            },
            contention,
            anomaly,
            mapped_cores_milli: 0,
            mapped_memory: 0,
        }
    }

    #[test]
    fn filter_and_prioritize_by_predicted_contention() {
        let devices = |name: &str| match name {
            "idle" => Some(state(8, 0.0, 0.0)),
            "busy" => Some(state(8, 0.9, 0.0)),
            "odd" => Some(state(8, 0.1, 0.9)),
            _ => None,
        };
        let names: Vec<String> = ["idle", "busy", "odd", "ghost"].map(String::from).to_vec();
        let pod = PodDemand {
            cores_milli: 2000,
            memory_bytes: 1 << 30,
        };
        let args = ExtenderArgs {
            nodenames: Some(names.clone()),
            ..ExtenderArgs::default()
        };
        let result = filter(&args, &names, pod, devices, AnomalyPolicy::Exclude, 300.0);
        assert_eq!(result.nodenames, Some(vec!["idle".to_string()]));
        assert_eq!(result.failed_nodes.len(), 3);
        let penalised = filter(&args, &names, pod, devices, AnomalyPolicy::Ignore, 300.0);
        assert_eq!(
            penalised.nodenames,
            Some(vec!["idle".to_string(), "odd".to_string()])
        );
        let scores = prioritize(&names, pod, devices);
        let score = |host: &str| scores.iter().find(|s| s.host == host).map(|s| s.score);
        assert_eq!(score("idle"), Some(8)); // 1 - 2/8 = 0.75 → 7.5 → 8
        assert_eq!(score("busy"), Some(0));
        assert_eq!(score("ghost"), Some(0));
        assert!(score("odd") < score("idle"));
    }
}
