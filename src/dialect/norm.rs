//! The normalised form every request dialect is read into and written from: turns of parts
//! (text, images, tool calls, tool results), the system prompt, tools, and the sampling
//! settings — borrowed from the client's parsed body, nothing copied.
//!
//! Translating a request from dialect A to dialect B is A's reader then B's writer
//! (ARCHITECTURE.md, "Parts and the arrows between them"): adding a dialect costs one reader
//! and one writer. A reader refuses what its own dialect says that no normalised field holds;
//! a writer refuses what the normalised form holds that its dialect cannot say. Either names
//! the member in the client's request ([`Loc`]), built only when refusing — the happy path
//! carries small integers, not strings.

use simd_json::prelude::*;
use simd_json::tape::Value;
use std::borrow::Cow;

/// A request member the provider's dialect cannot express faithfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untranslatable {
    /// Where it is in the request, e.g. `messages[2].content[0].type`.
    pub param: String,
    pub message: String,
}

impl Untranslatable {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Untranslatable {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// What the provider's request needs besides the client's body.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The deployment's upstream model as a JSON string literal (quotes included).
    pub model_json: &'a [u8],
    /// Output tokens to ask for when the request names none (Anthropic requires a number).
    pub default_max_tokens: u32,
    /// The provider is `openai_compatible` (vLLM, Ollama, …): `max_tokens`, not
    /// `max_completion_tokens`.
    pub compatible: bool,
    /// The client asked for a stream (in the body, or — Gemini — in the path).
    pub stream: bool,
    /// The provider is Vertex AI (Anthropic's models: no `model` in the body, an
    /// `anthropic_version` instead).
    pub vertex: bool,
}

/// Where a member sits in the client's request: `messages[i].<list>[j].<tail>`, each part
/// optional (the list of messages is `input` in the Responses API, `contents` in Gemini's).
/// Rendered into a path only when something is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    /// The name of the list of messages when not `messages`.
    pub root: Option<&'static str>,
    /// The message (turn) index, when inside `messages`.
    pub message: Option<u32>,
    /// A list inside the message (`content`, `tool_calls`) or at the top (`tools`), and the
    /// index in it.
    pub list: Option<(&'static str, u32)>,
    /// The member's own name (`type`, `image_url.url`, `temperature`).
    pub tail: &'static str,
}

impl Loc {
    /// A top-level member.
    pub const fn top(name: &'static str) -> Loc {
        Loc {
            root: None,
            message: None,
            list: None,
            tail: name,
        }
    }

    /// Member `tail` of message `i`.
    pub fn message(i: usize, tail: &'static str) -> Loc {
        Loc {
            root: None,
            message: Some(i as u32),
            list: None,
            tail,
        }
    }

    /// Member `tail` of element `j` of list `list` in message `i`.
    pub fn item(i: usize, list: &'static str, j: usize, tail: &'static str) -> Loc {
        Loc {
            root: None,
            message: Some(i as u32),
            list: Some((list, j as u32)),
            tail,
        }
    }

    /// Member `tail` of element `j` of the top-level list `list`.
    pub fn listed(list: &'static str, j: usize, tail: &'static str) -> Loc {
        Loc {
            root: None,
            message: None,
            list: Some((list, j as u32)),
            tail,
        }
    }

    /// The same place, another member.
    /// The same place in a list of messages named `root` (`input`, `contents`).
    pub fn in_list(self, root: &'static str) -> Loc {
        Loc {
            root: Some(root),
            ..self
        }
    }

    pub fn with(self, tail: &'static str) -> Loc {
        Loc { tail, ..self }
    }

    /// The path as the client wrote it: `messages[2].content[0].type`.
    pub fn param(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        if let Some(i) = self.message {
            let _ = write!(s, "{}[{i}]", self.root.unwrap_or("messages"));
        }
        if let Some((list, j)) = self.list {
            if !s.is_empty() {
                s.push('.');
            }
            let _ = write!(s, "{list}[{j}]");
        }
        if !self.tail.is_empty() {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(self.tail);
        }
        s
    }

