//! Text that arrives in fragments — a streamed answer's text deltas, a tool call's argument
//! deltas — scanned with a bounded hold-back.
//!
//! Each fragment is appended to what the channel holds; the detectors' [`Guard::pending`]
//! says where the earliest candidate begins that more text could still complete (a word
//! that could be an email's local part, digits that could be a card number, `sk-` that
//! could be a key, an open PEM block, a `[EMAIL_` placeholder still arriving); a match that
//! runs across that point pulls it back to the match's start. Everything before it is
//! final: its matches are acted on and it is released at once; the rest is held for the
//! next fragment, or released at the end. So no matched value reaches the client however
//! the provider splits it, and the released text is exactly what the whole text redacted in
//! one piece gives (the tests check every split).
//!
//! What is held is bounded by the longest candidate: a trailing word (the common case, one
//! token), at most [`detect::MAX_JWT`] bytes for a token in progress, a custom pattern's
//! longest match, a deny-list's longest phrase, and [`detect::MAX_PEM`] for a private key
//! block — past that the block is replaced by its placeholder at once and the rest of it,
//! up to its end line, is dropped as it arrives.

use super::detect::{self, MAX_HOLD};
use super::{Blocked, Session, Side, placeholder_pending};

/// Bytes of released text kept as the left context of the next scan (word boundaries).
const CONTEXT: usize = 16;

/// One stream of text (the answer's text, or one tool call's arguments).
#[derive(Debug, Default)]
pub struct Channel {
    /// Context (released) followed by the held tail.
    buf: Vec<u8>,
    /// How much of `buf` is context.
    ctx: usize,
    /// Inside a private key block cut at the bound: dropping text up to its end line.
    swallowing: bool,
}

impl Channel {
    /// Bytes held back now.
    pub fn held(&self) -> usize {
        self.buf.len() - self.ctx
    }
}

impl Session {
    /// Feeds the fragment `delta` (unescaped text) of a channel on `side`; appends to `out`
    /// what can be released. `last`: the text ends here (everything held is released).
    /// `Err` when a blocking rule matched (nothing of the match was released).
    pub fn stream(
        &mut self,
        side: Side,
        ch: &mut Channel,
        delta: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Blocked> {
        ch.buf.extend_from_slice(delta);
        if ch.swallowing && !self.swallow(ch) {
            return Ok(());
        }
        let guard = self.guard.clone();
        let t = std::mem::take(&mut ch.buf);
        let n = t.len();
        let mut b = if last {
            n
        } else {
            let mut p = guard.pending(side, &t);
            if side == Side::Response && self.restoring() {
                p = p.min(placeholder_pending(&t));
            }
            p.max(ch.ctx)
        };
        let mut found = std::mem::take(&mut self.found);
        let mut hits = std::mem::take(&mut self.hits);
        guard.scan(side, &t, &mut found, &mut hits);
        hits.retain(|h| h.at.start >= ch.ctx);
        // A match across the release point is held whole.
        while let Some(h) = hits.iter().find(|h| h.at.start < b && h.at.end > b) {
            b = h.at.start;
        }
        // A private key block past the bound: redact what has come, drop the rest of it.
        let mut cut = false;
        if !last && n - b > MAX_HOLD && detect::pending(&t, detect::PRIVATE_KEY) == b {
            hits.retain(|h| h.at.start <= b);
            if let Some(h) = hits.last_mut().filter(|h| h.at.start == b) {
                h.at.end = n;
            }
            b = n;
            cut = true;
        }
        let r = self.act(side, &t, ch.ctx..b, &hits, out);
        self.found = found;
        self.hits = hits;
        // Keep the context and the held tail.
        let keep_from = b.saturating_sub(CONTEXT).max(if cut { b } else { 0 });
        ch.buf = t;
        ch.buf.drain(..keep_from);
        ch.ctx = b - keep_from;
        if cut {
            ch.swallowing = true;
            ch.buf.clear();
            ch.ctx = 0;
        }
        r.map(|_| ())
    }

    /// Drops a cut private key block's text up to its end line; true when it ended (the
    /// text after it is left in the channel).
    fn swallow(&mut self, ch: &mut Channel) -> bool {
        const END: &[u8] = b"PRIVATE KEY-----";
        match memchr::memmem::find(&ch.buf[ch.ctx..], END) {
            Some(k) => {
                ch.buf.drain(ch.ctx..ch.ctx + k + END.len());
                ch.swallowing = false;
                true
            }
            None => {
                // Keep what could be the start of the end line.
                let keep = ch.buf.len().saturating_sub(END.len() - 1).max(ch.ctx);
                ch.buf.drain(ch.ctx..keep);
                false
            }
        }
    }
}
