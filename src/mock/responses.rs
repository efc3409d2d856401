//! The mock's OpenAI Responses API answers (`…/responses`), shaped like api.openai.com's
//! 2025-09 wire (`tests/fixtures/corpus/openai/responses*`): `event:` lines, a
//! `sequence_number` on every event, usage only in `response.completed`. Held to the captures
//! by `loadtest/tests/mock_wire.rs`.

use super::render::{Events, Plan, full_text, token_text, tool_arguments, tool_fragment};
use crate::dialect::Dialect;
use crate::dialect::responses::Stored;
use crate::json;

/// The response object, `in_progress` (no output, `usage: null`) or complete.
fn responses_object(plan: &Plan<'_>, complete: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":\"resp_mock-");
    out.extend_from_slice(plan.id.as_bytes());
    out.extend_from_slice(b"\",\"object\":\"response\",\"created_at\":");
    json::uint(out, plan.created);
    out.extend_from_slice(if complete {
        b",\"status\":\"completed\""
    } else {
        b",\"status\":\"in_progress\""
    });
    out.extend_from_slice(
        b",\"background\":false,\"error\":null,\"incomplete_details\":null,\"instructions\":null,\"max_output_tokens\":null,\"model\":",
    );
    json::string(out, plan.model.as_bytes());
    out.extend_from_slice(b",\"output\":[");
    if complete {
        responses_item(plan, true, out);
    }
    out.extend_from_slice(
        b"],\"parallel_tool_calls\":true,\"previous_response_id\":null,\"service_tier\":\"default\",\"store\":true,\"temperature\":1.0,\"text\":{\"format\":{\"type\":\"text\"},\"verbosity\":\"medium\"},\"tool_choice\":\"auto\",\"top_p\":1.0,\"truncation\":\"disabled\",\"usage\":",
    );
    if complete {
        out.extend_from_slice(b"{\"input_tokens\":");
        json::uint(out, plan.prompt_tokens);
        out.extend_from_slice(b",\"input_tokens_details\":{\"cached_tokens\":");
        json::uint(out, plan.cached_tokens);
        out.extend_from_slice(b"},\"output_tokens\":");
        json::uint(out, plan.completion_tokens());
        out.extend_from_slice(b",\"output_tokens_details\":{\"reasoning_tokens\":");
        json::uint(out, u64::from(plan.reasoning_tokens));
        out.extend_from_slice(b"},\"total_tokens\":");
        json::uint(out, plan.total_tokens());
        out.push(b'}');
    } else {
        out.extend_from_slice(b"null");
    }
    out.extend_from_slice(b",\"user\":null,\"metadata\":{}}");
}

/// The one output item: the message (text) or the function call; `done` with its content.
fn responses_item(plan: &Plan<'_>, done: bool, out: &mut Vec<u8>) {
    let status: &[u8] = if done { b"completed" } else { b"in_progress" };
    match plan.tool {
        None => {
            out.extend_from_slice(b"{\"id\":\"msg_mock-");
            out.extend_from_slice(plan.id.as_bytes());
            out.extend_from_slice(b"\",\"type\":\"message\",\"status\":\"");
            out.extend_from_slice(status);
            out.extend_from_slice(b"\",\"content\":[");
            if done {
                responses_text_part(plan, true, out);
            }
            out.extend_from_slice(b"],\"role\":\"assistant\"}");
        }
        Some(name) => {
            out.extend_from_slice(b"{\"id\":\"fc_mock-");
            out.extend_from_slice(plan.id.as_bytes());
            out.extend_from_slice(b"\",\"type\":\"function_call\",\"status\":\"");
            out.extend_from_slice(status);
            out.extend_from_slice(b"\",\"arguments\":");
            let mut args = Vec::new();
            if done {
                tool_arguments(&mut args, plan.tokens, plan.token_bytes);
            }
            json::string(out, &args);
            out.extend_from_slice(b",\"call_id\":\"call_mock_");
            out.extend_from_slice(plan.id.as_bytes());
            out.extend_from_slice(b"\",\"name\":");
            json::string(out, name.as_bytes());
            out.push(b'}');
        }
    }
}