    /// A refusal of this member: "`<path>` <why>".
    pub fn refuse(&self, why: &str) -> Untranslatable {
        let param = self.param();
        let message = format!("`{param}` {why}");
        Untranslatable { param, message }
    }
}

/// Who speaks a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// An image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image<'v> {
    /// Inline bytes, base64.
    Base64 { media_type: &'v str, data: &'v str },
    /// A URL the provider fetches.
    Url(&'v str),
}

/// A tool call's arguments as the source dialect holds them.
#[derive(Clone, Copy, Debug)]
pub enum Args<'v, 'a> {
    /// A string that should hold a JSON object (OpenAI's `arguments`).
    Text(&'v str),
    /// A JSON object (Anthropic's `input`), or absent.
    Json(Option<Value<'v, 'a>>),
}

/// Text content that a dialect may write as one string or as a list of text blocks. A plain
/// string is held without allocating.
#[derive(Clone, Debug, Default)]
pub struct Texts<'v> {
    /// The source wrote one plain string (a writer keeps that form where it has one).
    one: Option<&'v str>,
    blocks: Vec<&'v str>,
}

impl<'v> Texts<'v> {
    /// One plain string.
    pub fn plain(s: &'v str) -> Self {
        Texts {
            one: Some(s),
            blocks: Vec::new(),
        }
    }

    /// A list of text blocks.
    pub fn blocks(blocks: Vec<&'v str>) -> Self {
        Texts { one: None, blocks }
    }

    pub fn is_plain(&self) -> bool {
        self.one.is_some()
    }

