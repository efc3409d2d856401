//! The relay's tap: every byte of a response body passes through [`Meter::pass`] on its way to
//! the client, and comes out as the bytes the client should see, while the dialect reads
//! usage, the finish reason and ids from it.
//!
//! - **SSE** bodies go through the incremental [`SseScanner`]; each event's data is handed to
//!   the dialect borrowed from the relay's buffer (no copy, unless it straddles two reads).
//! - **Stripping.** When the gateway asked the upstream for usage on the client's behalf
//!   (`stream_options.include_usage`), the usage-only chunk must not reach the client. Then
//!   the meter forwards whole events only: bytes of an event still incomplete at the end of a
//!   read are held until its blank line arrives (events are flushed whole by providers, so
//!   this holds nothing back in practice), the usage chunk is dropped, and the
//!   `"usage":null` member OpenAI adds to every other chunk is taken out. Otherwise bytes
//!   pass through untouched, at once.
//! - **JSON** bodies are kept (up to [`JSON_KEEP_BYTES`], then only a tail — usage sits at
//!   the end) and read once complete.
//! - Optionally the client-visible body is hashed (SHA-256) for the audit record.
//!
//! - **Output limit** (`cut_stream_at_cap`): with [`Meter::limit_output`] set, whole events
//!   only are forwarded (as when stripping), and once the content relayed passes the limit,
//!   that event and everything after it is *deferred* — read and counted, not forwarded —
//!   until the relay either raises the limit ([`Meter::raise_limit`], which forwards what
//!   was deferred) or ends the stream itself ([`Meter::discard_deferred`]).
//!
//! - **Translation** ([`Meter::translate`], [`Meter::translate_error`]): for a client of
//!   another dialect, each whole event is handed to a [`StreamTranslator`] and only its output
//!   reaches the client; a JSON body (answer or error) is kept whole (up to
//!   [`TRANSLATE_MAX_BYTES`]) and translated once complete. The dialect reading usage is the
//!   provider's.
//!
//! A scanner failure (an event over the size bound) stops metering, never the relay: the rest
//! passes through and the record is settled from an estimate. (With an output limit, that
//! also ends the limit: content can no longer be counted, so the stream is left alone.) A
//! translated body cannot pass through untranslated: there a failure ends the relay with an
//! error ([`Meter::translation_failed`]).

use super::guarded::{AnswerGuard, blocked_message};
use crate::dialect::Dialect;
use crate::guard::{Session, Side};
use crate::json::Scratch;
use crate::sse::{SseEvent, SseScanner};
use crate::translate::stream::StreamTranslator;
use crate::translate::{Pair, response};
use crate::usage::Observed;

/// A JSON body to translate is kept whole up to this size; a larger one is refused.
pub const TRANSLATE_MAX_BYTES: usize = 16 * 1024 * 1024;

/// A JSON body is kept whole up to this size for reading once it is complete.
pub const JSON_KEEP_BYTES: usize = 1024 * 1024;
/// Past [`JSON_KEEP_BYTES`], only this much of the end is kept.
pub const JSON_TAIL_BYTES: usize = 64 * 1024;
/// The member OpenAI adds to every chunk of an `include_usage` stream but the last.
const USAGE_NULL: &[u8] = b",\"usage\":null";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Not metered (not a model response, or an error status).
    Off,
    Sse,
    Json,
    /// An error body to translate (not metered).
    Error,
}

