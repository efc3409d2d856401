//! Streams, JSON and the dialects: the SSE scanner, AWS's binary event stream, the JSON
//! scanners, the meter (what a provider's answer is charged), and the translators.

use tollgate::dialect::Dialect;
use tollgate::dialect::norm::Target;
use tollgate::json::Scratch;
use tollgate::json::scan::{Members, member, skip_ws, value_end};
use tollgate::sse::eventstream::EventStreamDecoder;
use tollgate::sse::{SseEvent, SseScanner};
use tollgate::stream::Meter;
use tollgate::translate::{Pair, request, response};
use tollgate::usage::{Observed, settle_usage};

use crate::{cut, dialect, settings};

type Ev = (Vec<u8>, Vec<u8>, Option<Vec<u8>>, Option<u64>, bool);

fn sse_events(input: &[u8], at: &[usize]) -> Vec<Ev> {
    let mut s = SseScanner::new(input.len().max(1));
    let mut out = Vec::new();
    let mut push = |e: &SseEvent<'_>| {
        out.push((
            e.event.to_vec(),
            e.data.to_vec(),
            e.id.map(<[u8]>::to_vec),
            e.retry,
            e.terminated,
        ));
    };
    let mut from = 0;
    for &to in at.iter().chain([&input.len()]) {
        let to = to.max(from);
        s.feed(&input[from..to], &mut push)
            .expect("no event can exceed the whole input");
        from = to;
    }
    s.finish(&mut push);
    out
}

/// The SSE scanner: the same events whatever the split; only the flushed last event can lack
/// its blank line.
pub fn sse(data: &[u8]) {
    let (seed, input) = settings(data);
    let whole = sse_events(input, &[]);
    let k = cut(input, seed);
    assert_eq!(sse_events(input, &[k]), whole, "split at {k}");
    if input.len() <= 512 {
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(sse_events(input, &every), whole, "byte by byte");
    }
    for (i, e) in whole.iter().enumerate() {
        assert!(
            e.4 || i + 1 == whole.len(),
            "an unterminated event before the last"
        );
        assert!(e.1.len() <= input.len());
    }
}

/// The messages read (event type, payload), and whether the whole input was read cleanly.
type Messages = (Vec<(Vec<u8>, Vec<u8>)>, bool);

fn binary_events(input: &[u8], at: &[usize]) -> Messages {
    let mut d = EventStreamDecoder::new(1 << 20);
    let mut got = Vec::new();
    let mut from = 0;
    for &to in at.iter().chain([&input.len()]) {
        let to = to.max(from);
        let r = d.feed(&input[from..to], |e| {
            got.push((e.event.to_vec(), e.data.to_vec()))
        });
        from = to;
        if r.is_err() {
            return (got, false);
        }
    }
    (got, true)
}

/// AWS's binary event stream (Bedrock): the same messages, and the same verdict, whatever the
/// split; a message survives only with both its CRCs right.
pub fn eventstream(data: &[u8]) {
    let (seed, input) = settings(data);
    let whole = binary_events(input, &[]);
    let k = cut(input, seed);
    assert_eq!(binary_events(input, &[k]), whole, "split at {k}");
}

/// The JSON scanners on any bytes stay in bounds; on JSON that serde accepts they agree with
/// it (the members, in order, and each value re-reads as the same value).
pub fn json_scan(data: &[u8]) {
    let mut ranges = Vec::new();
    for m in Members::new(data) {
        let Ok(m) = m else { break };
        assert!(m.key.start <= m.key.end && m.key.end <= m.value.start);
        assert!(m.value.start <= m.value.end && m.value.end <= data.len());
        ranges.push(m);
    }
    let start = skip_ws(data, 0);
    if let Some(end) = value_end(data, start) {
        assert!(end <= data.len());
    }
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(data)
    else {
        return;
    };
    // serde keeps the last of duplicate keys; compare only when keys are unique.
    if obj.len() != ranges.len() {
        return;
    }
    for m in &ranges {
        let key: String = serde_json::from_slice(&data[m.key.start - 1..m.key.end + 1])
            .expect("a key the scanner found is a JSON string");
        let v: serde_json::Value =
            serde_json::from_slice(&data[m.value.clone()]).expect("a value re-reads");
        assert_eq!(obj.get(&key), Some(&v), "member {key}");
        let k = key.as_bytes();
        if !data[m.key.clone()].contains(&b'\\') {
            assert_eq!(member(data, k), Some(m.value.clone()), "member {key}");
        }
    }
}

fn metered(d: Dialect, sse: bool, input: &[u8], at: usize) -> (Vec<u8>, String, Observed) {
    let mut m = Meter::default();
    let mut scratch = Scratch::default();
    m.start(d, sse, false, false);
    let mut out = Vec::new();
    m.pass(&input[..at], &mut out, &mut scratch);
    m.pass(&input[at..], &mut out, &mut scratch);
    m.end(Some(&mut out), &mut scratch);
    (out, format!("{:?}", m.observed), m.observed)
}