    /// Each text, in order.
    pub fn as_slice(&self) -> &[&'v str] {
        match &self.one {
            Some(s) => std::slice::from_ref(s),
            None => &self.blocks,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// All the text, joined.
    pub fn joined(&self) -> std::borrow::Cow<'v, str> {
        match self.as_slice() {
            [] => std::borrow::Cow::Borrowed(""),
            [s] => std::borrow::Cow::Borrowed(s),
            many => std::borrow::Cow::Owned(many.concat()),
        }
    }

    /// Appends `more`'s texts (the result is a list of blocks).
    pub fn extend(&mut self, more: Texts<'v>) {
        if let Some(s) = self.one.take() {
            self.blocks.push(s);
        }
        self.blocks.extend_from_slice(more.as_slice());
    }
}

/// One piece of a turn.
#[derive(Clone, Debug)]
pub enum Part<'v, 'a> {
    Text(&'v str),
    Image {
        image: Image<'v>,
        loc: Loc,
    },
    ToolCall {
        /// The call's id (made up by the reader when its dialect has none: Gemini's).
        id: Cow<'v, str>,
        name: &'v str,
        args: Args<'v, 'a>,
        loc: Loc,
    },
    ToolResult {
        id: Cow<'v, str>,
        content: Texts<'v>,
        /// A result that is a JSON object (Gemini's `functionResponse.response`), in place of
        /// `content`: written as its text where results are text.
        json: Option<Value<'v, 'a>>,
        loc: Loc,
    },
}

/// One turn of the conversation: its parts are `Request::parts[parts]`.
#[derive(Clone, Debug)]
pub struct Turn {
    pub role: Role,
    pub parts: std::ops::Range<usize>,
    /// The content was one plain string (a single text part).
    pub plain: bool,
    /// The turn's first message in the client's request.
    pub loc: Loc,
}

/// A tool the model may call.
#[derive(Clone, Copy, Debug)]
pub struct Tool<'v, 'a> {
    pub name: &'v str,
    pub description: Option<&'v str>,
    /// The JSON schema of the arguments.
    pub parameters: Option<Value<'v, 'a>>,
    /// The schema is in Google's OpenAPI dialect (Gemini's `parameters`: `"type": "OBJECT"`),
    /// written as JSON Schema by [`write_schema`].
    pub openapi: bool,
}

/// Which tools the model may or must call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolChoice<'v> {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    Named(&'v str),
}

/// The shape the answer must have.
#[derive(Clone, Copy, Debug)]
pub enum ResponseFormat<'v, 'a> {
    Text,
    JsonObject,
    JsonSchema(Value<'v, 'a>),
}

/// A number as the client wrote it (written back verbatim) and its value.
#[derive(Clone, Copy, Debug)]
pub struct Number<'v, 'a> {
    pub raw: Value<'v, 'a>,
    pub value: f64,
}

/// A request, normalised.
#[derive(Clone, Debug, Default)]
pub struct Request<'v, 'a> {
    /// The system prompt (OpenAI's system and developer messages, hoisted; Anthropic's
    /// `system`), with where its first text came from.
    pub system: Texts<'v>,
    pub system_loc: Loc,
    pub turns: Vec<Turn>,
    pub parts: Vec<Part<'v, 'a>>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<Number<'v, 'a>>,
    pub top_p: Option<Number<'v, 'a>>,
    /// Stop sequences (a single string is a list of one).
    pub stop: Option<Value<'v, 'a>>,
    pub stream: bool,
    pub tools: Vec<Tool<'v, 'a>>,
    pub tool_choice: Option<ToolChoice<'v>>,
    /// `false`: at most one tool call per answer.
    pub parallel_tool_calls: Option<bool>,
    /// The end user's id, for the provider's abuse monitoring.
    pub user: Option<&'v str>,
    /// Settings only some dialects have; a writer passes what it can and refuses the rest
    /// unless it is neutral.
    pub n: Option<u64>,
    pub store: Option<bool>,
    pub logprobs: Option<bool>,
    pub seed: Option<Number<'v, 'a>>,
    pub presence_penalty: Option<Number<'v, 'a>>,
    pub frequency_penalty: Option<Number<'v, 'a>>,
    pub response_format: Option<ResponseFormat<'v, 'a>>,
    pub top_k: Option<Number<'v, 'a>>,
    /// OpenAI's reasoning effort (`minimal` … `high`): a hint, carried to OpenAI-dialect
    /// providers and not carried elsewhere (see each writer's table).
    pub reasoning_effort: Option<&'v str>,
}

impl<'v, 'a> Request<'v, 'a> {
    /// The parts of `turn`.
    pub fn parts_of(&self, turn: &Turn) -> &[Part<'v, 'a>] {
        &self.parts[turn.parts.clone()]
    }
}

/// Writes `v` as JSON (into a Vec: cannot fail).
pub fn write_value(out: &mut Vec<u8>, v: Value<'_, '_>) {
    use simd_json::prelude::Writable as _;
    let _ = v.write(out);
}

// ------------------------------------------------------------------------- whole answers

/// A whole (non-streamed) answer, normalised: one assistant turn, why it ended. Usage is the
/// meter's reading, not part of it.
#[derive(Clone, Debug)]
pub struct Answer<'v, 'a> {
    /// The provider's id (a reader puts a placeholder when there is none) and model.
    pub id: &'v str,
    pub model: &'v str,
    /// The text parts, in order (thoughts left out).
    pub text: Vec<&'v str>,
    pub calls: Vec<AnswerCall<'v, 'a>>,
    pub finish: Finish,
}

/// A tool call in a whole answer. No id: the writer names it `call_<n>`.
#[derive(Clone, Copy, Debug)]
pub struct AnswerCall<'v, 'a> {
    pub id: Option<&'v str>,
    pub name: &'v str,
    pub args: Args<'v, 'a>,
}

// ---------------------------------------------------------------------- stream events

/// Why an answer ended, normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Done, or a stop sequence was met.
    Stop,
    /// The output limit (or the context window) was reached.
    Length,
    /// The model called tools.
    ToolCalls,
    /// The provider's filter refused or cut the answer.
    ContentFilter,
}

/// One event of a streamed answer, normalised. Strings are raw JSON string contents, escapes
/// kept: a writer copies them into its own string literals as they are, never unescaping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The answer's id and model (raw), once, first.
    Start {
        id: &'a [u8],
        model: &'a [u8],
    },
    /// A fragment of text.
    Text(&'a [u8]),
    /// Tool call `index` (0-based, stable) begins. `args`: its whole arguments as a JSON value,
    /// when the dialect sends them in one piece (Gemini); otherwise [`Event::ToolArgs`] follow.
    ToolCall {
        index: u64,
        id: Option<&'a [u8]>,
        name: &'a [u8],
        args: Option<&'a [u8]>,
    },
    /// A fragment of call `index`'s arguments (raw string contents).
    ToolArgs {
        index: u64,
        raw: &'a [u8],
    },
    Finish(Finish),
    /// The provider ended the stream in its own words (`[DONE]`, `message_stop`).
    End,
    /// An error in the middle of the stream: its message and type (raw).
    Error {
        message: &'a [u8],
        kind: &'a [u8],
    },
}

/// Ids and model names are echoed when they need no escaping beyond what they carry (they are
/// raw JSON string contents already).
pub fn safe_raw(s: &[u8]) -> bool {
    !s.contains(&b'"') && !s.iter().any(|&b| b < 0x20)
}

/// The raw contents of the string member `k` of the JSON object `b` (no DOM).
pub fn str_member<'a>(b: &'a [u8], k: &[u8]) -> Option<&'a [u8]> {
    crate::json::scan::member(b, k).and_then(|r| crate::json::scan::string_at(b, r.start))
}