/// Per-connection metering state, reset for each response.
pub struct Meter {
    mode: Mode,
    dialect: Dialect,
    strip_usage: bool,
    scanner: SseScanner,
    /// Strip mode: bytes of the pending (incomplete) event, not yet forwarded.
    held: Vec<u8>,
    /// JSON mode: the body so far (or its tail).
    body: Vec<u8>,
    body_cut: bool,
    failed: bool,
    ended: bool,
    pub observed: Observed,
    hash: Option<ring::digest::Context>,
    /// Usage-only chunks removed from the client's stream.
    pub stripped_events: u32,
    /// Content bytes the client may receive (`None`: no limit).
    content_limit: Option<u64>,
    /// Events read past the limit, held back (already counted in `observed`).
    deferred: Vec<u8>,
    /// Per deferred event: where it ends in `deferred`, and the content bytes read up to and
    /// including it.
    deferred_marks: Vec<(usize, u64)>,
    /// A stream translated for the client.
    translator: Option<StreamTranslator>,
    /// A JSON body translated for the client: the pair, `created` for OpenAI, the error
    /// status (`Mode::Error`).
    json_pair: Option<(Pair, u64, u16)>,
    /// Why the body could not be translated.
    translation_failed: Option<String>,
    /// The provider's body as received, kept for the response cache (up to a bound; past it,
    /// dropped).
    record: Option<Vec<u8>>,
    record_max: usize,
    /// The request's guardrails (its key has some): set by the guard phase for the whole
    /// request, kept across attempts (`reset` leaves it), read for the audit record.
    pub guard: Option<Box<Session>>,
    /// The answer is guarded: a JSON body is kept whole and guarded once complete.
    guard_json: bool,
    /// The answer is guarded: a stream's normalised events pass through this.
    answer_guard: Option<AnswerGuard>,
    /// A rule blocked a JSON answer (nothing of it was forwarded): what the client is told.
    guard_blocked: Option<String>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("mode", &self.mode)
            .field("observed", &self.observed)
            .finish_non_exhaustive()
    }
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            mode: Mode::Off,
            dialect: Dialect::OpenAi,
            strip_usage: false,
            scanner: SseScanner::default(),
            held: Vec::new(),
            body: Vec::new(),
            body_cut: false,
            failed: false,
            ended: false,
            observed: Observed::default(),
            hash: None,
            stripped_events: 0,
            content_limit: None,
            deferred: Vec::new(),
            deferred_marks: Vec::new(),
            translator: None,
            json_pair: None,
            translation_failed: None,
            record: None,
            record_max: 0,
            guard: None,
            guard_json: false,
            answer_guard: None,
            guard_blocked: None,
        }
    }
}

impl Meter {
    /// Forgets the previous response (keeping buffer capacity, shrinking big buffers).
    pub fn reset(&mut self) {
        self.mode = Mode::Off;
        self.scanner.reset();
        self.held.clear();
        self.body.clear();
        if self.body.capacity() > JSON_TAIL_BYTES {
            self.body.shrink_to(4096);
        }
        self.body_cut = false;
        self.failed = false;
        self.ended = false;
        self.observed = Observed::default();
        self.hash = None;
        self.stripped_events = 0;
        self.content_limit = None;
        self.deferred.clear();
        self.deferred_marks.clear();
        self.translator = None;
        self.json_pair = None;
        self.translation_failed = None;
        self.record = None;
        self.guard_json = false;
        self.answer_guard = None;
        self.guard_blocked = None;
    }

    /// Starts metering a response body. `sse`: the body is an event stream; `strip_usage`:
    /// remove the usage-only chunk (the client did not ask for it); `hash`: SHA-256 the
    /// client-visible body.
    pub fn start(&mut self, dialect: Dialect, sse: bool, strip_usage: bool, hash: bool) {
        self.reset();
        self.dialect = dialect;
        self.mode = if sse { Mode::Sse } else { Mode::Json };
        if sse && dialect == Dialect::Bedrock {
            self.scanner.set_binary();
        }
        self.strip_usage = sse && strip_usage;
        if hash {
            self.hash = Some(ring::digest::Context::new(&ring::digest::SHA256));
        }
    }

    /// Translates the body (started with the provider's dialect) for a client of the other
    /// dialect of `pair`. `client_usage`: an OpenAI client asked for the usage chunk;
    /// `gemini_array`: a Gemini client asked for a stream as one JSON array (no `alt=sse`);
    /// `created`: Unix time for OpenAI's `created`.
    pub fn translate(&mut self, pair: Pair, client_usage: bool, gemini_array: bool, created: u64) {
        match self.mode {
            Mode::Sse => {
                self.translator = Some(StreamTranslator::new(
                    pair,
                    client_usage,
                    gemini_array,
                    created,
                ));
                self.strip_usage = false;
            }
            Mode::Json => self.json_pair = Some((pair, created, 0)),
            Mode::Off | Mode::Error => {}
        }
    }