/// The meter on a provider's answer, any dialect, JSON or stream: it relays exactly the
/// bytes it got; it reads the same usage whatever the split; and what it settles never
/// exceeds what the provider reported when the provider reported it all.
pub fn meter(data: &[u8]) {
    let (s, input) = settings(data);
    if input.len() > 256 * 1024 {
        return;
    }
    let (d, sse) = (dialect(s), s & 0x80 != 0);
    let (out, whole, o) = metered(d, sse, input, input.len());
    assert_eq!(out, input, "passthrough changed the bytes");
    let k = cut(input, s);
    let (out2, split, _) = metered(d, sse, input, k);
    assert_eq!(out2, input);
    assert_eq!(split, whole, "what was read depends on the split at {k}");
    let (u, estimated) = settle_usage(&o, input.len() as u64);
    if o.input_reported && o.output_reported && o.finished {
        assert!(!estimated);
        assert_eq!(u, o.usage, "settled more or less than reported");
    } else {
        assert!(estimated);
    }
}

fn pair(s: u8) -> Option<Pair> {
    Pair::between(dialect(s), dialect(s / 5))
}

/// A client's request translated for another dialect's provider: refused with a reason, or
/// a JSON object naming the deployment's model.
pub fn translate_request(data: &[u8]) {
    let (s, body) = settings(data);
    let Some(p) = pair(s) else { return };
    let target = Target {
        model_json: b"\"up-model\"",
        default_max_tokens: 4096,
        compatible: s & 0x80 != 0,
        stream: s & 0x40 != 0,
        vertex: false,
    };
    let mut out = Vec::new();
    if request::translate(p, body, &target, &mut Scratch::default(), &mut out).is_ok() {
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "{p:?}: invalid JSON written ({e}): {:?}",
                String::from_utf8_lossy(&out)
            )
        });
        assert!(v.is_object(), "{p:?}: not an object");
    }
}

/// A provider's whole answer (and error) translated for the client: JSON whenever it is
/// written at all.
pub fn translate_answer(data: &[u8]) {
    let (s, body) = settings(data);
    let Some(p) = pair(s) else { return };
    let mut o = Observed::default();
    let mut scratch = Scratch::default();
    p.provider().observe_body(body, &mut o, &mut scratch);
    let mut out = Vec::new();
    if response::translate(p, body, &o, 1_700_000_000, &mut scratch, &mut out).is_ok() {
        serde_json::from_slice::<serde_json::Value>(&out)
            .unwrap_or_else(|e| panic!("{p:?}: invalid JSON answer ({e})"));
    }
    let mut err = Vec::new();
    response::error(p, 400 + u16::from(s % 200), body, &mut scratch, &mut err);
    serde_json::from_slice::<serde_json::Value>(&err)
        .unwrap_or_else(|e| panic!("{p:?}: invalid JSON error ({e})"));
}

fn translated(p: Pair, input: &[u8], at: usize) -> (Vec<u8>, Option<String>) {
    let mut m = Meter::default();
    let mut scratch = Scratch::default();
    m.start(p.provider(), true, false, false);
    m.translate(p, true, false, 1_700_000_000);
    let mut out = Vec::new();
    m.pass(&input[..at], &mut out, &mut scratch);
    m.pass(&input[at..], &mut out, &mut scratch);
    m.end(Some(&mut out), &mut scratch);
    (out, m.translation_failed().map(str::to_owned))
}

/// A provider's stream translated event by event: the same output whatever the split, and
/// a valid stream of the client's dialect (each event's data JSON, or `[DONE]`; Bedrock's
/// binary frames decode).
pub fn translate_stream(data: &[u8]) {
    let (s, input) = settings(data);
    if input.len() > 256 * 1024 {
        return;
    }
    let Some(p) = pair(s) else { return };
    let whole = translated(p, input, input.len());
    let k = cut(input, s);
    assert_eq!(translated(p, input, k), whole, "{p:?}: split at {k}");
    let out = &whole.0;
    if p.client() == Dialect::Bedrock {
        let mut d = EventStreamDecoder::new(1 << 24);
        d.feed(out, |_| {})
            .unwrap_or_else(|e| panic!("{p:?}: invalid event stream written: {e:?}"));
        return;
    }
    let mut sc = SseScanner::new(out.len().max(1));
    let mut bad = None;
    let r = sc.feed(out, |e| {
        if e.data != b"[DONE]" && serde_json::from_slice::<serde_json::Value>(e.data).is_err() {
            bad = Some(String::from_utf8_lossy(e.data).into_owned());
        }
    });
    assert!(r.is_ok(), "{p:?}: unscannable output");
    assert!(!sc.has_pending(), "{p:?}: output ends inside an event");
    assert_eq!(bad, None, "{p:?}: an event whose data is not JSON");
}