/// The raw value of member `k` of the JSON object `b`.
pub fn value_member<'a>(b: &'a [u8], k: &[u8]) -> Option<&'a [u8]> {
    crate::json::scan::member(b, k).map(|r| &b[r])
}

/// The unsigned integer member `k` of the JSON object `b`.
pub fn uint_member(b: &[u8], k: &[u8]) -> Option<u64> {
    crate::json::scan::member(b, k).and_then(|r| crate::json::scan::uint_at(b, r.start))
}

// ------------------------------------------------------------- readers' helpers

/// The string member `k` of `v`, when it is one (no refusal: for readers of answers).
pub fn str_of<'a>(v: Value<'_, 'a>, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.into_string())
}

/// The value of member `k`, `None` when absent or null.
pub fn get<'v, 'a>(v: Value<'v, 'a>, k: &str) -> Option<Value<'v, 'a>> {
    v.get(k).filter(|x| x.as_null().is_none())
}

pub fn string<'v>(v: Value<'v, '_>, k: &str, loc: Loc) -> Result<Option<&'v str>, Untranslatable> {
    match get(v, k) {
        None => Ok(None),
        Some(x) => x
            .into_string()
            .map(Some)
            .ok_or_else(|| loc.refuse("must be a string")),
    }
}

pub fn number<'v, 'a>(
    v: Value<'v, 'a>,
    k: &'static str,
) -> Result<Option<Number<'v, 'a>>, Untranslatable> {
    match get(v, k) {
        None => Ok(None),
        Some(raw) => raw
            .cast_f64()
            .map(|value| Some(Number { raw, value }))
            .ok_or_else(|| Loc::top(k).refuse("must be a number")),
    }
}

/// The first member of `v` not in `known` (and not null), refused for `target`.
pub fn only(v: Value<'_, '_>, known: &[&str], at: Loc, target: &str) -> Result<(), Untranslatable> {
    let Some(obj) = v.as_object() else {
        return Ok(());
    };
    match obj
        .iter()
        .find(|(k, x)| x.as_null().is_none() && !known.contains(k))
    {
        None => Ok(()),
        Some((k, _)) => {
            let mut param = at.param();
            if !param.is_empty() {
                param.push('.');
            }
            param.push_str(k);
            let message = format!("`{param}` cannot be translated for {target}");
            Err(Untranslatable::new(param, message))
        }
    }
}

/// After a one-pass read of an object's members: refuses `other` (a member the reader knows
/// nowhere), else the first of `present` (name, whether present) that `allowed` does not list —
/// named at `at` — as something that cannot be translated for `target`.
pub fn refuse_extra(
    at: Loc,
    other: Option<&str>,
    present: &[(&str, bool)],
    allowed: &[&str],
    target: &str,
) -> Result<(), Untranslatable> {
    let extra = other.or_else(|| {
        present
            .iter()
            .find(|(k, on)| *on && !allowed.contains(k))
            .map(|(k, _)| *k)
    });
    match extra {
        None => Ok(()),
        Some(k) => {
            let param = format!("{}.{k}", at.param());
            let message = format!("`{param}` cannot be translated for {target}");
            Err(Untranslatable::new(param, message))
        }
    }
}

/// A writer's refusal of a top-level setting its dialect (`target`) has no field for, unless it
/// is absent or `neutral` (the provider's default anyway).
pub fn refuse_unless_neutral<T>(
    what: Option<T>,
    name: &'static str,
    target: &str,
    neutral: impl Fn(&T) -> bool,
) -> Result<(), Untranslatable> {
    match what {
        Some(x) if !neutral(&x) => {
            Err(Loc::top(name).refuse(&format!("has no equivalent for {target}")))
        }
        _ => Ok(()),
    }
}

/// Appends `text` — which must hold a JSON object (OpenAI's tool-call `arguments`) — as that
/// object; refuses `loc` otherwise. Parsed with this thread's reused simd-json buffers.
pub fn json_object_into(out: &mut Vec<u8>, text: &str, loc: Loc) -> Result<(), Untranslatable> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<(Vec<u8>, simd_json::Buffers)> =
            std::cell::RefCell::new((Vec::new(), simd_json::Buffers::new(256)));
    }
    if text.trim().is_empty() {
        out.extend_from_slice(b"{}");
        return Ok(());
    }
    let refused = || loc.refuse("must hold a JSON object to be translated");
    SCRATCH.with(|s| {
        let (bytes, buffers) = &mut *s.borrow_mut();
        bytes.clear();
        bytes.extend_from_slice(text.as_bytes());
        let tape = simd_json::to_tape_with_buffers(bytes, buffers).map_err(|_| refused())?;
        let v = tape.as_value();
        if v.as_object().is_none() {
            return Err(refused());
        }
        write_value(out, v);
        Ok(())
    })
}

