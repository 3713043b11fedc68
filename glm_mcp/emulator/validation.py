"""Checks a chat request body the way the platform does and turns it into a typed request."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from .config import EmulatorConfig, traits_of
from .errors import ApiError, bad_request, platform_error

ROLES = frozenset({"system", "user", "assistant", "tool"})
PART_TYPES = frozenset({"text", "image_url", "video_url", "file_url"})
SEARCH_ENGINES = frozenset(
    {"search_std", "search_pro", "search_pro_sogou", "search_pro_quark", "search_pro_jina", "search_pro_bing"}
)
RECENCY_FILTERS = frozenset({"oneDay", "oneWeek", "oneMonth", "oneYear", "noLimit"})
MAX_TOOLS = 128
MAX_IMAGE_BYTES = 5 * 1024 * 1024
"""An image's limit on the vision models' pages: 5 MB."""
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
MAX_SEARCH_COUNT = 50
MIN_TOP_P = 0.01
_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


@dataclass(frozen=True)
class FunctionTool:
    """A ``{"type": "function"}`` tool the model may call."""

    name: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Retrieval:
    """A ``{"type": "retrieval"}`` tool: answer from a knowledge base."""

    knowledge_id: str
    prompt_template: str | None = None


@dataclass(frozen=True)
class WebSearch:
    """The options of an enabled ``web_search`` tool, defaults filled in."""

    engine: str = "search_std"
    query: str | None = None
    count: int = 10
    domain: str | None = None
    recency: str = "noLimit"
    content_size: str = "medium"
    results_first: bool = False
    search_result: bool = False
    require_search: bool = False
    prompt: str | None = None


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat request: only what changes the answer, in convenient types."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    stream: bool = False
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    json_mode: bool = False
    thinking: bool = True
    functions: tuple[FunctionTool, ...] = ()
    web_search: WebSearch | None = None
    retrieval: Retrieval | None = None
    tool_stream: bool = False
    request_id: str | None = None
    context_window: int | None = None
    """Prompt tokens the model reads at most; a longer prompt is refused with 400 / 1261."""


def request_id_of(body: object) -> str | None:
    """The caller's ``request_id``, echoed in errors as well as in answers."""
    rid = body.get("request_id") if isinstance(body, dict) else None
    return rid if isinstance(rid, str) and rid else None


def parse_chat(body: object, config: EmulatorConfig) -> ChatRequest:
    """Validate a parsed JSON body; raise the ApiError the platform would answer.

    ``null`` is accepted for every optional field (the SDKs send ``"thinking": null``) and unknown
    fields are ignored.
    """
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if model is None or model == "":
        raise ApiError(400, "1213", "The model parameter was not received.")
    if not isinstance(model, str):
        raise bad_request("model must be a string.")
    if model not in config.models:
        raise platform_error("1211", model)
    messages = _messages(body.get("messages"), vision=traits_of(model).vision, model=model)
    tools = optional(body, "tools", list) or []
    if len(tools) > MAX_TOOLS:
        raise bad_request(f"At most {MAX_TOOLS} tools are allowed, got {len(tools)}.")
    functions, web_search, retrieval = _tools(tools)
    for name, low in (("temperature", 0.0), ("top_p", MIN_TOP_P)):
        value = optional(body, name, int | float)
        if value is not None and not low <= value <= 1:
            raise bad_request(f"{name} must be between {low:g} and 1, got {value}.")
    optional(body, "do_sample", bool)
    cap = config.limits_of(model).max_output
    max_tokens = optional(body, "max_tokens", int)
    if max_tokens is not None and not 1 <= max_tokens <= cap:
        raise bad_request(f"max_tokens must be between 1 and {cap} for {model}, got {max_tokens}.")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and tool_choice != "auto":
        raise bad_request(f"tool_choice only supports 'auto', got {tool_choice!r}.")
    stream = bool(optional(body, "stream", bool))
    tool_stream = bool(optional(body, "tool_stream", bool))
    if tool_stream and not stream:
        raise bad_request("tool_stream requires stream to be true.")
    user_id = optional(body, "user_id", str)
    if user_id is not None and not 6 <= len(user_id) <= 128:
        raise bad_request("user_id must be 6 to 128 characters long.")
    response_format = _choice(optional(body, "response_format", dict), "response_format", {"text", "json_object"})
    thinking = _choice(optional(body, "thinking", dict), "thinking", {"enabled", "disabled"})
    optional(body, "request_id", str)  # only checks the type: request_id_of() reads it
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        stream=stream,
        max_tokens=max_tokens,
        stop=_stop(body.get("stop")),
        json_mode=response_format == "json_object",
        thinking=thinking != "disabled",
        functions=functions,
        web_search=web_search,
        retrieval=retrieval,
        tool_stream=tool_stream and traits_of(model).tool_stream,
        request_id=request_id_of(body),
        context_window=config.limits_of(model).context,
    )


def message_text(message: dict[str, Any]) -> str:
    """The text a message carries: its string content or the joined text parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if part.get("type") == "text")
    return ""


def optional(body: dict[str, Any], name: str, kind: Any) -> Any:
    """``body[name]`` when present and of type ``kind``; None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise bad_request(f"{name} has the wrong type.")
    return value


def _choice(obj: dict[str, Any] | None, name: str, allowed: set[str]) -> str | None:
    """The ``type`` of an object option such as ``{"type": "json_object"}``."""
    if obj is None:
        return None
    kind = obj.get("type")
    if kind not in allowed:
        raise bad_request(f"{name}.type must be one of {sorted(allowed)}, got {kind!r}.")
    return str(kind)


