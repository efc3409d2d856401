//! The guard phase (after read_body, before parse_fields): a key with guardrails has its
//! request's text checked by `crate::guard` — redacted in place, so every later phase (the
//! cache key, translation, the bytes forwarded) sees only the redacted body, or refused with
//! a 400 in the client's dialect naming the rule. The request's guard session then rides in
//! the meter to the answer (placeholders to restore, rules for the answer) and to the audit
//! record (what fired).

use super::{Conn, Snapshot};
use crate::config::snapshot::KeyId;
use crate::error::{ErrorKind, GatewayError};
use crate::guard::{Session, Side};
use crate::telemetry::record::{GuardHit, GuardNote};

pub(super) fn guard_request(snap: &Snapshot, c: &mut Conn, key: KeyId) -> Result<(), GatewayError> {
    let Some(g) = &snap.keys[key.0 as usize].guard else {
        return Ok(());
    };
    let mut s = Box::new(Session::new(g.clone()));
    let result = if g.on(Side::Request) {
        s.guard_body(Side::Request, &c.buf[c.body.clone()])
    } else {
        Ok(None)
    };
    let outcome = match result {
        Ok(None) => Ok(()),
        Ok(Some(body)) => {
            // The redacted body replaces the client's in the connection buffer; a pipelined
            // request after it moves with it.
            let (old, new) = (c.body.len(), body.len());
            c.buf.splice(c.body.clone(), body);
            c.body.end = c.body.start + new;
            c.next = c.next + new - old;
            Ok(())
        }
        Err(_) => Err(GatewayError::new(
            ErrorKind::GuardrailBlocked,
            crate::stream::guarded::blocked_message(&s),
        )),
    };
    c.meter.guard = Some(s);
    outcome
}

/// What the request's guardrails did, for its audit record (empty when its key has none).
pub(super) fn note(c: &Conn) -> GuardNote {
    let mut note = GuardNote::default();
    let Some(s) = &c.meter.guard else {
        return note;
    };
    for count in s.counts.iter().take(GuardNote::MAX) {
        note.hits[usize::from(note.n)] = GuardHit {
            rule: count.rule,
            detector: count.det,
            response: count.side == Side::Response,
            count: count.n,
        };
        note.n += 1;
    }
    note
}