/// Tool-call arguments as a JSON object (Anthropic's `input`, Gemini's `args`).
pub fn write_arguments(
    args: &Args<'_, '_>,
    loc: Loc,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    match args {
        Args::Json(Some(v)) => write_value(out, *v),
        Args::Json(None) => out.extend_from_slice(b"{}"),
        Args::Text(s) => json_object_into(out, s, loc)?,
    }
    Ok(())
}

/// Appends a tool's `"name":…` and, when it has one, `,"description":…` — the start every
/// dialect's tool declaration shares (the schema's member name differs).
/// A call's arguments as a JSON object, for a dialect whose calls carry one (Anthropic's
/// `input`, Gemini's `args`, Bedrock's `input`): the object they hold; arguments that are
/// not a JSON object are kept as text, `{"arguments": "…"}`, never dropped.
pub fn write_args_object(out: &mut Vec<u8>, args: &Args<'_, '_>) {
    let at = out.len();
    if write_arguments(args, Loc::top("arguments"), out).is_ok() {
        return;
    }
    out.truncate(at);
    out.extend_from_slice(b"{\"arguments\":");
    match args {
        Args::Text(t) => crate::json::string(out, t.as_bytes()),
        Args::Json(_) => out.extend_from_slice(b"\"\""),
    }
    out.push(b'}');
}

/// A tool's parameter schema as JSON Schema: as it came, or — from Google's OpenAPI dialect —
/// with every `type` name lower-cased (`OBJECT` → `object`), the one spelling in which the two
/// differ for the schemas tools declare.
pub fn write_schema(out: &mut Vec<u8>, v: Value<'_, '_>, openapi: bool) {
    if !openapi {
        write_value(out, v);
        return;
    }
    if let Some(obj) = v.as_object() {
        out.push(b'{');
        for (i, (k, x)) in obj.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::json::string(out, k.as_bytes());
            out.push(b':');
            match x.into_string() {
                Some(t) if k == "type" => {
                    crate::json::string(out, t.to_ascii_lowercase().as_bytes());
                }
                _ => write_schema(out, x, true),
            }
        }
        out.push(b'}');
    } else if let Some(arr) = v.as_array() {
        out.push(b'[');
        for (i, x) in arr.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_schema(out, x, true);
        }
        out.push(b']');
    } else {
        write_value(out, v);
    }
}

pub fn write_tool_name(out: &mut Vec<u8>, tool: &Tool<'_, '_>) {
    out.extend_from_slice(b"\"name\":");
    crate::json::string(out, tool.name.as_bytes());
    if let Some(d) = tool.description {
        out.extend_from_slice(b",\"description\":");
        crate::json::string(out, d.as_bytes());
    }
}

/// Appends `v` serialised, as a JSON string literal (OpenAI's `arguments` from Anthropic's
/// `input`); `None` is `"{}"`. Serialised into this thread's reused buffer.
pub fn json_as_string(out: &mut Vec<u8>, v: Option<Value<'_, '_>>) {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        b.clear();
        match v {
            Some(v) => write_value(&mut b, v),
            None => b.extend_from_slice(b"{}"),
        }
        crate::json::string(out, &b);
    });
}

/// `data:<media type>;base64,<data>` → (media type, data).
pub fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_as_the_client_wrote_them() {
        assert_eq!(Loc::top("temperature").param(), "temperature");
        assert_eq!(Loc::message(3, "name").param(), "messages[3].name");
        assert_eq!(
            Loc::item(1, "tool_calls", 0, "function.arguments").param(),
            "messages[1].tool_calls[0].function.arguments"
        );
        assert_eq!(Loc::listed("tools", 2, "type").param(), "tools[2].type");
        assert_eq!(
            Loc::item(0, "content", 4, "").param(),
            "messages[0].content[4]"
        );
        let e = Loc::top("n").refuse("has no equivalent");
        assert_eq!(
            (e.param.as_str(), e.message.as_str()),
            ("n", "`n` has no equivalent")
        );
    }

    #[test]
    fn data_urls() {
        assert_eq!(
            data_url("data:image/png;base64,AAAA"),
            Some(("image/png", "AAAA"))
        );
        assert_eq!(data_url("https://x/y.png"), None);
        assert_eq!(data_url("data:image/png,AAAA"), None);
    }
}
