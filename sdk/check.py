"""The official OpenAI, Anthropic, Google Gen AI and AWS (boto3) Python SDKs, unchanged, against a running
tollgate: chat, the Responses API, cached answers replayed (JSON and streams), Messages and generateContent, each served by every provider
(the same dialect passed through, the others translated), streaming (through each SDK's own
accumulating stream helper), tool calls and their results, and errors.

Run by tests/sdk.rs, which starts the gateway and the mock provider:
    TOLLGATE_URL=http://127.0.0.1:PORT TOLLGATE_KEY=sk-... python3 sdk/check.py OPENAI_MODELS -- ANTHROPIC_MODELS
Every check that fails raises; the exit status says whether all passed.
"""

import json
import os
import sys

import anthropic
import boto3
import botocore.config
import botocore.exceptions
import openai
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

BASE = os.environ["TOLLGATE_URL"]
KEY = os.environ["TOLLGATE_KEY"]
oai = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0)
ant = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)
gem = genai.Client(api_key=KEY, http_options=genai_types.HttpOptions(base_url=BASE))


def bedrock_client():
    """boto3's bedrock-runtime pointed at tollgate, the virtual key as a Bedrock API key:
    botocore sends $AWS_BEARER_TOKEN_BEDROCK as a bearer token instead of signing, and only
    over https (TOLLGATE_TLS_URL, its CA in TOLLGATE_CA)."""
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=os.environ["TOLLGATE_TLS_URL"],
        verify=os.environ["TOLLGATE_CA"],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


os.environ["AWS_BEARER_TOKEN_BEDROCK"] = KEY
brt = bedrock_client()

OAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
ANT_TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]
HELLO = [{"role": "user", "content": "hello"}]


def check_openai(model):
    r = oai.chat.completions.create(model=model, messages=HELLO, max_tokens=8)
    assert r.object == "chat.completion", r
    assert r.choices[0].message.content, r
    assert r.choices[0].finish_reason == "stop", r
    assert r.usage.completion_tokens == 8, r.usage

    # Streaming, accumulated by the SDK's own helper.
    with oai.chat.completions.stream(
        model=model, messages=HELLO, max_tokens=8, stream_options={"include_usage": True}
    ) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == r.choices[0].message.content, final
    assert final.usage is not None and final.usage.completion_tokens == 8, final.usage

    # Tool calls, whole and streamed.
    r = oai.chat.completions.create(
        model=model, messages=HELLO, max_tokens=8, tools=OAI_TOOLS, tool_choice="required"
    )
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather", r
    assert isinstance(json.loads(call.function.arguments), dict), call
    assert r.choices[0].finish_reason == "tool_calls", r
    with oai.chat.completions.stream(
        model=model, messages=HELLO, max_tokens=8, tools=OAI_TOOLS
    ) as s:
        final = s.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert len(calls) == 1 and calls[0].function.name == "get_weather", final
    assert isinstance(json.loads(calls[0].function.arguments), dict), calls
    assert final.choices[0].finish_reason == "tool_calls", final

    # The tool's answer goes back in the next turn.
    follow = HELLO + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    r = oai.chat.completions.create(model=model, messages=follow, max_tokens=8, tools=OAI_TOOLS, tool_choice="none")
    assert r.choices[0].message.content and not r.choices[0].message.tool_calls, r

    # Errors, as the SDK's exception classes.
    bad = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-wrong", max_retries=0)
    try:
        bad.chat.completions.create(model=model, messages=HELLO)
        raise AssertionError("a wrong key was served")
    except openai.AuthenticationError:
        pass
    try:
        oai.chat.completions.create(model="no-such-model", messages=HELLO)
        raise AssertionError("an unknown model was served")
    except openai.NotFoundError:
        pass


def check_openai_refusal(model):
    try:
        oai.chat.completions.create(model=model, messages=HELLO, n=2)
        raise AssertionError("n=2 was translated")
    except openai.BadRequestError as e:
        assert e.param == "n", e.body


