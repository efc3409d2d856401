//! Request bodies from the client's dialect to the provider's, through the normalised form
//! (ARCHITECTURE.md, "Parts and the arrows between them"): the client's body is parsed once
//! (simd-json, on the worker's scratch copy), read by the client dialect's reader into
//! [`crate::dialect::norm::Request`] (borrowing the parsed strings), and written by the
//! provider dialect's writer. What each reader accepts and each writer can say is tabled in
//! `dialect/{openai,anthropic,gemini}/request.rs`; whatever the provider cannot express is
//! refused with [`Untranslatable`], naming the member.

use super::Pair;
use crate::dialect::{Dialect, anthropic, bedrock, gemini, openai, responses};
use crate::json::Scratch;

pub use crate::dialect::norm::{Target, Untranslatable};

/// Writes the provider's request body for `body` into `out`.
pub fn translate(
    pair: Pair,
    body: &[u8],
    target: &Target<'_>,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    // The tape, not a DOM: no map per object, and members are found by a short scan.
    let tape = scratch
        .tape(body)
        .map_err(|e| Untranslatable::new("", format!("the body is not valid JSON ({e})")))?;
    let result = translate_tape(pair, tape.as_value(), target, out);
    let empty: simd_json::Tape<'static> = tape.reset();
    scratch.keep_tape(empty);
    result
}

