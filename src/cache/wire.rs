//! An [`Entry`] as bytes, for the shared second level in Redis (`[cluster] cache`): written
//! by the instance that filled it, read by any other. Versioned; every length is checked on
//! the way in, so a corrupt or foreign value reads as a miss, never as a wrong answer (the
//! reader also checks [`Entry::is_for`]).
//!
//! Layout: `TGC1`, then in order the strings (a u32 length, little-endian, and the bytes) and
//! numbers (u64, little-endian) below; a call list is its count, then each call's id (a flag
//! byte, then the string), name and arguments; `verbatim` is a flag byte and the bytes.

use super::entry::{Call, Entry};
use super::key::Op;
use crate::dialect::norm::Finish;
use crate::usage::{InlineStr, Observed, Usage};

const MAGIC: &[u8; 4] = b"TGC1";

/// Appends `e` to `out`.
pub fn encode(e: &Entry, out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    for s in [&*e.scope, &*e.model, &*e.id, &*e.response_model, &e.text] {
        string(out, s.as_bytes());
    }
    out.push(e.op as u8);
    out.push(match e.finish {
        Finish::Stop => 0,
        Finish::Length => 1,
        Finish::ToolCalls => 2,
        Finish::ContentFilter => 3,
    });
    let o = &e.observed;
    let u = &o.usage;
    for n in [
        u.input_tokens,
        u.output_tokens,
        u.cache_read_tokens,
        u.cache_creation_tokens,
        u.reasoning_tokens,
        o.content_bytes,
        e.cost_micro_usd,
        e.stored_us,
    ] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.push(
        u8::from(o.input_reported) | u8::from(o.output_reported) << 1 | u8::from(o.finished) << 2,
    );
    for s in [
        o.finish_reason.as_bytes(),
        o.response_model.as_bytes(),
        o.response_id.as_bytes(),
    ] {
        string(out, s);
    }
    out.extend_from_slice(&(e.calls.len() as u32).to_le_bytes());
    for c in &e.calls {
        out.push(u8::from(c.id.is_some()));
        string(out, c.id.as_deref().unwrap_or("").as_bytes());
        string(out, c.name.as_bytes());
        string(out, c.args.as_bytes());
    }
    out.push(u8::from(e.verbatim.is_some()));
    string(out, e.verbatim.as_deref().unwrap_or(&[]));
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s);
}

/// Reads what [`encode`] wrote; `None` for anything else.
pub fn decode(b: &[u8]) -> Option<Entry> {
    let mut r = Reader(b.strip_prefix(MAGIC)?);
    let scope = r.text()?;
    let model = r.text()?;
    let id = r.text()?;
    let response_model = r.text()?;
    let text = r.text()?;
    let op = match r.byte()? {
        1 => Op::Chat,
        2 => Op::Messages,
        3 => Op::Responses,
        4 => Op::Gemini,
        5 => Op::Bedrock,
        _ => return None,
    };
    let finish = match r.byte()? {
        0 => Finish::Stop,
        1 => Finish::Length,
        2 => Finish::ToolCalls,
        3 => Finish::ContentFilter,
        _ => return None,
    };
    let mut n = [0u64; 8];
    for v in &mut n {
        *v = r.u64()?;
    }
    let flags = r.byte()?;
    let finish_reason = InlineStr::new(r.bytes()?);
    let response_model_seen = InlineStr::new(r.bytes()?);
    let response_id = InlineStr::new(r.bytes()?);
    let count = r.u32()? as usize;
    // Each call takes at least 13 bytes: a count past what is left is corrupt.
    if count > r.0.len() / 13 {
        return None;
    }
    let mut calls = Vec::with_capacity(count);
    for _ in 0..count {
        let has_id = r.byte()? == 1;
        let id = r.text()?;
        calls.push(Call {
            id: has_id.then_some(id),
            name: r.text()?,
            args: r.text()?,
        });
    }
    let has_verbatim = r.byte()? == 1;
    let verbatim = r.bytes()?;
    if !r.0.is_empty() {
        return None;
    }
    Some(Entry {
        scope: scope.into(),
        model: model.into(),
        op,
        id: id.into(),
        response_model: response_model.into(),
        text,
        calls,
        finish,
        observed: Observed {
            usage: Usage {
                input_tokens: n[0],
                output_tokens: n[1],
                cache_read_tokens: n[2],
                cache_creation_tokens: n[3],
                reasoning_tokens: n[4],
            },
            input_reported: flags & 1 != 0,
            output_reported: flags & 2 != 0,
            finished: flags & 4 != 0,
            content_bytes: n[5],
            finish_reason,
            response_model: response_model_seen,
            response_id,
            ..Observed::default()
        },
        cost_micro_usd: n[6],
        stored_us: n[7],
        verbatim: has_verbatim.then(|| Box::from(verbatim)),
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            scope: "key:a".into(),
            model: "m".into(),
            op: Op::Messages,
            id: "msg_1".into(),
            response_model: "claude".into(),
            text: "Hello \u{e9}".into(),
            calls: vec![
                Call {
                    id: Some("call_1".into()),
                    name: "get".into(),
                    args: r#"{"a":1}"#.into(),
                },
                Call {
                    id: None,
                    name: "put".into(),
                    args: "{}".into(),
                },
            ],
            finish: Finish::ToolCalls,
            observed: Observed {
                usage: Usage {
                    input_tokens: 11,
                    output_tokens: 7,
                    cache_read_tokens: 3,
                    cache_creation_tokens: 2,
                    reasoning_tokens: 1,
                },
                input_reported: true,
                output_reported: true,
                finished: true,
                content_bytes: 40,
                finish_reason: InlineStr::new(b"tool_use"),
                response_model: InlineStr::new(b"claude"),
                response_id: InlineStr::new(b"msg_1"),
                ..Observed::default()
            },
            cost_micro_usd: 123,
            stored_us: 456,
            verbatim: Some(Box::from(&b"{\"x\":1}"[..])),
        }
    }

    #[test]
    fn an_entry_reads_back_as_it_was_and_anything_else_is_a_miss() {
        let e = entry();
        let mut b = Vec::new();
        encode(&e, &mut b);
        let d = decode(&b).expect("reads back");
        assert_eq!(format!("{d:?}"), format!("{e:?}"));
        // Every truncation, and a byte too many, is refused.
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_none(), "cut at {n}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        // A count past the bytes left does not allocate, it fails: with no calls and no
        // verbatim body, the count is the last 9 bytes' first 4.
        let bare = Entry {
            calls: Vec::new(),
            verbatim: None,
            ..entry()
        };
        let mut bad = Vec::new();
        encode(&bare, &mut bad);
        assert!(decode(&bad).is_some());
        let at = bad.len() - 9;
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&bad).is_none());
    }
}
