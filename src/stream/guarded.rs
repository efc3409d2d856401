//! A guarded answer: the normalised events of a stream pass through the key's guardrails on
//! their way to the client's writer (`crate::guard`, ARCHITECTURE.md "Guardrails").
//!
//! Text and each tool call's argument fragments are separate channels; a fragment's text
//! (escapes undone) goes into its channel and what the channel releases is written as the
//! same kind of event (escaped again), so a held tail is flushed with the next fragment, and
//! everything held is flushed before the event that ends the text — a tool call starting, the
//! finish reason, the end, an error. A tool call sent whole (Gemini's `args`) is guarded as a
//! JSON value. A blocking rule ends the client's stream with an error event in its dialect
//! naming the rule; nothing after it is written.

use crate::dialect::norm::Event;
use crate::guard::stream::Channel;
use crate::guard::{Session, Side};

/// Per stream: the channels and scratch buffers.
#[derive(Debug, Default)]
pub struct AnswerGuard {
    text: Channel,
    args: Vec<Channel>,
    raw: Vec<u8>,
    released: Vec<u8>,
    escaped: Vec<u8>,
    /// A rule blocked: nothing more is written.
    pub stopped: bool,
}

impl AnswerGuard {
    /// One normalised event through the guard.
    pub fn filter(&mut self, s: &mut Session, ev: Event<'_>, write: &mut dyn FnMut(Event<'_>)) {
        if self.stopped {
            return;
        }
        match ev {
            Event::Text(raw) => {
                let mut ch = std::mem::take(&mut self.text);
                self.fragment(s, &mut ch, raw, None, write);
                self.text = ch;
            }
            Event::ToolArgs { index, raw } => {
                let i = index as usize;
                if self.args.len() <= i {
                    self.args.resize_with(i + 1, Channel::default);
                }
                let mut ch = std::mem::take(&mut self.args[i]);
                self.fragment(s, &mut ch, raw, Some(index), write);
                self.args[i] = ch;
            }
            Event::ToolCall {
                index,
                id,
                name,
                args,
            } => {
                self.flush(s, write);
                match args {
                    Some(a) => match s.guard_value(Side::Response, a) {
                        Ok(Some(new)) => write(Event::ToolCall {
                            index,
                            id,
                            name,
                            args: Some(&new),
                        }),
                        Ok(None) => write(ev),
                        Err(_) => self.block(s, write),
                    },
                    None => write(ev),
                }
            }
            Event::Finish(_) | Event::End | Event::Error { .. } => {
                self.flush(s, write);
                if !self.stopped {
                    write(ev);
                }
            }
            Event::Start { .. } => write(ev),
        }
    }

    /// Releases everything held (the text ended).
    pub fn flush(&mut self, s: &mut Session, write: &mut dyn FnMut(Event<'_>)) {
        let mut ch = std::mem::take(&mut self.text);
        self.fragment(s, &mut ch, b"", None, write);
        let mut args = std::mem::take(&mut self.args);
        for (i, ch) in args.iter_mut().enumerate() {
            if ch.held() > 0 {
                self.fragment(s, ch, b"", Some(i as u64), write);
            }
        }
        self.args = args;
        // Channels start afresh (a later text or call is a new one).
        self.text = Channel::default();
        self.args.clear();
    }

    /// Feeds one fragment (raw JSON string contents) to `ch`; `last` when `raw` is empty.
    fn fragment(
        &mut self,
        s: &mut Session,
        ch: &mut Channel,
        raw: &[u8],
        call: Option<u64>,
        write: &mut dyn FnMut(Event<'_>),
    ) {
        if self.stopped {
            return;
        }
        let last = raw.is_empty();
        self.raw.clear();
        crate::json::unescape(raw, &mut self.raw);
        self.released.clear();
        if s.stream(Side::Response, ch, &self.raw, last, &mut self.released)
            .is_err()
        {
            self.block(s, write);
            return;
        }
        if self.released.is_empty() {
            return;
        }
        self.escaped.clear();
        crate::json::escaped(&mut self.escaped, &self.released);
        let text = self.escaped.as_slice();
        write(match call {
            None => Event::Text(text),
            Some(index) => Event::ToolArgs { index, raw: text },
        });
    }

    fn block(&mut self, s: &Session, write: &mut dyn FnMut(Event<'_>)) {
        self.stopped = true;
        let message = blocked_message(s);
        write(Event::Error {
            message: message.as_bytes(),
            kind: b"guardrail_blocked",
        });
    }
}

/// What a client is told when a rule blocked: the rule, the detector and the side, never the
/// matched text.
pub fn blocked_message(s: &Session) -> String {
    match s.blocked_names() {
        Some((rule, det, side)) => format!(
            "blocked by guardrail `{rule}` (detector `{det}`) in the {}",
            match side {
                Side::Request => "request",
                Side::Response => "answer",
            }
        ),
        None => "blocked by a guardrail".to_owned(),
    }
}