fn translate_tape(
    pair: Pair,
    v: simd_json::tape::Value<'_, '_>,
    target: &Target<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    if v.as_object().is_none() {
        return Err(Untranslatable::new("", "the body must be a JSON object"));
    }
    let name = match pair.provider() {
        Dialect::OpenAi => openai::request::TARGET,
        Dialect::Anthropic => anthropic::request::TARGET,
        Dialect::Gemini => gemini::request::TARGET,
        Dialect::Responses => responses::request::TARGET,
        Dialect::Bedrock => bedrock::request::TARGET,
    };
    let request = match pair.client() {
        Dialect::OpenAi => openai::request::read(v, name)?,
        Dialect::Anthropic => anthropic::request::read(v, name)?,
        Dialect::Responses => responses::request::read(v, name)?,
        Dialect::Gemini => gemini::request::read(v, name)?,
        Dialect::Bedrock => bedrock::request::read(v, name)?,
    };
    let mut request = request;
    request.stream |= target.stream;
    out.clear();
    match pair.provider() {
        Dialect::OpenAi => openai::request::write(&request, target, out),
        Dialect::Anthropic => anthropic::request::write(&request, target, out),
        Dialect::Gemini => gemini::request::write(&request, target, out),
        Dialect::Responses => responses::request::write(&request, target, out),
        Dialect::Bedrock => bedrock::request::write(&request, target, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value as J, json};

    fn run(pair: Pair, body: J) -> Result<J, Untranslatable> {
        let target = Target {
            model_json: b"\"up-model\"",
            default_max_tokens: 4096,
            compatible: false,
            stream: false,
            vertex: false,
        };
        let mut out = Vec::new();
        let bytes = serde_json::to_vec(&body).unwrap();
        translate(pair, &bytes, &target, &mut Scratch::default(), &mut out)?;
        Ok(serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "invalid JSON written ({e}): {}",
                String::from_utf8_lossy(&out)
            )
        }))
    }

    type Edit = Box<dyn Fn(&mut J)>;

    fn chat_with_tools() -> J {
        json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather in Paris? \"quoted\""},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "high"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
                {"role": "user", "content": "Thanks"}
            ],
            "max_completion_tokens": 300,
            "temperature": 0.5,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}},
                {"type": "function", "function": {"name": "get_time"}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false,
            "user": "u-7"
        })
    }

    #[test]
    fn openai_to_anthropic_maps_every_part() {
        let got = run(Pair::OPENAI_TO_ANTHROPIC, chat_with_tools()).unwrap();
        assert_eq!(
            got,
            json!({
                "model": "up-model",
                "max_tokens": 300,
                "system": [{"type": "text", "text": "Be brief."}],
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather in Paris? \"quoted\""},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}
                    ]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                        {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "noon"}]}
                    ]},
                    {"role": "user", "content": "Thanks"}
                ],
                "temperature": 0.5,
                "stop_sequences": ["END"],
                "stream": true,
                "tools": [
                    {"name": "get_weather", "description": "d", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                    {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
                ],
                "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
                "metadata": {"user_id": "u-7"}
            })
        );
    }

    #[test]
    fn tool_choice_none_stays_none_and_required_is_any() {
        for (from, to) in [("none", "none"), ("required", "any"), ("auto", "auto")] {
            let got = run(
                Pair::OPENAI_TO_ANTHROPIC,
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": from}),
            )
            .unwrap();
            assert_eq!(got["tool_choice"], json!({"type": to}), "{from}");
            let got = run(
                Pair::OPENAI_TO_GEMINI,
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": from}),
            )
            .unwrap();
            let mode = got["toolConfig"]["functionCallingConfig"]["mode"]
                .as_str()
                .unwrap()
                .to_owned();
            assert_eq!(mode, to.replace("any", "ANY").to_uppercase(), "{from}");
        }
    }

    #[test]
    fn the_default_max_tokens_fills_in_for_anthropic() {
        let got = run(
            Pair::OPENAI_TO_ANTHROPIC,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        assert_eq!(got["max_tokens"], 4096);
        assert!(got.get("stream").is_none());
    }

    #[test]
    fn what_cannot_be_translated_is_refused_by_name() {
        let base = || json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let cases: Vec<(Pair, Edit, &str)> = vec![
            (
                Pair::OPENAI_TO_ANTHROPIC,
                Box::new(|b| b["n"] = json!(2)),
                "n",
            ),
            (
                Pair::OPENAI_TO_ANTHROPIC,
                Box::new(|b| b["temperature"] = json!(1.5)),
                "temperature",
            ),
            (
                Pair::OPENAI_TO_ANTHROPIC,
                Box::new(|b| b["logit_bias"] = json!({"1": 2})),
                "logit_bias",
            ),
            (
                Pair::OPENAI_TO_ANTHROPIC,
                Box::new(|b| b["seed"] = json!(3)),
                "seed",
            ),
            (
                Pair::OPENAI_TO_ANTHROPIC,
                Box::new(|b| b["response_format"] = json!({"type": "json_object"})),
                "response_format",
            ),
            (
                Pair::OPENAI_TO_ANTHROPIC,
                Box::new(|b| {
                    b["messages"][0]["content"] =
                        json!([{"type": "input_audio", "input_audio": {}}])
                }),
                "messages[0].content[0].type",
            ),
            (
                Pair::OPENAI_TO_ANTHROPIC,
                Box::new(|b| b["messages"][0]["name"] = json!("bob")),
                "messages[0].name",
            ),
            (
                Pair::OPENAI_TO_ANTHROPIC,
                Box::new(|b| {
                    b["messages"].as_array_mut().unwrap().push(json!({"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}))
                }),
                "messages[1].tool_calls[0].function.arguments",
            ),
            (
                Pair::OPENAI_TO_GEMINI,
                Box::new(|b| {
                    b["messages"][0]["content"] =
                        json!([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}])
                }),
                "messages[0].content[0].image_url.url",
            ),
            (
                Pair::OPENAI_TO_GEMINI,
                Box::new(|b| b["parallel_tool_calls"] = json!(false)),
                "parallel_tool_calls",
            ),
            (
                Pair::OPENAI_TO_GEMINI,
                Box::new(|b| {
                    b["messages"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"role": "tool", "tool_call_id": "nope", "content": "x"}))
                }),
                "messages[1].tool_call_id",
            ),
        ];
        for (pair, edit, param) in cases {
            let mut b = base();
            edit(&mut b);
            let e = run(pair, b).unwrap_err();
            assert_eq!(e.param, param, "{}", e.message);
            assert!(e.message.contains(param), "{}", e.message);
        }
        let anthropic = || json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
        for (edit, param) in [
            (
                Box::new(|b: &mut J| b["top_k"] = json!(5)) as Box<dyn Fn(&mut J)>,
                "top_k",
            ),
            (
                Box::new(|b: &mut J| {
                    b["thinking"] = json!({"type": "enabled", "budget_tokens": 1024})
                }),
                "thinking",
            ),
            (
                Box::new(|b: &mut J| {
                    b["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}])
                }),
                "tools[0].type",
            ),
            (
                Box::new(|b: &mut J| {
                    b["messages"][0]["content"] = json!([{"type": "document", "source": {}}])
                }),
                "messages[0].content[0].type",
            ),
        ] {
            let mut b = anthropic();
            edit(&mut b);
            let e = run(Pair::ANTHROPIC_TO_OPENAI, b).unwrap_err();
            assert_eq!(e.param, param, "{}", e.message);
        }
    }

    #[test]
    fn anthropic_to_openai_maps_every_part() {
        let body = json!({
            "model": "claude",
            "max_tokens": 200,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "text", "text": "And tomorrow?"}
                ]}
            ],
            "stop_sequences": ["END"],
            "temperature": 0.2,
            "stream": true,
            "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "metadata": {"user_id": "u-7"}
        });
        let got = run(Pair::ANTHROPIC_TO_OPENAI, body).unwrap();
        assert_eq!(
            got,
            json!({
                "model": "up-model",
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather?"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}
                    ]},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                    {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}
                ],
                "max_completion_tokens": 200,
                "temperature": 0.2,
                "stop": ["END"],
                "stream": true,
                "stream_options": {"include_usage": true},
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}}}],
                "tool_choice": "required",
                "parallel_tool_calls": false,
                "user": "u-7"
            })
        );
    }

    #[test]
    fn openai_to_gemini_maps_every_part() {
        let mut body = chat_with_tools();
        body.as_object_mut().unwrap().remove("parallel_tool_calls");
        body["messages"][1]["content"].as_array_mut().unwrap().pop();
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}});
        body["seed"] = json!(7);
        let got = run(Pair::OPENAI_TO_GEMINI, body).unwrap();
        assert_eq!(
            got,
            json!({
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "contents": [
                    {"role": "user", "parts": [
                        {"text": "Weather in Paris? \"quoted\""},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}
                    ]},
                    {"role": "model", "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                        {"functionCall": {"name": "get_time", "args": {}}}
                    ]},
                    {"role": "user", "parts": [
                        {"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}},
                        {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}
                    ]},
                    {"role": "user", "parts": [{"text": "Thanks"}]}
                ],
                "generationConfig": {
                    "maxOutputTokens": 300, "temperature": 0.5, "seed": 7, "stopSequences": ["END"],
                    "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}
                },
                "tools": [{"functionDeclarations": [
                    {"name": "get_weather", "description": "d", "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                    {"name": "get_time"}
                ]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
            })
        );
    }

    /// OpenAI → Anthropic → OpenAI keeps what the request means.
    #[test]
    fn a_round_trip_preserves_meaning() {
        let original = chat_with_tools();
        let there = run(Pair::OPENAI_TO_ANTHROPIC, original.clone()).unwrap();
        let back = run(Pair::ANTHROPIC_TO_OPENAI, there).unwrap();
        let o = &original;
        assert_eq!(
            back["messages"][0],
            json!({"role": "system", "content": [{"type": "text", "text": "Be brief."}]})
        );
        assert_eq!(
            back["messages"][1]["content"][0]["text"],
            o["messages"][1]["content"][0]["text"]
        );
        assert_eq!(
            back["messages"][1]["content"][1]["image_url"]["url"],
            o["messages"][1]["content"][1]["image_url"]["url"]
        );
        assert_eq!(
            back["messages"][1]["content"][2]["image_url"]["url"],
            o["messages"][1]["content"][2]["image_url"]["url"]
        );
        let calls = &back["messages"][2]["tool_calls"];
        for k in 0..2 {
            assert_eq!(calls[k]["id"], o["messages"][2]["tool_calls"][k]["id"]);
            assert_eq!(
                calls[k]["function"]["name"],
                o["messages"][2]["tool_calls"][k]["function"]["name"]
            );
            let args: J =
                serde_json::from_str(calls[k]["function"]["arguments"].as_str().unwrap()).unwrap();
            let want: J = serde_json::from_str(
                o["messages"][2]["tool_calls"][k]["function"]["arguments"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap_or(json!({}));
            assert_eq!(args, want);
        }
        assert_eq!(
            back["messages"][3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "18C"})
        );
        assert_eq!(
            back["messages"][4],
            json!({"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]})
        );
        assert_eq!(
            back["messages"][5],
            json!({"role": "user", "content": "Thanks"})
        );
        assert_eq!(back["max_completion_tokens"], 300);
        assert_eq!(back["temperature"], 0.5);
        assert_eq!(back["stop"], json!(["END"]));
        assert_eq!(
            back["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        assert_eq!(back["parallel_tool_calls"], false);
        assert_eq!(back["user"], "u-7");
        assert_eq!(
            back["tools"][0]["function"]["parameters"],
            o["tools"][0]["function"]["parameters"]
        );
        assert_eq!(back["stream"], true);
    }

    fn pair(client: Dialect, provider: Dialect) -> Pair {
        Pair::between(client, provider).unwrap()
    }

    #[test]
    fn a_responses_request_maps_item_by_item() {
        let body = json!({
            "model": "m",
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Use metric."},
                {"role": "user", "content": [
                    {"type": "input_text", "text": "Weather in Paris?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBOR", "detail": "auto"}
                ]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
                {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                 "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather",
                 "arguments": "{\"city\":\"Paris\"}", "id": "fc_1", "status": "completed"},
                {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "name": "get_weather", "description": "d",
                       "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "max_output_tokens": 300,
            "temperature": 0.5,
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
            "include": ["reasoning.encrypted_content"],
            "metadata": {"k": "v"},
            "stream": true
        });
        let got = run(pair(Dialect::Responses, Dialect::OpenAi), body.clone()).unwrap();
        assert_eq!(
            got,
            json!({
                "model": "up-model",
                "messages": [
                    {"role": "system", "content": [
                        {"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use metric."}]},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather in Paris?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                    {"role": "user", "content": "Thanks"}
                ],
                "max_completion_tokens": 300,
                "temperature": 0.5,
                "stream": true,
                "stream_options": {"include_usage": true},
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                           "parameters": {"type": "object"}}}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "reasoning_effort": "low",
                "response_format": {"type": "json_schema",
                                    "json_schema": {"name": "response", "schema": {"type": "object"}}}
            })
        );
        // And to Anthropic: the call and its result become tool_use / tool_result blocks.
        let mut to_claude = body;
        to_claude.as_object_mut().unwrap().remove("text");
        let got = run(pair(Dialect::Responses, Dialect::Anthropic), to_claude).unwrap();
        assert_eq!(
            got["messages"][1],
            json!({"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}]})
        );
        assert_eq!(
            got["messages"][2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"}]})
        );
    }

    #[test]
    fn a_chat_request_for_a_responses_deployment_maps_member_by_member() {
        let mut body = chat_with_tools();
        body.as_object_mut().unwrap().remove("stop");
        let got = run(pair(Dialect::OpenAi, Dialect::Responses), body).unwrap();
        assert_eq!(
            got,
            json!({
                "model": "up-model",
                "instructions": "Be brief.",
                "input": [
                    {"role": "user", "content": [
                        {"type": "input_text", "text": "Weather in Paris? \"quoted\""},
                        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K"},
                        {"type": "input_image", "image_url": "https://example.com/a.jpg"}]},
                    {"type": "function_call", "call_id": "call_1", "name": "get_weather",
                     "arguments": "{\"city\":\"Paris\"}"},
                    {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": ""},
                    {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
                    {"type": "function_call_output", "call_id": "call_2", "output": "noon"},
                    {"role": "user", "content": "Thanks"}
                ],
                "max_output_tokens": 300,
                "temperature": 0.5,
                "stream": true,
                "tools": [
                    {"type": "function", "name": "get_weather", "description": "d",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                     "strict": false},
                    {"type": "function", "name": "get_time", "strict": false}
                ],
                "tool_choice": {"type": "function", "name": "get_weather"},
                "parallel_tool_calls": false,
                "user": "u-7",
                "store": false
            })
        );
    }

    #[test]
    fn a_gemini_request_maps_part_by_part() {
        let body = json!({
            "system_instruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "Weather in Paris and Rome?"},
                    {"inline_data": {"mime_type": "image/png", "data": "iVBOR"}}]},
                {"role": "model", "parts": [
                    {"text": "thinking", "thought": true},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                     "thoughtSignature": "c2ln"},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]}
            ],
            "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2,
                                 "stopSequences": ["END"], "thinkingConfig": {"thinkingBudget": 0}},
            "tools": [{"functionDeclarations": [
                {"name": "get_weather", "parameters_json_schema": {"type": "object"}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
        });
        let got = run(pair(Dialect::Gemini, Dialect::Anthropic), body).unwrap();
        assert_eq!(
            got,
            json!({
                "model": "up-model",
                "max_tokens": 50,
                "system": [{"type": "text", "text": "Be brief."}],
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather in Paris and Rome?"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "call_1_1", "name": "get_weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "call_1_2", "name": "get_weather", "input": {"city": "Rome"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "call_1_1", "content": "18C"},
                        {"type": "tool_result", "tool_use_id": "call_1_2", "content": "{\"temp\":21}"}]}
                ],
                "temperature": 0.2,
                "stop_sequences": ["END"],
                "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "get_weather"}
            })
        );
    }

    #[test]
    fn what_only_one_provider_can_do_is_refused_by_name_on_a_translated_route() {
        let responses = |extra: J| {
            let mut b = json!({"model": "m", "input": "hi"});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            b
        };
        let gemini = |extra: J| {
            let mut b = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            b
        };
        let cases: Vec<(Pair, J, &str)> = vec![
            (
                pair(Dialect::Responses, Dialect::Anthropic),
                responses(json!({"tools": [{"type": "web_search_preview"}]})),
                "`web_search_preview`",
            ),
            (
                pair(Dialect::Responses, Dialect::Gemini),
                responses(json!({"tools": [{"type": "computer_use_preview"}]})),
                "`computer_use_preview`",
            ),
            (
                pair(Dialect::Responses, Dialect::OpenAi),
                responses(json!({"previous_response_id": "resp_1"})),
                "previous_response_id",
            ),
            (
                pair(Dialect::Responses, Dialect::Anthropic),
                json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
                "input[0]",
            ),
            (
                pair(Dialect::Responses, Dialect::Anthropic),
                responses(json!({"tool_choice": {"type": "file_search"}})),
                "`file_search`",
            ),
            (
                pair(Dialect::Gemini, Dialect::OpenAi),
                gemini(json!({"tools": [{"googleSearch": {}}]})),
                "`googleSearch`",
            ),
            (
                pair(Dialect::Gemini, Dialect::OpenAi),
                gemini(json!({"safetySettings": [{"category": "x", "threshold": "y"}]})),
                "safetySettings",
            ),
            (
                pair(Dialect::Gemini, Dialect::Anthropic),
                gemini(json!({"generationConfig": {"responseSchema": {"type": "OBJECT"}}})),
                "responseSchema",
            ),
            (
                pair(Dialect::Gemini, Dialect::OpenAi),
                json!({"contents": [{"role": "user", "parts": [
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBER"}}]}]}),
                "application/pdf",
            ),
            (
                pair(Dialect::OpenAi, Dialect::Responses),
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "END"}),
                "stop",
            ),
        ];
        for (p, body, named) in cases {
            let e = run(p, body.clone()).unwrap_err();
            assert!(e.message.contains(named), "{p:?} {body}: {}", e.message);
        }
    }

    #[test]
    fn a_gemini_openapi_schema_goes_out_as_json_schema() {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [
                {"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {
                    "city": {"type": "STRING"}, "days": {"type": "ARRAY", "items": {"type": "INTEGER"}}},
                    "required": ["city"]}},
                {"name": "as_is", "parametersJsonSchema": {"type": "object", "title": "TYPE"}}
            ]}]
        });
        let got = run(pair(Dialect::Gemini, Dialect::OpenAi), body).unwrap();
        assert_eq!(
            got["tools"][0]["function"]["parameters"],
            json!({"type": "object", "properties": {"city": {"type": "string"},
                "days": {"type": "array", "items": {"type": "integer"}}}, "required": ["city"]})
        );
        assert_eq!(
            got["tools"][1]["function"]["parameters"],
            json!({"type": "object", "title": "TYPE"})
        );
    }
}
