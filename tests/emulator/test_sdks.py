"""The official SDKs judge the emulator: each one's own client, parsers and exceptions, pointed at it.

zai-sdk and openai are in the test extras. zhipuai cannot be: every 2.1.5 release pins PyJWT<2.9 while the
mcp SDK needs PyJWT>=2.10.1, so pip cannot install both; its tests run only where it was installed anyway
(``pip install --no-deps zhipuai``) and are skipped otherwise.

Non-streamed chat, async chat, images and the reader run with ``_strict_response_validation=True``, so each
answer must validate against the SDK's pydantic types, not just parse. Three of zai-sdk's types cannot validate
any answer the platform documents, so those calls use the SDK's default, lenient parsing: ``ChatCompletionChunk``
requires a field named ``extra_json``; ``WebSearchResp.search_result`` is typed as one object, not the list sent;
``VideoObject.video_result`` is required even while the task is still PROCESSING.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from glm_mcp.emulator import Emulator, EmulatorConfig
from glm_mcp.emulator.config import ModelLimits
from tests.emulator.conftest import GENERAL_KEY

EMULATOR_CONFIG = EmulatorConfig(async_delay=0.1, model_limits={"glm-4-airx": ModelLimits(200, 50)})
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}
ZHIPUAI_SKIP = "zhipuai pins PyJWT<2.9, which conflicts with mcp's PyJWT>=2.10.1; install it with --no-deps to run"


def _sdk(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.skip(ZHIPUAI_SKIP if name == "zhipuai" else f"{name} is not installed (pip install -e .[test])")


@dataclass
class GlmSdk:
    """zai-sdk or zhipuai (they share their design): the ``core`` module with the exceptions, and clients."""

    core: ModuleType
    strict: Any
    """Validates every answer against the SDK's types."""
    loose: Any
    """The SDK's default parsing, for the calls its types cannot validate (see the module docstring)."""
    make: Callable[..., Any]


