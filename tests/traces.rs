//! Traces: the gateway's spans, exported over OTLP/HTTP to a receiver that decodes them with
//! the official OpenTelemetry protobuf definitions (`tests/otlp/receiver.py`, Python's
//! opentelemetry-proto): the span tree and its parent ids, the `gen_ai.*` attributes against
//! the audit records, `traceparent` in from the client and out to the provider, sampling,
//! retries of a failing collector, and nothing lost under load within the queue bound.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::*;

/// The receiver, killed when dropped.
struct Receiver {
    child: Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    fn start(dir: &std::path::Path, fail_first: u32) -> Receiver {
        let out = dir.join("spans.jsonl");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/receiver.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&out)
            .arg(fail_first.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with opentelemetry-proto (pip install -r sdk/requirements.txt)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("the receiver did not start (pip install -r sdk/requirements.txt): {line:?}")
        });
        Receiver { child, port, out }
    }

    /// Every span received, in order.
    fn spans(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn tracing_config(r: &Receiver, sample: f64) -> String {
    format!(
        "[tracing]\nendpoint = \"http://127.0.0.1:{}/v1/traces\"\nsample = {sample}\n\
         service_name = \"gw-under-test\"\n",
        r.port
    )
}

/// A span attribute's value (as the JSON mapping writes it).
fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn int_attr(span: &Value, key: &str) -> Option<u64> {
    attr(span, key)?["intValue"].as_str()?.parse().ok()
}

fn str_attr<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    attr(span, key)?["stringValue"].as_str()
}