def _stop(stop: object) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return tuple(s for s in stop if s)
    raise bad_request("stop must be a string or a list of strings.")


def _illegal(message: str) -> ApiError:
    return ApiError(400, "1214", f"Illegal messages: {message}")


def _messages(messages: object, *, vision: bool, model: str) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _illegal("messages must be a non-empty list.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise _illegal(f"messages[{i}] needs a role among {sorted(ROLES)}.")
        role = message["role"]
        if role == "tool" and not message.get("tool_call_id"):
            raise _illegal(f"messages[{i}] is a tool message without tool_call_id.")
        content = message.get("content")
        if content is None and not (role == "assistant" and message.get("tool_calls")):
            raise _illegal(f"messages[{i}] has no content.")
        if isinstance(content, list):
            _parts(content, i, vision=vision, model=model)
        elif content is not None and not isinstance(content, str):
            raise _illegal(f"messages[{i}].content must be a string or a list of parts.")
    if all(m["role"] in ("system", "assistant") for m in messages):
        raise _illegal("messages cannot contain only system and assistant messages.")
    return messages


def _parts(parts: list[Any], i: int, *, vision: bool, model: str) -> None:
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in PART_TYPES:
            raise _illegal(f"messages[{i}] has a content part of unknown type {kind!r}.")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise _illegal(f"messages[{i}] has a text part without text.")
            continue
        if not vision:
            raise bad_request(f"Model {model} does not support {kind} content; use a vision model.")
        media = part.get(kind)
        if not isinstance(media, dict) or not isinstance(media.get("url"), str) or not media["url"]:
            raise _illegal(f"messages[{i}] has a {kind} part without {kind}.url.")
        if kind == "image_url":
            _image(media["url"], i)


def _image(url: str, i: int) -> None:
    """An image is an http(s) URL or base64 (a ``data:`` prefix allowed) of a png, jpeg, gif or webp within 5 MB."""
    if url.startswith(("http://", "https://")):
        return
    data = url.split(",", 1)[1] if url.startswith("data:") and "," in url else url
    try:
        image = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"messages[{i}] has an image_url that is neither a URL nor base64 image data.") from None
    if len(image) > MAX_IMAGE_BYTES:
        raise bad_request(f"messages[{i}] has an image of {len(image)} bytes, over the 5 MB limit.")
    if not (image.startswith(_IMAGE_MAGIC) or (image[:4] == b"RIFF" and image[8:12] == b"WEBP")):
        raise bad_request(f"messages[{i}] has image data that is not a png, jpeg, gif or webp image.")


def _tools(tools: list[Any]) -> tuple[tuple[FunctionTool, ...], WebSearch | None, Retrieval | None]:
    functions: list[FunctionTool] = []
    web_search: WebSearch | None = None
    retrieval: Retrieval | None = None
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        spec = tool.get(kind) if isinstance(tool, dict) and isinstance(kind, str) else None
        if kind not in ("function", "retrieval", "web_search") or not isinstance(spec, dict):
            raise bad_request(f"tools[{i}] must be a function, retrieval or web_search tool with its object.")
        if kind == "function":
            name = spec.get("name")
            if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                raise bad_request(f"tools[{i}].function.name must match ^[a-zA-Z0-9_-]{{1,64}}$.")
            parameters = spec.get("parameters")
            functions.append(FunctionTool(name, parameters if isinstance(parameters, dict) else {}))
        elif kind == "web_search" and spec.get("enable") is not False:
            web_search = search_options(spec)
        elif kind == "retrieval":
            knowledge_id = spec.get("knowledge_id")
            if not isinstance(knowledge_id, str) or not knowledge_id:
                raise bad_request(f"tools[{i}].retrieval.knowledge_id is required.")
            retrieval = Retrieval(knowledge_id, optional(spec, "prompt_template", str) or None)
    return tuple(functions), web_search, retrieval


def search_options(spec: dict[str, Any], engine: str | None = None) -> WebSearch:
    """The options shared by the ``web_search`` tool and ``POST /web_search``, checked against the documented
    ranges: ``count`` 1-50 (10-50 by tens on ``search_pro_sogou``), the listed engines, filters and sizes."""
    defaults = WebSearch()
    engine = engine or optional(spec, "search_engine", str) or defaults.engine
    if engine not in SEARCH_ENGINES:
        raise bad_request(f"Unknown search_engine {engine!r}.")
    recency = optional(spec, "search_recency_filter", str) or defaults.recency
    if recency not in RECENCY_FILTERS:
        raise bad_request(f"Unknown search_recency_filter {recency!r}.")
    content_size = optional(spec, "content_size", str) or defaults.content_size
    if content_size not in ("medium", "high"):
        raise bad_request(f"content_size must be medium or high, got {content_size!r}.")
    count = optional(spec, "count", int)
    if count is not None and not 1 <= count <= MAX_SEARCH_COUNT:
        raise bad_request(f"count must be between 1 and {MAX_SEARCH_COUNT}, got {count}.")
    if count is not None and engine == "search_pro_sogou" and count % 10:
        raise bad_request(f"count must be 10, 20, 30, 40 or 50 with search_pro_sogou, got {count}.")
    return WebSearch(
        engine=engine,
        query=optional(spec, "search_query", str) or None,
        count=count or defaults.count,
        domain=optional(spec, "search_domain_filter", str) or None,
        recency=recency,
        content_size=content_size,
        results_first=optional(spec, "result_sequence", str) == "before",
        search_result=bool(optional(spec, "search_result", bool)),
        require_search=bool(optional(spec, "require_search", bool)),
        prompt=optional(spec, "search_prompt", str) or None,
    )