@pytest.fixture(params=["zai", "zhipuai"])
def glm_sdk(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[GlmSdk]:
    name: str = request.param
    module = _sdk(name)
    client_class = module.ZaiClient if name == "zai" else module.ZhipuAI

    def make(strict: bool = False, api_key: str = GENERAL_KEY) -> Any:
        return client_class(
            api_key=api_key, base_url=emulator.base_url, max_retries=0, _strict_response_validation=strict
        )

    strict, loose = make(strict=True), make()
    yield GlmSdk(importlib.import_module(f"{name}.core"), strict, loose, make)
    strict.close()
    loose.close()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# --- zai-sdk and zhipuai ----------------------------------------------------------------------------------


def test_glm_sdk_chat_plain_and_streamed(glm_sdk: GlmSdk) -> None:
    answer = glm_sdk.strict.chat.completions.create(model="glm-4.6", messages=user("Why is the sky blue?"))
    assert answer.choices[0].finish_reason == "stop" and "the sky blue" in answer.choices[0].message.content
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    stream = glm_sdk.loose.chat.completions.create(model="glm-4.6", messages=user("Why is the sky blue?"), stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == answer.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.completion_tokens > 0


def test_glm_sdk_tool_calls_and_the_tool_result(glm_sdk: GlmSdk) -> None:
    client = glm_sdk.strict
    messages = user("Call get_weather for Paris, please")
    answer = client.chat.completions.create(model="glm-4.6", messages=messages, tools=[WEATHER], tool_choice="auto")
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["unit"] == "celsius"
    stream = glm_sdk.loose.chat.completions.create(
        model="glm-4.6", messages=messages, tools=[WEATHER], stream=True, extra_body={"tool_stream": True}
    )  # zhipuai's create() has no tool_stream parameter
    pieces = [tc for chunk in stream for tc in chunk.choices[0].delta.tool_calls or ()]
    assert len(pieces) > 2 and pieces[0].function.name == "get_weather"
    assert "".join(p.function.arguments or "" for p in pieces) == call.function.arguments
    follow = [
        *messages,
        {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    final = client.chat.completions.create(model="glm-4.6", messages=follow, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop" and "temperature" in final.choices[0].message.content


def test_glm_sdk_async_chat(glm_sdk: GlmSdk) -> None:
    client = glm_sdk.strict
    task = client.chat.asyncCompletions.create(model="glm-4-flash", messages=user("A short fairy tale"))
    assert task.task_status == "PROCESSING"
    for _ in range(100):
        result = client.chat.asyncCompletions.retrieve_completion_result(id=task.id)
        if result.task_status != "PROCESSING":
            break
        time.sleep(0.05)
    assert result.task_status == "SUCCESS" and result.choices[0].message.content
    assert result.usage.total_tokens > 0


def test_glm_sdk_images_video_and_search(glm_sdk: GlmSdk) -> None:
    image = glm_sdk.strict.images.generations(model="cogview-4", prompt="a lighthouse at dusk", size="1344x768")
    assert image.created > 0 and image.data[0].url.startswith("http://127.0.0.1:")
    loose = glm_sdk.loose
    video = loose.videos.generations(model="cogvideox-3", prompt="waves on a beach")
    assert video.task_status == "PROCESSING"
    for _ in range(100):
        done = loose.videos.retrieve_videos_result(id=video.id)
        if done.task_status != "PROCESSING":
            break
        time.sleep(0.05)
    assert done.task_status == "SUCCESS" and ".png?expires=" in done.video_result[0].cover_image_url
    found = loose.web_search.web_search(search_engine="search_pro", search_query="lighthouse history", count=3)
    assert [s["refer"] if isinstance(s, dict) else s.refer for s in found.search_result] == ["ref_1", "ref_2", "ref_3"]


def test_glm_sdk_errors(glm_sdk: GlmSdk, emulator: Emulator) -> None:
    core, client = glm_sdk.core, glm_sdk.strict
    with pytest.raises(core.APIRequestFailedError) as too_long:
        client.chat.completions.create(model="glm-4-airx", messages=user("x" * 1000))
    assert too_long.value.status_code == 400 and '"1261"' in str(too_long.value)
    with pytest.raises(core.APIRequestFailedError):
        client.chat.completions.create(model="glm-4.6", messages=user("hi"), tool_choice="none")
    with pytest.raises(core.APIRequestFailedError):
        client.images.generations(model="cogview-4", prompt="x", size="1000x1000")
    emulator.inject("error:1302", path="/chat/completions")
    with pytest.raises(core.APIReachLimitError):
        client.chat.completions.create(model="glm-4.6", messages=user("hi"))
    with pytest.raises(core.APIAuthenticationError):
        glm_sdk.make(api_key="someone.else").chat.completions.create(model="glm-4.6", messages=user("hi"))


def test_zai_reader(emulator: Emulator) -> None:
    zai = _sdk("zai")
    with zai.ZaiClient(api_key=GENERAL_KEY, base_url=emulator.base_url, _strict_response_validation=True) as client:
        page = client.web_reader.web_reader(url="https://example.com/docs/getting-started", with_links_summary=True)
        result = page.reader_result
        assert result.url == "https://example.com/docs/getting-started" and result.content.startswith("# ")
        assert result.published_time and result.links and result.metadata["og:site_name"] == "example.com"
        with pytest.raises(zai.core.APIRequestFailedError):
            client.web_reader.web_reader(url="https://nowhere.invalid/")


# --- openai -------------------------------------------------------------------------------------------------


@pytest.fixture
def openai_client(emulator: Emulator) -> Iterator[Any]:
    openai = _sdk("openai")
    with openai.OpenAI(api_key=GENERAL_KEY, base_url=emulator.base_url, max_retries=0) as client:
        yield client


def test_openai_chat_stream_and_request_id(openai_client: Any) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(model="glm-4.7", messages=user("Name a river"))
    answer = raw.parse()
    assert raw.headers["x-request-id"] and answer._request_id == raw.headers["x-request-id"]
    assert answer.choices[0].message.content and answer.usage.completion_tokens_details.reasoning_tokens > 0
    stream = openai_client.chat.completions.create(model="glm-4.7", messages=user("Name a river"), stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == answer.choices[0].message.content


def test_openai_tool_calls(openai_client: Any) -> None:
    messages = user("get_weather in Oslo")
    answer = openai_client.chat.completions.create(
        model="glm-4.6", messages=messages, tools=[WEATHER], tool_choice="auto"
    )
    (call,) = answer.choices[0].message.tool_calls
    assert answer.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    stream = openai_client.chat.completions.create(
        model="glm-4.6", messages=messages, tools=[WEATHER], stream=True, extra_body={"tool_stream": True}
    )
    pieces = [tc for chunk in stream if chunk.choices for tc in chunk.choices[0].delta.tool_calls or ()]
    assert "".join(p.function.arguments or "" for p in pieces) == call.function.arguments
    follow = [
        *messages,
        answer.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    final = openai_client.chat.completions.create(model="glm-4.6", messages=follow, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop" and "sunny" in final.choices[0].message.content


def test_openai_images_and_errors(openai_client: Any) -> None:
    openai = _sdk("openai")
    image = openai_client.images.generate(model="cogview-4", prompt="a quiet harbour")
    assert image.data[0].url.startswith("http://127.0.0.1:")
    with pytest.raises(openai.BadRequestError) as too_long:
        openai_client.chat.completions.create(model="glm-4-airx", messages=user("x" * 1000))
    assert too_long.value.code == "1261" and too_long.value.request_id
    with pytest.raises(openai.BadRequestError) as cap:
        openai_client.chat.completions.create(model="glm-4-flash", messages=user("hi"), max_tokens=5000)
    assert cap.value.code == "1210"
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client.get("/no/such/route", cast_to=object)
    assert missing.value.code == "404"
    with pytest.raises(openai.AuthenticationError):
        openai_client.with_options(api_key="someone.else").models.list()


def test_zai_client_reads_the_tokenizers_answer(emulator: Emulator) -> None:
    """zai-sdk has no tokenizer resource (0.2.3); its own client, posting to the path as the API reference shows, reads
    the emulator's answer into the reference's shape, validated strictly, and its count is the chat's prompt_tokens."""
    zai = _sdk("zai")

    class TokenizerUsage(zai.core.BaseModel):  # type: ignore[misc,name-defined]
        prompt_tokens: int
        image_tokens: int
        video_tokens: int
        total_tokens: int

    class TokenizerAnswer(zai.core.BaseModel):  # type: ignore[misc,name-defined]
        id: str
        usage: TokenizerUsage
        created: int
        request_id: str

    messages = user("What opportunities will the industry face in 2025?")
    with zai.ZaiClient(api_key=GENERAL_KEY, base_url=emulator.base_url, _strict_response_validation=True) as client:
        counted = client.post("/tokenizer", cast_type=TokenizerAnswer, body={"model": "glm-4.6", "messages": messages})
        answer = client.chat.completions.create(model="glm-4.6", messages=messages)
        with pytest.raises(zai.core.APIRequestFailedError):
            client.post("/tokenizer", cast_type=TokenizerAnswer, body={"model": "glm-4.6", "messages": []})
    assert counted.usage.prompt_tokens == counted.usage.total_tokens == answer.usage.prompt_tokens
    assert counted.id and counted.created > 0 and counted.request_id