def check_responses(model):
    """The Responses API: passed through to an OpenAI provider, translated for the others."""
    r = oai.responses.create(model=model, input="hello", max_output_tokens=8)
    assert r.object == "response" and r.status == "completed", r
    assert r.output_text, r
    assert r.usage.output_tokens == 8 and r.usage.input_tokens > 0, r.usage

    with oai.responses.stream(model=model, input=HELLO, max_output_tokens=8) as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == final.output_text == r.output_text, (deltas, final)
    assert final.usage.output_tokens == 8, final.usage

    tools = [{"type": "function", "name": "get_weather", "parameters": OAI_TOOLS[0]["function"]["parameters"]}]
    r = oai.responses.create(model=model, input="weather?", max_output_tokens=8, tools=tools)
    call = [o for o in r.output if o.type == "function_call"]
    assert len(call) == 1 and call[0].name == "get_weather", r
    assert isinstance(json.loads(call[0].arguments), dict), call[0].arguments
    with oai.responses.stream(model=model, input="weather?", max_output_tokens=8, tools=tools) as s:
        final = s.get_final_response()
    streamed = [o for o in final.output if o.type == "function_call"]
    assert [(c.name, c.arguments) for c in streamed] == [(c.name, c.arguments) for c in call], final

    # The call's result goes back; the model answers in text.
    follow = [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": call[0].call_id, "name": call[0].name, "arguments": call[0].arguments},
        {"type": "function_call_output", "call_id": call[0].call_id, "output": "18C"},
    ]
    r = oai.responses.create(model=model, input=follow, max_output_tokens=8, tools=tools, tool_choice="none")
    assert r.output_text and not [o for o in r.output if o.type == "function_call"], r


def check_stored(model):
    """Stored responses (retrieve, input items, delete) pass through to the OpenAI provider
    that holds them; `x-tollgate-model` names whose."""
    r = oai.responses.create(model=model, input="hello", max_output_tokens=8)
    h = {"x-tollgate-model": model}
    got = oai.responses.retrieve(r.id, extra_headers=h)
    assert got.id == r.id and got.status == "completed", got
    items = oai.responses.input_items.list(r.id, extra_headers=h)
    assert items.data and items.data[0].type == "message", items
    oai.responses.delete(r.id, extra_headers=h)
    try:
        oai.responses.retrieve("resp_nowhere", extra_headers=h)
        raise AssertionError("an unknown response was found")
    except openai.NotFoundError:
        pass


def check_responses_refusals(translated_model):
    """What only OpenAI runs is refused by name on a translated route."""
    for tool in [{"type": "web_search"}, {"type": "code_interpreter", "container": {"type": "auto"}}]:
        try:
            oai.responses.create(model=translated_model, input="hello", tools=[tool])
            raise AssertionError(f"{tool} went to a provider that cannot run it")
        except openai.BadRequestError as e:
            assert tool["type"] in str(e), e


