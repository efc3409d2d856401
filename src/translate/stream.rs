//! Event streams from the provider's dialect to the client's, one event at a time, through the
//! normalised events of [`crate::dialect::norm::Event`]: the provider dialect's reader turns
//! each event into zero or more normalised events as soon as it is read, and the client
//! dialect's writer writes them (the meter hands over whole events; nothing waits for a later
//! one). Text and argument fragments stay raw JSON string contents — escapes and all — never
//! unescaped and re-escaped; only the rare structural events are looked into with
//! [`crate::json::scan`]. Usage comes from the meter's reading of the provider's events
//! ([`Observed`]), so the client sees what is charged.
//!
//! What each dialect reads and writes is tabled in `dialect/{openai,anthropic,gemini}/stream.rs`.
//! A new client dialect is one writer; a new provider dialect, one reader.

use super::Pair;
use crate::dialect::{Dialect, anthropic, bedrock, gemini, norm::Event, openai, responses};
use crate::sse::SseEvent;
use crate::usage::Observed;

/// A filter between a stream's reader and writer: takes each normalised event and writes what
/// it lets through with the writer it is given.
pub type EventFilter<'f> = dyn FnMut(Event<'_>, &mut dyn FnMut(Event<'_>)) + 'f;

/// Translates one stream; see the module docs.
#[derive(Debug)]
pub struct StreamTranslator {
    reader: Reader,
    writer: Writer,
}

/// The provider dialect's reader.
#[derive(Debug)]
enum Reader {
    OpenAi(openai::stream::Reader),
    Anthropic(anthropic::stream::Reader),
    Gemini(gemini::stream::Reader),
    Responses(responses::stream::Reader),
    Bedrock(bedrock::stream::Reader),
}

/// The client dialect's writer.
#[derive(Debug)]
enum Writer {
    OpenAi(openai::stream::Writer),
    Anthropic(anthropic::stream::Writer),
    Responses(responses::stream::Writer),
    Gemini(gemini::stream::Writer),
    Bedrock(bedrock::stream::Writer),
}

/// The event with every provider string that is not valid JSON string content rewritten
/// into `bufs` (a provider's strings are copied into the client's events as they came, escapes
/// and all: one with bad UTF-8, a raw control character or a bad escape would make an event
/// the client's JSON parser refuses). Most events have nothing to rewrite and pass as they are.
fn repaired<'b>(e: Event<'b>, bufs: &'b mut [Vec<u8>; 3]) -> Event<'b> {
    let ok = crate::json::is_string_content;
    let clean = match e {
        Event::Start { id, model } => ok(id) && ok(model),
        Event::Text(t) => ok(t),
        // Whole arguments are a JSON value the writer escapes into a string: UTF-8 is all
        // they need.
        Event::ToolCall { id, name, args, .. } => {
            id.is_none_or(ok) && ok(name) && args.is_none_or(|a| std::str::from_utf8(a).is_ok())
        }
        Event::ToolArgs { raw, .. } => ok(raw),
        Event::Error { message, kind } => ok(message) && ok(kind),
        Event::Finish(_) | Event::End => true,
    };
    if clean {
        return e;
    }
    let [a, b, c] = bufs;
    let fix = |s: &[u8], buf: &'b mut Vec<u8>| -> &'b [u8] {
        buf.clear();
        crate::json::repair_string_content(s, buf);
        buf
    };
    match e {
        Event::Start { id, model } => Event::Start {
            id: fix(id, a),
            model: fix(model, b),
        },
        Event::Text(t) => Event::Text(fix(t, a)),
        Event::ToolCall {
            index,
            id,
            name,
            args,
        } => Event::ToolCall {
            index,
            id: id.map(|i| fix(i, a)),
            name: fix(name, b),
            args: args.map(|v| {
                c.clear();
                c.extend_from_slice(String::from_utf8_lossy(v).as_bytes());
                &c[..]
            }),
        },
        Event::ToolArgs { index, raw } => Event::ToolArgs {
            index,
            raw: fix(raw, a),
        },
        Event::Error { message, kind } => Event::Error {
            message: fix(message, a),
            kind: fix(kind, b),
        },
        other => other,
    }
}

impl Writer {
    fn write(&mut self, e: Event<'_>, o: &Observed, out: &mut Vec<u8>) {
        let mut bufs = [Vec::new(), Vec::new(), Vec::new()];
        let e = repaired(e, &mut bufs);
        match self {
            Writer::OpenAi(w) => w.write(e, o, out),
            Writer::Anthropic(w) => w.write(e, o, out),
            Writer::Responses(w) => w.write(e, o, out),
            Writer::Gemini(w) => w.write(e, o, out),
            Writer::Bedrock(w) => w.write(e, o, out),
        }
    }

    fn finished(&self) -> bool {
        match self {
            Writer::OpenAi(w) => w.finished(),
            Writer::Anthropic(w) => w.finished(),
            Writer::Responses(w) => w.finished(),
            Writer::Gemini(w) => w.finished(),
            Writer::Bedrock(w) => w.finished(),
        }
    }

    fn end(&mut self, o: &Observed, out: &mut Vec<u8>) {
        match self {
            Writer::OpenAi(w) => w.end(o, out),
            Writer::Anthropic(w) => w.end(o, out),
            Writer::Responses(w) => w.end(o, out),
            Writer::Gemini(w) => w.end(o, out),
            Writer::Bedrock(w) => w.end(o, out),
        }
    }
}

/// Writes normalised events in a client's dialect (a cached answer replayed as a stream).
#[derive(Debug)]
pub struct EventWriter(Writer);

impl EventWriter {
    /// As [`StreamTranslator::new`], for the client's side alone.
    pub fn new(client: Dialect, client_usage: bool, gemini_array: bool, created: u64) -> Self {
        EventWriter(Writer::of(client, client_usage, gemini_array, created))
    }

    pub fn write(&mut self, e: Event<'_>, o: &Observed, out: &mut Vec<u8>) {
        self.0.write(e, o, out);
    }
}

/// Reads a whole event stream in `provider`'s dialect (SSE, or AWS's binary event stream for
/// Bedrock) and hands each normalised event to `emit`. `Err` when the stream is corrupt.
pub fn read_stream(
    provider: Dialect,
    body: &[u8],
    mut emit: impl FnMut(Event<'_>),
) -> Result<(), crate::sse::SseError> {
    let mut reader = Reader::of(provider);
    let mut scanner = crate::sse::SseScanner::default();
    if provider == Dialect::Bedrock {
        scanner.set_binary();
    }
    let mut each = |e: &SseEvent<'_>| reader.read(e, &mut emit);
    scanner.feed(body, &mut each)?;
    scanner.finish(&mut each);
    Ok(())
}

impl Reader {
    fn of(provider: Dialect) -> Self {
        match provider {
            Dialect::OpenAi => Reader::OpenAi(openai::stream::Reader::default()),
            Dialect::Anthropic => Reader::Anthropic(anthropic::stream::Reader::default()),
            Dialect::Gemini => Reader::Gemini(gemini::stream::Reader::default()),
            Dialect::Responses => Reader::Responses(responses::stream::Reader::default()),
            Dialect::Bedrock => Reader::Bedrock(bedrock::stream::Reader::default()),
        }
    }

    fn read<'a>(&mut self, e: &SseEvent<'a>, emit: &mut impl FnMut(Event<'a>)) {
        match self {
            Reader::OpenAi(r) => r.read(e.data, emit),
            Reader::Anthropic(r) => r.read(e, emit),
            Reader::Gemini(r) => r.read(e.data, emit),
            Reader::Responses(r) => r.read(e, emit),
            Reader::Bedrock(r) => r.read(e, emit),
        }
    }
}

impl Writer {
    fn of(client: Dialect, client_usage: bool, gemini_array: bool, created: u64) -> Self {
        match client {
            Dialect::Anthropic => Writer::Anthropic(anthropic::stream::Writer::default()),
            Dialect::OpenAi => Writer::OpenAi(openai::stream::Writer::new(client_usage, created)),
            Dialect::Responses => Writer::Responses(responses::stream::Writer::new(created)),
            Dialect::Gemini => Writer::Gemini(gemini::stream::Writer::new(gemini_array)),
            Dialect::Bedrock => Writer::Bedrock(bedrock::stream::Writer::default()),
        }
    }
}

impl StreamTranslator {
    /// `client_usage`: an OpenAI client asked for a usage chunk; `created`: the response's
    /// Unix time for OpenAI chunks.
    pub fn new(pair: Pair, client_usage: bool, gemini_array: bool, created: u64) -> Self {
        StreamTranslator {
            reader: Reader::of(pair.provider()),
            writer: Writer::of(pair.client(), client_usage, gemini_array, created),
        }
    }

    /// Appends the client's events for one provider event. `o` has already read it.
    pub fn event(&mut self, e: &SseEvent<'_>, o: &Observed, out: &mut Vec<u8>) {
        let writer = &mut self.writer;
        let mut emit = |ev: Event<'_>| writer.write(ev, o, out);
        self.reader.read(e, &mut emit);
    }

    /// As [`StreamTranslator::event`], with every normalised event handed to `filter`, which
    /// writes what it lets through (changed, held for later, or more than one) with the
    /// writer it is given.
    pub fn event_filtered(
        &mut self,
        e: &SseEvent<'_>,
        o: &Observed,
        out: &mut Vec<u8>,
        filter: &mut EventFilter<'_>,
    ) {
        let writer = &mut self.writer;
        let mut write = |ev: Event<'_>| writer.write(ev, o, out);
        let mut emit = |ev: Event<'_>| filter(ev, &mut write);
        self.reader.read(e, &mut emit);
    }

    /// Writes events of the filter's own (what it still holds) before the stream is closed.
    pub fn write(&mut self, ev: Event<'_>, o: &Observed, out: &mut Vec<u8>) {
        self.writer.write(ev, o, out);
    }

    /// The provider's body ended: appends whatever the client's dialect needs to close a
    /// stream that was answered in full (it said why it ended, or its dialect ends with the
    /// body) but not closed by the provider in its own words.
    pub fn finish(&mut self, o: &Observed, out: &mut Vec<u8>) {
        let ends_with_body =
            matches!(self.reader, Reader::Gemini(_)) && gemini::stream::Reader::ENDS_WITH_BODY;
        if ends_with_body || self.writer.finished() {
            self.writer.end(o, out);
        }
    }
}