fn request_with(model: &str, stream: bool, traceparent: Option<&str>) -> Vec<u8> {
    let mut headers = vec![("authorization".to_owned(), format!("Bearer {KEY}"))];
    if let Some(t) = traceparent {
        headers.push(("traceparent".to_owned(), t.to_owned()));
    }
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_with("/v1/chat/completions", &h, chat(model, stream).as_bytes())
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[test]
fn spans_reach_a_collector_as_a_tree_with_the_audit_records_attributes() {
    let dir = test_dir("traces-tree");
    let audit = dir.join("audit.log");
    let receiver = Receiver::start(&dir, 0);
    let mock = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    // A port nothing listens on: the `cost` strategy tries its (cheaper) deployment first.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let extra = format!(
        "[[providers]]\nname = \"oai\"\nkind = \"openai\"\nbase_url = \"http://{m}/v1\"\n\
         api_key_env = \"TEST_UPSTREAM_KEY\"\n\
         [[providers]]\nname = \"down\"\nkind = \"openai\"\nbase_url = \"http://{closed}/v1\"\n\
         api_key_env = \"TEST_UPSTREAM_KEY\"\n\
         [[models]]\nname = \"gpt-x\"\n[[models.deployments]]\nprovider = \"oai\"\n\
         model = \"gpt-upstream\"\nprice = {{ input = 2.5, output = 10.0 }}\n\
         [[models]]\nname = \"gpt-f\"\nstrategy = \"cost\"\n\
         [[models.deployments]]\nprovider = \"down\"\nmodel = \"gpt-down\"\n\
         price = {{ input = 0.1, output = 0.1 }}\n\
         [[models.deployments]]\nprovider = \"oai\"\nmodel = \"gpt-upstream\"\n\
         price = {{ input = 2.5, output = 10.0 }}\n{}{}",
        tracing_config(&receiver, 1.0),
        audit_to(&audit),
        m = mock.addr,
    );
    let gw = start(&config_text(None, 1, &extra));
    let a = gw.local_addr();
    let parent = format!("00-{TRACE}-{PARENT}-01");
    let r = roundtrip(a, &request_with("gpt-x", false, Some(&parent)));
    assert_eq!(r.status, 200);
    let r = roundtrip(a, &request_with("gpt-x", true, None));
    assert_eq!(r.status, 200);
    let r = roundtrip(a, &request_with("gpt-f", false, None));
    assert_eq!(r.status, 200, "{}", r.text());
    let bad = post_with(
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-wrong")],
        chat("gpt-x", false).as_bytes(),
    );
    assert_eq!(roundtrip(a, &bad).status, 401);
    // A caller that did not sample: no spans, but the provider still learns the trace.
    let unsampled_trace = "0af7651916cd43dd8448eb211c80319c";
    let unsampled = format!("00-{unsampled_trace}-b7ad6b7169203331-00");
    assert_eq!(
        roundtrip(a, &request_with("gpt-x", false, Some(&unsampled))).status,
        200
    );
    gw.shutdown();

    let spans = receiver.spans();
    let records = audit_records(&audit);
    assert_eq!(records.len(), 5);
    let servers: Vec<&Value> = spans
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_SERVER")
        .collect();
    let clients: Vec<&Value> = spans
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_CLIENT")
        .collect();
    assert_eq!(
        servers.len(),
        4,
        "the unsampled request has none: {spans:#?}"
    );
    assert!(spans.iter().all(|s| s["traceId"] != unsampled_trace));
    for s in &spans {
        assert_eq!(
            s["resource"]["attributes"][0],
            serde_json::json!({"key": "service.name", "value": {"stringValue": "gw-under-test"}})
        );
        assert_eq!(s["scope"]["name"], "tollgate");
    }

    // The caller's trace: the request's span is its parent's child, the attempt the
    // request's, and the provider was sent the attempt's span as its parent.
    let first = servers[0];
    assert_eq!(
        (first["traceId"].as_str(), first["parentSpanId"].as_str()),
        (Some(TRACE), Some(PARENT))
    );
    assert_eq!(first["name"], "chat gpt-x");
    assert_eq!(str_attr(first, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(str_attr(first, "gen_ai.request.model"), Some("gpt-x"));
    assert_eq!(
        str_attr(first, "gen_ai.response.model"),
        Some("gpt-upstream")
    );
    assert_eq!(str_attr(first, "tollgate.key"), Some("test"));
    assert_eq!(int_attr(first, "http.response.status_code"), Some(200));
    let rec = &records[0];
    assert_eq!(
        int_attr(first, "gen_ai.usage.input_tokens"),
        rec["gen_ai.usage.input_tokens"].as_u64()
    );
    assert_eq!(
        int_attr(first, "gen_ai.usage.output_tokens"),
        rec["gen_ai.usage.output_tokens"].as_u64()
    );
    assert_eq!(
        str_attr(first, "gen_ai.response.id"),
        rec["gen_ai.response.id"].as_str()
    );
    let cost = attr(first, "tollgate.cost_usd").unwrap()["doubleValue"]
        .as_f64()
        .unwrap();
    assert!((cost - rec["cost_micro_usd"].as_f64().unwrap() / 1e6).abs() < 1e-12);
    let attempt: Vec<&&Value> = clients
        .iter()
        .filter(|c| c["parentSpanId"] == first["spanId"])
        .collect();
    assert_eq!(attempt.len(), 1);
    assert_eq!(attempt[0]["traceId"], TRACE);
    assert_eq!(str_attr(attempt[0], "tollgate.outcome"), Some("served"));
    let sent = format!("00-{TRACE}-{}-01", attempt[0]["spanId"].as_str().unwrap());
    let ledger = mock.ledger();
    assert!(
        ledger.traceparents.contains(&sent),
        "{:?} lacks {sent}",
        ledger.traceparents
    );
    assert!(
        ledger
            .traceparents
            .iter()
            .any(|t| t.starts_with(&format!("00-{unsampled_trace}-")) && t.ends_with("-00")),
        "{:?}",
        ledger.traceparents
    );
    assert!(
        !ledger.traceparents.contains(&parent),
        "the client's own traceparent is not forwarded"
    );
    // Times nest: the attempt lies within the request.
    let t = |s: &Value, k: &str| s[k].as_str().unwrap().parse::<u64>().unwrap();
    assert!(t(first, "startTimeUnixNano") <= t(attempt[0], "startTimeUnixNano"));
    assert!(t(attempt[0], "endTimeUnixNano") <= t(first, "endTimeUnixNano"));

    // A stream: a new trace, with its first token and its end as events.
    let stream = servers[1];
    assert_eq!(stream["parentSpanId"], "");
    assert_ne!(stream["traceId"], TRACE);
    let events: Vec<&str> = stream["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["gen_ai.first_token", "gen_ai.stream.end"]);

    // A failover: two attempts under one request, the failed one marked as an error.
    let failover = servers[2];
    let mut tries: Vec<&&Value> = clients
        .iter()
        .filter(|c| c["parentSpanId"] == failover["spanId"])
        .collect();
    tries.sort_by_key(|c| int_attr(c, "tollgate.attempt"));
    assert_eq!(tries.len(), 2, "{tries:#?}");
    assert_eq!(
        str_attr(tries[0], "tollgate.deployment"),
        Some("down/gpt-down")
    );
    assert_eq!(
        str_attr(tries[0], "tollgate.outcome"),
        Some("connect_error")
    );
    assert_eq!(tries[0]["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(str_attr(tries[1], "tollgate.outcome"), Some("served"));
    assert!(tries[1]["status"].get("code").is_none());
    assert!(t(tries[0], "endTimeUnixNano") <= t(tries[1], "startTimeUnixNano"));

    // A refused key: the request's span, its status and error, no attempt.
    let refused = servers[3];
    assert_eq!(int_attr(refused, "http.response.status_code"), Some(401));
    assert_eq!(str_attr(refused, "error.type"), Some("invalid_api_key"));
    assert!(
        clients
            .iter()
            .all(|c| c["parentSpanId"] != refused["spanId"])
    );
}

#[test]
fn sampling_follows_the_caller_and_a_failing_collector_loses_nothing_within_the_bound() {
    let dir = test_dir("traces-sampling");
    // The collector refuses its first two requests (503): the exporter retries.
    let receiver = Receiver::start(&dir, 2);
    let gw = start(&config_text(None, 2, &tracing_config(&receiver, 0.0)));
    let a = gw.local_addr();
    // Sampling 0: only requests whose caller sampled are traced.
    let mut client = Client::connect(a);
    for i in 0..300u32 {
        let parent = (i % 3 == 0).then(|| format!("00-{:032x}-{:016x}-01", i + 1, i + 1));
        client.send(&request_with("mock-chat", i % 2 == 0, parent.as_deref()));
        assert_eq!(client.response().status, 200);
    }
    gw.shutdown();
    let spans = receiver.spans();
    let servers: Vec<&Value> = spans
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_SERVER")
        .collect();
    assert_eq!(servers.len(), 100, "every sampled request, none lost");
    let mut traces: Vec<u32> = servers
        .iter()
        .map(|s| u32::from_str_radix(s["traceId"].as_str().unwrap(), 16).unwrap())
        .collect();
    traces.sort_unstable();
    assert_eq!(traces, (0..100).map(|i| i * 3 + 1).collect::<Vec<_>>());
    // The built-in mock is an attempt too.
    assert_eq!(spans.len(), 200);
    assert!(
        spans.iter().all(|s| s["request"].as_u64().unwrap() > 2),
        "what the collector refused was sent again"
    );
}

#[test]
fn a_bad_tracing_table_is_refused_with_the_exact_problem() {
    for (table, want) in [
        (
            "endpoint = \"https://collector:4318/v1/traces\"",
            "tracing.endpoint",
        ),
        ("endpoint = \"collector:4318\"", "tracing.endpoint"),
        (
            "endpoint = \"http://127.0.0.1:4318\"\nsample = 1.5",
            "tracing.sample",
        ),
        (
            "endpoint = \"http://127.0.0.1:4318\"\nqueue_spans = 0",
            "tracing.queue_spans",
        ),
        (
            "endpoint = \"http://127.0.0.1:4318\"\nsampel = 0.5",
            "sampel",
        ),
    ] {
        let text = config_text(None, 1, &format!("[tracing]\n{table}\n"));
        let err = tollgate::config::parse(&text, "test", &|_| None).unwrap_err();
        assert!(err.to_string().contains(want), "{table}: {err}");
    }
    // No endpoint: tracing is off, whatever else the table says.
    let text = config_text(None, 1, "[tracing]\nsample = 0.5\n");
    assert!(snapshot(&text).tracing.is_none());
    let text = config_text(None, 1, "[tracing]\nendpoint = \"http://127.0.0.1:4318\"\n");
    let t = snapshot(&text).tracing.unwrap();
    assert_eq!(
        (t.path.as_str(), t.sample_per_million),
        ("/v1/traces", 1_000_000)
    );
}