    /// Starts reading an error response (status `status`) to translate for the client of
    /// `pair`; not metered.
    pub fn translate_error(&mut self, pair: Pair, status: u16, hash: bool) {
        self.reset();
        self.mode = Mode::Error;
        self.json_pair = Some((pair, 0, status));
        if hash {
            self.hash = Some(ring::digest::Context::new(&ring::digest::SHA256));
        }
    }

    /// Whether the request's guardrails look at answers.
    pub fn guards_answers(&self) -> bool {
        self.guard
            .as_ref()
            .is_some_and(|s| s.guard.on(Side::Response))
    }

    /// Guards the answer (call after [`Meter::start`] and, for a stream, after
    /// [`Meter::translate`] — a guarded stream is always translated, to its own dialect when
    /// need be).
    pub fn guard_answer(&mut self) {
        match self.mode {
            Mode::Sse if self.translator.is_some() => {
                self.answer_guard = Some(AnswerGuard::default());
            }
            Mode::Json => self.guard_json = true,
            _ => {}
        }
    }

    /// A rule blocked the (JSON) answer: what the client is told.
    pub fn guard_blocked(&self) -> Option<&str> {
        self.guard_blocked.as_deref()
    }

    /// The body could not be translated (and nothing of it was forwarded): why.
    pub fn translation_failed(&self) -> Option<&str> {
        self.translation_failed.as_deref()
    }

    /// Keeps the provider's body as it arrives (up to `max` bytes) for [`Meter::recorded`].
    /// Call after [`Meter::start`].
    pub fn record(&mut self, max: usize) {
        self.record = Some(Vec::new());
        self.record_max = max;
    }

    /// The provider's whole body, in its dialect, and whether it is an event stream — when it
    /// was recorded and fit.
    pub fn recorded(&self) -> Option<(Dialect, bool, &[u8])> {
        let b = self.record.as_deref()?;
        Some((self.dialect, self.mode == Mode::Sse, b))
    }