def check_gemini(model):
    """google-genai against the Gemini-native endpoints (key in x-goog-api-key)."""
    config = genai_types.GenerateContentConfig(max_output_tokens=8)
    r = gem.models.generate_content(model=model, contents="hello", config=config)
    assert r.text, r
    assert r.usage_metadata.candidates_token_count == 8, r.usage_metadata
    chunks = list(gem.models.generate_content_stream(model=model, contents="hello", config=config))
    assert "".join(c.text or "" for c in chunks) == r.text, chunks
    assert chunks[-1].usage_metadata.candidates_token_count == 8, chunks[-1]
    names = [m.name for m in gem.models.list()]
    assert f"models/{model}" in names, names

    # Function calling (the SDK's automatic calling off: the test plays the function).
    tool = genai_types.Tool(
        function_declarations=[
            genai_types.FunctionDeclaration(
                name="get_weather",
                description="Current weather in a city",
                parameters_json_schema=OAI_TOOLS[0]["function"]["parameters"],
            )
        ]
    )
    with_tools = genai_types.GenerateContentConfig(
        max_output_tokens=8,
        tools=[tool],
        automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
    )
    r = gem.models.generate_content(model=model, contents="weather?", config=with_tools)
    assert len(r.function_calls) == 1 and r.function_calls[0].name == "get_weather", r
    assert isinstance(r.function_calls[0].args, dict), r.function_calls[0]
    chunks = list(gem.models.generate_content_stream(model=model, contents="weather?", config=with_tools))
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert [c.name for c in calls] == ["get_weather"], chunks
    answer = genai_types.Part.from_function_response(name="get_weather", response={"content": "18C"})
    contents = [
        genai_types.Content(role="user", parts=[genai_types.Part.from_text(text="weather?")]),
        r.candidates[0].content,
        genai_types.Content(role="user", parts=[answer]),
    ]
    no_calls = genai_types.GenerateContentConfig(
        max_output_tokens=8,
        tools=[tool],
        tool_config=genai_types.ToolConfig(
            function_calling_config=genai_types.FunctionCallingConfig(mode="NONE")
        ),
        automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
    )
    r = gem.models.generate_content(model=model, contents=contents, config=no_calls)
    assert r.text and not r.function_calls, r

    bad = genai.Client(api_key="sk-wrong", http_options=genai_types.HttpOptions(base_url=BASE))
    try:
        bad.models.generate_content(model=model, contents="hello", config=config)
        raise AssertionError("a wrong key was served")
    except genai_errors.ClientError as e:
        assert e.code == 401, e


def check_anthropic(model):
    listed = ant.models.list()
    assert model in [m.id for m in listed.data] and listed.has_more is False, listed
    assert all(m.type == "model" and m.created_at.year == 1970 for m in listed.data), listed

    m = ant.messages.create(model=model, max_tokens=8, messages=HELLO)
    assert m.type == "message" and m.content[0].type == "text" and m.content[0].text, m
    assert m.stop_reason == "end_turn", m
    assert m.usage.output_tokens == 8, m.usage

    with ant.messages.stream(model=model, max_tokens=8, messages=HELLO) as s:
        final = s.get_final_message()
    assert final.content[0].text == m.content[0].text, final
    assert final.usage.output_tokens == 8 and final.usage.input_tokens > 0, final.usage

    m = ant.messages.create(
        model=model, max_tokens=8, messages=HELLO, tools=ANT_TOOLS, tool_choice={"type": "any"}
    )
    use = [b for b in m.content if b.type == "tool_use"]
    assert len(use) == 1 and use[0].name == "get_weather" and isinstance(use[0].input, dict), m
    assert m.stop_reason == "tool_use", m
    with ant.messages.stream(model=model, max_tokens=8, messages=HELLO, tools=ANT_TOOLS) as s:
        final = s.get_final_message()
    use = [b for b in final.content if b.type == "tool_use"]
    assert len(use) == 1 and use[0].name == "get_weather" and isinstance(use[0].input, dict), final
    assert final.stop_reason == "tool_use", final

    follow = HELLO + [
        {"role": "assistant", "content": [u.model_dump() for u in use]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use[0].id, "content": "18C"}]},
    ]
    m = ant.messages.create(model=model, max_tokens=8, messages=follow)
    assert m.content[0].type == "text", m

    bad = anthropic.Anthropic(base_url=BASE, api_key="sk-wrong", max_retries=0)
    try:
        bad.messages.create(model=model, max_tokens=8, messages=HELLO)
        raise AssertionError("a wrong key was served")
    except anthropic.AuthenticationError:
        pass
    try:
        ant.messages.create(model="no-such-model", max_tokens=8, messages=HELLO)
        raise AssertionError("an unknown model was served")
    except anthropic.NotFoundError:
        pass