fn responses_text_part(plan: &Plan<'_>, done: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"",
    );
    if done {
        full_text(out, plan.tokens, plan.token_bytes);
    }
    out.extend_from_slice(b"\"}");
}

pub(super) fn json(plan: &Plan<'_>, out: &mut Vec<u8>) {
    responses_object(plan, true, out);
    if plan.malformed {
        out.truncate(out.len() / 2);
    }
}

/// `event: <type>` and the data's start, through `"sequence_number":N`.
fn responses_event(ev: &mut Events, ty: &[u8]) {
    let seq = ev.len();
    ev.buf.extend_from_slice(b"event: ");
    ev.buf.extend_from_slice(ty);
    ev.buf.extend_from_slice(b"\ndata: {\"type\":\"");
    ev.buf.extend_from_slice(ty);
    ev.buf.extend_from_slice(b"\",\"sequence_number\":");
    json::uint(&mut ev.buf, seq as u64);
}

/// `"item_id":"…","output_index":0` for the one item.
fn responses_item_ref(plan: &Plan<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(if plan.tool.is_some() {
        b",\"item_id\":\"fc_mock-"
    } else {
        b",\"item_id\":\"msg_mock-"
    });
    out.extend_from_slice(plan.id.as_bytes());
    out.extend_from_slice(b"\",\"output_index\":0");
}

pub(super) fn stream(plan: &Plan<'_>, ev: &mut Events) {
    let n = plan.tokens;
    let last = n - 1;
    for (ty, _) in [(&b"response.created"[..], 0), (b"response.in_progress", 1)] {
        responses_event(ev, ty);
        ev.buf.extend_from_slice(b",\"response\":");
        responses_object(plan, false, &mut ev.buf);
        ev.buf.extend_from_slice(b"}\n\n");
        ev.end(0, 0);
    }
    responses_event(ev, b"response.output_item.added");
    ev.buf.extend_from_slice(b",\"output_index\":0,\"item\":");
    responses_item(plan, false, &mut ev.buf);
    ev.buf.extend_from_slice(b"}\n\n");
    ev.end(0, 0);
    if plan.tool.is_none() {
        responses_event(ev, b"response.content_part.added");
        responses_item_ref(plan, &mut ev.buf);
        ev.buf.extend_from_slice(b",\"content_index\":0,\"part\":");
        responses_text_part(plan, false, &mut ev.buf);
        ev.buf.extend_from_slice(b"}\n\n");
        ev.end(0, 0);
    }
    let mut piece = Vec::with_capacity(64);
    for k in 0..n {
        piece.clear();
        match plan.tool {
            None => {
                token_text(&mut piece, k, plan.token_bytes);
                responses_event(ev, b"response.output_text.delta");
                responses_item_ref(plan, &mut ev.buf);
                ev.buf.extend_from_slice(b",\"content_index\":0,\"delta\":");
                json::string(&mut ev.buf, &piece);
                ev.buf.extend_from_slice(b",\"logprobs\":[]}\n\n");
            }
            Some(_) => {
                tool_fragment(&mut piece, k, n, plan.token_bytes);
                responses_event(ev, b"response.function_call_arguments.delta");
                responses_item_ref(plan, &mut ev.buf);
                ev.buf.extend_from_slice(b",\"delta\":");
                json::string(&mut ev.buf, &piece);
                ev.buf.extend_from_slice(b"}\n\n");
            }
        }
        ev.end(k, k + 1);
        if plan.malformed && k == 0 {
            responses_event(ev, b"response.output_text.delta");
            ev.buf.extend_from_slice(b",\"delta\":\"tru\n\n");
            ev.end(k, k + 1);
        }
    }
    if plan.truncate {
        return;
    }
    match plan.tool {
        None => {
            let mut text = Vec::new();
            full_text(&mut text, n, plan.token_bytes);
            responses_event(ev, b"response.output_text.done");
            responses_item_ref(plan, &mut ev.buf);
            ev.buf.extend_from_slice(b",\"content_index\":0,\"text\":");
            json::string(&mut ev.buf, &text);
            ev.buf.extend_from_slice(b",\"logprobs\":[]}\n\n");
            ev.end(last, n);
            responses_event(ev, b"response.content_part.done");
            responses_item_ref(plan, &mut ev.buf);
            ev.buf.extend_from_slice(b",\"content_index\":0,\"part\":");
            responses_text_part(plan, true, &mut ev.buf);
            ev.buf.extend_from_slice(b"}\n\n");
            ev.end(last, n);
        }
        Some(_) => {
            let mut args = Vec::new();
            tool_arguments(&mut args, n, plan.token_bytes);
            responses_event(ev, b"response.function_call_arguments.done");
            responses_item_ref(plan, &mut ev.buf);
            ev.buf.extend_from_slice(b",\"arguments\":");
            json::string(&mut ev.buf, &args);
            ev.buf.extend_from_slice(b"}\n\n");
            ev.end(last, n);
        }
    }
    responses_event(ev, b"response.output_item.done");
    ev.buf.extend_from_slice(b",\"output_index\":0,\"item\":");
    responses_item(plan, true, &mut ev.buf);
    ev.buf.extend_from_slice(b"}\n\n");
    ev.end(last, n);
    responses_event(ev, b"response.completed");
    ev.buf.extend_from_slice(b",\"response\":");
    responses_object(plan, true, &mut ev.buf);
    ev.buf.extend_from_slice(b"}\n\n");
    ev.mark_usage();
    ev.end(last, n);
}