    /// Passes response body bytes: appends to `out` what the client should see of `data`.
    pub fn pass(&mut self, data: &[u8], out: &mut Vec<u8>, scratch: &mut Scratch) {
        let at = out.len();
        if let Some(r) = &mut self.record {
            if r.len() + data.len() <= self.record_max {
                r.extend_from_slice(data);
            } else {
                self.record = None;
            }
        }
        match self.mode {
            Mode::Off => out.extend_from_slice(data),
            Mode::Json | Mode::Error
                if self.json_pair.is_some() || (self.mode == Mode::Json && self.guard_json) =>
            {
                if self.body.len() + data.len() > TRANSLATE_MAX_BYTES {
                    self.translation_failed.get_or_insert_with(|| {
                        format!(
                            "the provider's response is larger than the {} MiB the gateway \
                             translates",
                            TRANSLATE_MAX_BYTES >> 20
                        )
                    });
                } else {
                    self.body.extend_from_slice(data);
                }
            }
            Mode::Error => out.extend_from_slice(data),
            Mode::Sse if self.failed && self.translator.is_some() => {}
            Mode::Json => {
                out.extend_from_slice(data);
                self.keep_json(data, scratch);
            }
            Mode::Sse if self.failed => out.extend_from_slice(data),
            Mode::Sse
                if !self.strip_usage
                    && self.content_limit.is_none()
                    && self.translator.is_none() =>
            {
                out.extend_from_slice(data);
                let (dialect, obs) = (self.dialect, &mut self.observed);
                let r = self.scanner.feed(data, |e: &SseEvent<'_>| {
                    dialect.observe_event(e, obs, scratch);
                });
                self.failed = r.is_err();
            }
            Mode::Sse => self.pass_events(data, out, scratch),
        }
        if let Some(h) = &mut self.hash {
            h.update(&out[at..]);
        }
    }

    /// Whole events only: usage chunks dropped (when stripping), events past the output limit
    /// deferred.
    fn pass_events(&mut self, data: &[u8], out: &mut Vec<u8>, scratch: &mut Scratch) {
        let Meter {
            dialect,
            scanner,
            held,
            observed,
            stripped_events,
            strip_usage,
            content_limit,
            deferred,
            deferred_marks,
            translator,
            guard,
            answer_guard,
            ..
        } = self;
        let mut from = 0;
        let r = scanner.feed(data, |e: &SseEvent<'_>| {
            let drop = dialect.observe_event(e, observed, scratch) && *strip_usage;
            if drop {
                *stripped_events += 1;
            } else {
                let over = !deferred.is_empty()
                    || content_limit.is_some_and(|l| observed.content_bytes > l);
                let to = if over { &mut *deferred } else { &mut *out };
                let at = to.len();
                if let (Some(t), Some(g), Some(s)) =
                    (&mut *translator, &mut *answer_guard, &mut *guard)
                {
                    t.event_filtered(e, observed, to, &mut |ev, w| g.filter(s, ev, w));
                } else if let Some(t) = translator {
                    t.event(e, observed, to);
                } else {
                    to.extend_from_slice(held);
                    to.extend_from_slice(&data[from..e.end]);
                }
                // With include_usage, OpenAI adds `"usage":null` to every other chunk; a
                // client that did not ask for usage never sees that member either.
                if *strip_usage && let Some(i) = memchr::memmem::rfind(&to[at..], USAGE_NULL) {
                    to.drain(at + i..at + i + USAGE_NULL.len());
                }
                if over {
                    deferred_marks.push((deferred.len(), observed.content_bytes));
                }
            }
            held.clear();
            from = e.end;
        });
        if let (Err(e), Some(_)) = (r, &self.translator) {
            // Bytes of the provider's dialect cannot go to this client.
            self.failed = true;
            self.held.clear();
            self.translation_failed = Some(match e {
                crate::sse::SseError::EventTooLarge(_) => {
                    "the provider sent an event too large to translate".to_owned()
                }
                crate::sse::SseError::Corrupt(why) => format!("the provider sent {why}"),
            });
            return;
        }
        if r.is_err() {
            // Give up on events: forward everything from here on (content can no longer be
            // counted, so an output limit cannot be kept either).
            self.failed = true;
            self.content_limit = None;
            self.deferred_marks.clear();
            out.append(&mut self.deferred);
            out.extend_from_slice(&self.held);
            self.held.clear();
            out.extend_from_slice(&data[from..]);
            return;
        }
        self.held.extend_from_slice(&data[from..]);
    }

    /// Limits the content bytes (text, tool arguments, reasoning) forwarded to the client; see
    /// the module docs. Call after [`Meter::start`], for an SSE response.
    pub fn limit_output(&mut self, content_bytes: u64) {
        if self.mode == Mode::Sse && !self.failed {
            self.content_limit = Some(content_bytes);
        }
    }

    /// The content relayed has passed the limit: events are being deferred.
    pub fn over_limit(&self) -> bool {
        self.content_limit
            .is_some_and(|l| self.observed.content_bytes > l)
            || !self.deferred.is_empty()
    }

    /// Raises the output limit and forwards into `out` the deferred events now within it, in
    /// order. True when nothing is deferred any more.
    pub fn raise_limit(&mut self, content_bytes: u64, out: &mut Vec<u8>) -> bool {
        self.content_limit = Some(content_bytes);
        let fit = self
            .deferred_marks
            .iter()
            .take_while(|m| m.1 <= content_bytes)
            .count();
        if fit > 0 {
            let end = self.deferred_marks[fit - 1].0;
            let at = out.len();
            out.extend_from_slice(&self.deferred[..end]);
            if let Some(h) = &mut self.hash {
                h.update(&out[at..]);
            }
            self.deferred.drain(..end);
            self.deferred_marks.drain(..fit);
            for m in &mut self.deferred_marks {
                m.0 -= end;
            }
        }
        self.deferred.is_empty()
    }

    /// Appends bytes of the gateway's own to the client's body (hashed like the rest).
    pub fn add_own(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(bytes);
        if let Some(h) = &mut self.hash {
            h.update(bytes);
        }
    }

    /// Drops the deferred events and whatever is still held: the relay is ending the stream
    /// with its own last event. (They were counted: the provider generated them.)
    pub fn discard_deferred(&mut self) {
        self.deferred.clear();
        self.deferred_marks.clear();
        self.held.clear();
    }

    fn keep_json(&mut self, data: &[u8], scratch: &mut Scratch) {
        if self.body.len() + data.len() <= JSON_KEEP_BYTES {
            self.body.extend_from_slice(data);
            return;
        }
        if !self.body_cut {
            // Read the head (ids, model) before the window starts to slide.
            self.dialect
                .observe_body(&self.body, &mut self.observed, scratch);
            self.observed = crate::usage::Observed {
                response_id: self.observed.response_id,
                response_model: self.observed.response_model,
                ..crate::usage::Observed::default()
            };
            self.body_cut = true;
        }
        self.body.extend_from_slice(data);
        if self.body.len() > 2 * JSON_TAIL_BYTES {
            let cut = self.body.len() - JSON_TAIL_BYTES;
            self.body.drain(..cut);
        }
    }

    /// The body ended (completely or not). Appends to `out` what is still held for the client
    /// (`out` = None when the stream is being abandoned), and reads a final event that lacked
    /// its blank line, or the JSON body. Idempotent.
    pub fn end(&mut self, out: Option<&mut Vec<u8>>, scratch: &mut Scratch) {
        if self.ended {
            return;
        }
        self.ended = true;
        match self.mode {
            Mode::Off => {}
            Mode::Json | Mode::Error
                if self.json_pair.is_some() || (self.mode == Mode::Json && self.guard_json) =>
            {
                if self.mode == Mode::Json {
                    self.dialect
                        .observe_body(&self.body, &mut self.observed, scratch);
                }
                let (Some(out), None) = (out, &self.translation_failed) else {
                    return;
                };
                let at = out.len();
                match self.json_pair {
                    Some((pair, _, status)) if self.mode == Mode::Error => {
                        response::error(pair, status, &self.body, scratch, out);
                    }
                    Some((pair, created, _)) => {
                        if let Err(why) = response::translate(
                            pair,
                            &self.body,
                            &self.observed,
                            created,
                            scratch,
                            out,
                        ) {
                            out.truncate(at);
                            self.translation_failed = Some(why);
                        }
                    }
                    None => out.extend_from_slice(&self.body),
                }
                if self.guard_json
                    && self.translation_failed.is_none()
                    && let Some(s) = &mut self.guard
                {
                    match s.guard_body(Side::Response, &out[at..]) {
                        Ok(None) => {}
                        Ok(Some(new)) => {
                            out.truncate(at);
                            out.extend_from_slice(&new);
                        }
                        Err(_) => {
                            out.truncate(at);
                            self.guard_blocked = Some(blocked_message(s));
                        }
                    }
                }
                if let Some(h) = &mut self.hash {
                    h.update(&out[at..]);
                }
            }
            Mode::Error => {}
            Mode::Json => {
                // A tail may start mid-value; the key visitor does not need the start.
                self.dialect
                    .observe_body(&self.body, &mut self.observed, scratch);
            }
            Mode::Sse if self.translator.is_some() => {
                let (dialect, obs) = (self.dialect, &mut self.observed);
                let mut tail = Vec::new();
                if let Some(t) = &mut self.translator
                    && !self.failed
                {
                    let (guard, answer_guard) = (&mut self.guard, &mut self.answer_guard);
                    self.scanner.finish(|e: &SseEvent<'_>| {
                        dialect.observe_event(e, obs, scratch);
                        match (&mut *answer_guard, &mut *guard) {
                            (Some(g), Some(s)) => {
                                t.event_filtered(e, obs, &mut tail, &mut |ev, w| {
                                    g.filter(s, ev, w)
                                });
                            }
                            _ => t.event(e, obs, &mut tail),
                        }
                    });
                    if let (Some(g), Some(s)) = (answer_guard, guard) {
                        g.flush(s, &mut |ev| t.write(ev, obs, &mut tail));
                    }
                    if !self.answer_guard.as_ref().is_some_and(|g| g.stopped) {
                        t.finish(obs, &mut tail);
                    }
                }
                self.held.clear();
                let Some(out) = out else { return };
                if self.over_limit() {
                    if !tail.is_empty() {
                        self.deferred.extend_from_slice(&tail);
                        self.deferred_marks
                            .push((self.deferred.len(), self.observed.content_bytes));
                    }
                } else {
                    out.extend_from_slice(&tail);
                    if let Some(h) = &mut self.hash {
                        h.update(&tail);
                    }
                }
            }
            Mode::Sse => {
                let (dialect, obs) = (self.dialect, &mut self.observed);
                let mut drop = false;
                if !self.failed {
                    self.scanner.finish(|e: &SseEvent<'_>| {
                        drop = dialect.observe_event(e, obs, scratch);
                    });
                }
                if let Some(out) = out {
                    if drop && self.strip_usage {
                        self.stripped_events += 1;
                    } else if self.over_limit() {
                        if !self.held.is_empty() {
                            self.deferred.extend_from_slice(&self.held);
                            self.deferred_marks
                                .push((self.deferred.len(), self.observed.content_bytes));
                        }
                    } else {
                        out.extend_from_slice(&self.held);
                        if let Some(h) = &mut self.hash {
                            h.update(&self.held);
                        }
                    }
                }
                self.held.clear();
            }
        }
    }

    pub fn is_metered(&self) -> bool {
        matches!(self.mode, Mode::Sse | Mode::Json)
    }

    /// The SHA-256 of the client-visible body, when hashing was asked for.
    pub fn digest(&mut self) -> Option<[u8; 32]> {
        let h = self.hash.take()?;
        let mut out = [0u8; 32];
        out.copy_from_slice(h.finish().as_ref());
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INCLUDE_USAGE: &[u8] = b"data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}\n\n\
data: [DONE]\n\n";

    fn run(pieces: &[&[u8]], strip: bool) -> (Vec<u8>, Observed, u32) {
        let mut m = Meter::default();
        let mut scratch = Scratch::default();
        m.start(Dialect::OpenAi, true, strip, false);
        let mut out = Vec::new();
        for p in pieces {
            m.pass(p, &mut out, &mut scratch);
        }
        m.end(Some(&mut out), &mut scratch);
        (out, m.observed, m.stripped_events)
    }

    #[test]
    fn strips_only_the_usage_chunk_at_every_split() {
        let whole = INCLUDE_USAGE;
        let usage_start = memchr::memmem::find(
            whole,
            b"data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[],",
        )
        .unwrap();
        let done = memchr::memmem::find(whole, b"data: [DONE]").unwrap();
        let mut want = String::from_utf8(whole[..usage_start].to_vec())
            .unwrap()
            .replace(",\"usage\":null", "")
            .into_bytes();
        want.extend_from_slice(&whole[done..]);
        for i in 0..=whole.len() {
            for strip in [false, true] {
                let (out, o, stripped) = run(&[&whole[..i], &whole[i..]], strip);
                let expect: &[u8] = if strip { &want } else { whole };
                assert_eq!(out, expect, "split at {i}, strip {strip}");
                assert_eq!(stripped, u32::from(strip));
                assert_eq!(o.usage.input_tokens, 7);
                assert_eq!(o.usage.output_tokens, 2);
                assert!(o.finished && o.input_reported && o.output_reported);
                assert_eq!(o.finish_reason.as_bytes(), b"stop");
                assert_eq!(o.content_bytes, 5);
            }
        }
    }

    /// Five 4-byte content events, a finish chunk, usage, `[DONE]`.
    fn counted_stream() -> (Vec<u8>, Vec<usize>) {
        let mut s = Vec::new();
        let mut ends = Vec::new();
        for w in ["abcd", "efgh", "ijkl", "mnop", "qrst"] {
            s.extend_from_slice(
                format!(
                    "data: {{\"id\":\"c1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{w}\"}}}}]}}\n\n"
                )
                .as_bytes(),
            );
            ends.push(s.len());
        }
        s.extend_from_slice(
            &INCLUDE_USAGE[memchr::memmem::find(
                INCLUDE_USAGE,
                b"data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},",
            )
            .unwrap()..],
        );
        (s, ends)
    }

    #[test]
    fn an_output_limit_defers_whole_events_past_it_at_every_split() {
        let (whole, ends) = counted_stream();
        for i in 0..=whole.len() {
            let mut m = Meter::default();
            let mut scratch = Scratch::default();
            m.start(Dialect::OpenAi, true, false, true);
            m.limit_output(10);
            let mut out = Vec::new();
            m.pass(&whole[..i], &mut out, &mut scratch);
            m.pass(&whole[i..], &mut out, &mut scratch);
            m.end(Some(&mut out), &mut scratch);
            // "abcd" + "efgh" = 8 bytes pass; "ijkl" makes 12 > 10.
            assert_eq!(out, &whole[..ends[1]], "split at {i}");
            assert!(m.over_limit());
            assert_eq!(m.observed.content_bytes, 20, "everything read is counted");
            // Not enough for all: the events that fit go out, in order.
            assert!(!m.raise_limit(11, &mut out));
            assert_eq!(out, &whole[..ends[1]]);
            assert!(!m.raise_limit(16, &mut out));
            assert_eq!(out, &whole[..ends[3]]);
            assert!(m.raise_limit(20, &mut out));
            assert_eq!(out, whole, "split at {i}");
            assert_eq!(
                m.digest().unwrap().as_ref(),
                ring::digest::digest(&ring::digest::SHA256, &whole).as_ref(),
                "the hash covers what was forwarded late"
            );
        }
        // Discarded: the gateway ends the stream itself.
        let mut m = Meter::default();
        let mut scratch = Scratch::default();
        m.start(Dialect::OpenAi, true, true, false);
        m.limit_output(4);
        let mut out = Vec::new();
        m.pass(&whole, &mut out, &mut scratch);
        m.discard_deferred();
        m.end(Some(&mut out), &mut scratch);
        assert_eq!(out, &whole[..ends[0]]);
        assert_eq!(
            m.observed.usage.output_tokens, 2,
            "the usage chunk was still read"
        );
    }

    #[test]
    fn an_oversized_event_stops_metering_not_the_relay() {
        // A hostile upstream: one event over the scanner's bound, then a usage chunk.
        let mut stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"".to_vec();
        stream.resize(
            stream.len() + crate::sse::DEFAULT_MAX_EVENT_BYTES + 10,
            b'a',
        );
        stream.extend_from_slice(b"\"}}]}\n\n");
        // The whole usage event (from its `data:`) and `[DONE]`.
        let tail = &INCLUDE_USAGE[memchr::memmem::find(
            INCLUDE_USAGE,
            b"data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[],",
        )
        .unwrap()..];
        stream.extend_from_slice(tail);
        for strip in [false, true] {
            // Control: the same tail alone is metered.
            let (_, o, _) = run(&[tail], strip);
            assert!(
                o.output_reported,
                "the tail alone reports usage (strip {strip})"
            );
            let pieces: Vec<&[u8]> = stream.chunks(64 * 1024).collect();
            let (out, o, _) = run(&pieces, strip);
            assert_eq!(
                out, stream,
                "every byte still reaches the client (strip {strip})"
            );
            assert!(
                !o.output_reported,
                "nothing is read after the failure: estimated"
            );
        }
    }

    #[test]
    fn a_stream_cut_mid_event_forwards_what_it_has() {
        let cut = &INCLUDE_USAGE[..40];
        let (out, o, _) = run(&[cut], true);
        assert_eq!(out, cut, "a partial last event is flushed at the end");
        assert!(!o.output_reported);
    }

    #[test]
    fn json_bodies_are_read_when_complete_even_past_the_window() {
        let mut body = br#"{"id":"r1","model":"emb","data":[{"embedding":["#.to_vec();
        while body.len() < JSON_KEEP_BYTES + 3 * JSON_TAIL_BYTES {
            body.extend_from_slice(b"0.0123456,");
        }
        body.extend_from_slice(br#"0.5]}],"usage":{"prompt_tokens":12,"total_tokens":12}}"#);
        let mut m = Meter::default();
        let mut scratch = Scratch::default();
        m.start(Dialect::OpenAi, false, false, true);
        let mut out = Vec::new();
        for piece in body.chunks(16 * 1024) {
            m.pass(piece, &mut out, &mut scratch);
        }
        m.end(Some(&mut out), &mut scratch);
        assert_eq!(out, body);
        let o = m.observed;
        assert_eq!(o.response_id.as_bytes(), b"r1");
        assert_eq!(o.usage.input_tokens, 12);
        assert!(o.output_reported && o.finished);
        let d = m.digest().unwrap();
        assert_eq!(
            d.as_ref(),
            ring::digest::digest(&ring::digest::SHA256, &body).as_ref()
        );
    }
}