def check_bedrock(model):
    """boto3's converse and converse_stream (its own event-stream parser) against tollgate."""
    msgs = [{"role": "user", "content": [{"text": "hello"}]}]
    r = brt.converse(modelId=model, messages=msgs, inferenceConfig={"maxTokens": 8})
    text = r["output"]["message"]["content"][0]["text"]
    assert text and r["stopReason"] == "end_turn", r
    assert r["usage"]["outputTokens"] == 8 and r["usage"]["inputTokens"] > 0, r["usage"]

    s = brt.converse_stream(modelId=model, messages=msgs, inferenceConfig={"maxTokens": 8})
    events = list(s["stream"])
    deltas = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert deltas == text, (deltas, text)
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 8, events[-1]
    assert [e for e in events if "messageStop" in e][0]["messageStop"]["stopReason"] == "end_turn"

    tools = {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "inputSchema": {"json": OAI_TOOLS[0]["function"]["parameters"]},
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    ask = [{"role": "user", "content": [{"text": "weather?"}]}]
    r = brt.converse(modelId=model, messages=ask, inferenceConfig={"maxTokens": 8}, toolConfig=tools)
    use = [b["toolUse"] for b in r["output"]["message"]["content"] if "toolUse" in b]
    assert len(use) == 1 and use[0]["name"] == "get_weather" and isinstance(use[0]["input"], dict), r
    assert r["stopReason"] == "tool_use", r
    s = brt.converse_stream(modelId=model, messages=ask, inferenceConfig={"maxTokens": 8}, toolConfig=tools)
    events = list(s["stream"])
    starts = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    fragments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]
    )
    assert [t["name"] for t in starts] == ["get_weather"], events
    assert isinstance(json.loads(fragments), dict), fragments

    # The result goes back; the model answers.
    follow = ask + [
        {"role": "assistant", "content": [{"toolUse": use[0]}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": use[0]["toolUseId"], "content": [{"text": "18C"}]}}]},
    ]
    r = brt.converse(
        modelId=model, messages=follow, inferenceConfig={"maxTokens": 8}, toolConfig={"tools": tools["tools"]}
    )
    assert r["output"]["message"]["content"], r

    os.environ["AWS_BEARER_TOKEN_BEDROCK"] = "sk-wrong"
    try:
        bedrock_client().converse(modelId=model, messages=msgs)
        raise AssertionError("a wrong key was served")
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 401, e.response
    finally:
        os.environ["AWS_BEARER_TOKEN_BEDROCK"] = KEY


def check_cache(model):
    """A model with a response cache: a stream fills the entry; the same request is then
    served from it — as JSON, and replayed as a stream that each SDK's own stream parser
    reads — with the original answer and usage, in OpenAI's and Anthropic's dialects."""
    msgs = [{"role": "user", "content": "cache me, please"}]
    raw = oai.chat.completions.with_raw_response.create(
        model=model, messages=msgs, max_tokens=8, stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers.get("x-tollgate-cache") == "miss", raw.headers
    text, usage = "", None
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    assert text and usage is not None and usage.completion_tokens == 8, (text, usage)
    raw = oai.chat.completions.with_raw_response.create(model=model, messages=msgs, max_tokens=8)
    assert raw.headers.get("x-tollgate-cache") == "hit", raw.headers
    assert int(raw.headers["age"]) >= 0, raw.headers
    r = raw.parse()
    assert r.choices[0].message.content == text and r.usage.completion_tokens == 8, r
    with oai.chat.completions.stream(
        model=model, messages=msgs, max_tokens=8, stream_options={"include_usage": True}
    ) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == text, final
    assert final.usage.completion_tokens == 8, final.usage

    # Anthropic's SDK: the same model, its own dialect's entry.
    raw = ant.messages.with_raw_response.create(model=model, max_tokens=8, messages=msgs)
    assert raw.headers.get("x-tollgate-cache") == "miss", raw.headers
    first = raw.parse()
    with ant.messages.stream(model=model, max_tokens=8, messages=msgs) as s:
        final = s.get_final_message()
        assert s.response.headers.get("x-tollgate-cache") == "hit", s.response.headers
    assert final.content[0].text == first.content[0].text, final
    assert final.usage.output_tokens == 8 and final.stop_reason == first.stop_reason, final


def check_guardrails(model):
    """A key with guardrails: its prompt reaches the provider redacted (the mock's received
    bodies say so), the model's placeholders come back as the client's values (JSON and
    through each SDK's stream parser), and a blocked prompt is each SDK's own error."""
    import urllib.request

    g_oai = openai.OpenAI(base_url=BASE + "/v1", api_key=os.environ["TOLLGATE_GUARD_KEY"], max_retries=0)
    g_ant = anthropic.Anthropic(base_url=BASE, api_key=os.environ["TOLLGATE_GUARD_KEY"], max_retries=0)
    g_gem = genai.Client(
        api_key=os.environ["TOLLGATE_GUARD_KEY"], http_options=genai_types.HttpOptions(base_url=BASE)
    )

    def last_body():
        with urllib.request.urlopen(os.environ["TOLLGATE_MOCK_URL"] + "/mock/stats") as r:
            return json.loads(r.read())["bodies"][-1]

    msgs = [{"role": "user", "content": "Mail me at jo.doe@corp.example.com about card 4111 1111 1111 1111."}]
    say = {"x-mock-say": "Noted: I will write to [EMAIL_1] today.", "x-mock-token-bytes": "2"}
    r = g_oai.chat.completions.create(model=model, messages=msgs, max_tokens=8, extra_headers=say)
    sent = last_body()
    assert "jo.doe" not in sent and "4111" not in sent, sent
    assert "[EMAIL_1]" in sent and "[CARD_1]" in sent, sent
    assert r.choices[0].message.content == "Noted: I will write to jo.doe@corp.example.com today.", r
    with g_oai.chat.completions.stream(model=model, messages=msgs, max_tokens=8, extra_headers=say) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == "Noted: I will write to jo.doe@corp.example.com today.", final
    with g_ant.messages.stream(model=model, max_tokens=8, messages=msgs, extra_headers=say) as s:
        final = s.get_final_message()
    assert final.content[0].text == "Noted: I will write to jo.doe@corp.example.com today.", final

    banned = [{"role": "user", "content": "What is the status of Project Falcon?"}]
    try:
        g_oai.chat.completions.create(model=model, messages=banned, max_tokens=8)
        raise AssertionError("not blocked")
    except openai.BadRequestError as e:
        assert e.code == "guardrail_blocked" and "`banned`" in e.message, e
        assert "falcon" not in e.message.lower(), e
    try:
        g_ant.messages.create(model=model, max_tokens=8, messages=banned)
        raise AssertionError("not blocked")
    except anthropic.BadRequestError as e:
        assert e.body["error"]["type"] == "invalid_request_error", e.body
        assert "`banned`" in e.body["error"]["message"], e.body
    try:
        g_gem.models.generate_content(model=model, contents="Project Falcon status?")
        raise AssertionError("not blocked")
    except genai_errors.ClientError as e:
        assert e.code == 400 and "`banned`" in str(e.message), e


def main():
    args = sys.argv[1:]
    split = args.index("--")
    for model in args[:split]:
        check_openai(model)
        print(f"openai sdk {openai.__version__}: {model} ok")
    for model in args[split + 1 :]:
        check_anthropic(model)
        print(f"anthropic sdk {anthropic.__version__}: {model} ok")
    check_openai_refusal(args[:split][-1])
    # The Responses API and Gemini's own API, from each provider: the same dialect (passed
    # through) and the others (translated).
    for model in args[:split]:
        check_responses(model)
        print(f"openai sdk {openai.__version__}: responses via {model} ok")
    check_responses_refusals(args[split + 1])
    check_stored(args[0])
    print(f"openai sdk {openai.__version__}: stored responses via {args[0]} ok")
    for model in args[:split]:
        check_gemini(model)
        print(f"google-genai {genai.__version__}: {model} ok")
    # boto3 against the Bedrock ingress: every provider, and a Bedrock-style model id (its `:`
    # goes percent-encoded in the path).
    for model in args[:split] + ["anthropic.claude-like-v1:0"]:
        check_bedrock(model)
        print(f"boto3 {boto3.__version__}: {model} ok")
    check_cache("cached")
    print(f"openai sdk {openai.__version__}, anthropic sdk {anthropic.__version__}: cached ok")
    check_guardrails(args[0])
    print(f"openai, anthropic and google-genai sdks: guardrails ok")


if __name__ == "__main__":
    main()