/// A call on a stored response: the mock stores nothing, but every id it issued
/// (`resp_mock-…`) stands for a completed text response of [`super::BUILTIN_TOKENS`] tokens,
/// rebuilt from the id. Others are 404, as OpenAI answers an unknown id. A cancel is refused:
/// the mock makes no background responses. Returns the status; the body goes to `out`.
pub(super) fn stored(
    id: &[u8],
    call: Stored,
    delete: bool,
    created: u64,
    out: &mut Vec<u8>,
) -> u16 {
    let Some(serial) = id
        .strip_prefix(b"resp_mock-")
        .and_then(|s| std::str::from_utf8(s).ok())
    else {
        let msg = format!(
            "Response with id '{}' not found.",
            String::from_utf8_lossy(id)
        );
        super::render::error_body_coded(Dialect::Responses, 404, &msg, None, out);
        return 404;
    };
    match (call, delete) {
        (Stored::Response, false) => {
            let plan = Plan {
                api: &super::Api::Responses,
                model: STORED_MODEL,
                id: serial,
                created,
                prompt_tokens: 4,
                cached_tokens: 0,
                tokens: super::BUILTIN_TOKENS,
                reasoning_tokens: 0,
                token_bytes: super::render::Tokens::default(),
                tool: None,
                include_usage: true,
                malformed: false,
                truncate: false,
                inputs: 1,
                dimensions: 0,
                texts: &[],
            };
            responses_object(&plan, true, out);
        }
        (Stored::Response, true) => {
            out.extend_from_slice(b"{\"id\":");
            json::string(out, id);
            out.extend_from_slice(b",\"object\":\"response\",\"deleted\":true}");
        }
        (Stored::InputItems, _) => {
            let mut item = b"msg_mock-".to_vec();
            item.extend_from_slice(serial.as_bytes());
            item.extend_from_slice(b"-input");
            out.extend_from_slice(b"{\"object\":\"list\",\"data\":[{\"id\":");
            json::string(out, &item);
            out.extend_from_slice(
                b",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":\"input_text\",\"text\":\"hello\"}],\"role\":\"user\"}],\"first_id\":",
            );
            json::string(out, &item);
            out.extend_from_slice(b",\"last_id\":");
            json::string(out, &item);
            out.extend_from_slice(b",\"has_more\":false}");
        }
        (Stored::Cancel, _) => {
            let msg = "Cannot cancel a synchronous response.";
            super::render::error_body_coded(Dialect::Responses, 400, msg, None, out);
            return 400;
        }
    }
    200
}

/// The model a stored response of the mock's names.
const STORED_MODEL: &str = "mock-stored";
