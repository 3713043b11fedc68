"""What the emulated model answers: content, reasoning, tool calls, sources and usage.

Everything but ids, timestamps and cached tokens is a pure function of the request, so the
streamed and non-streamed answers to a request are the same reply sent two ways.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from .config import traits_of
from .errors import ApiError
from .prose import NOUNS, Dice, count_tokens, fill, keywords, paragraph, quote, sentence, truncate_tokens
from .search import search
from .validation import ChatRequest, FunctionTool, Retrieval, WebSearch, message_text

FAIL_MARKER = "[emulator:fail]"
"""In the last user message: the reply breaks off (``network_error``; an async task FAILs)."""
SENSITIVE_MARKER = "[emulator:sensitive]"
"""In the last user message: the content filter trips (400 / 1301, or ``sensitive`` mid-stream)."""
LENGTH_MARKER = re.compile(r"\[emulator:chars=(\d{1,7})\]")
"""In the last user message: the answer runs to at least that many characters (a long answer, on request)."""
PER_MESSAGE_TOKENS = 4
BOX = ("<|begin_of_box|>", "<|end_of_box|>")

_ACKS = ("You asked about “{q}”.", "Regarding “{q}”:", "On “{q}”, here is a short answer.")
_AFTERTHOUGHTS = ("A short answer with one example should be enough.", "Let me keep it brief and concrete.")
_CITED = (
    "Sources on {K} describe {D} {A} {N} that {V} {D} {N} [{ref}].",
    "According to {media}, {K} {V} {D} {A} {N} [{ref}].",
    "One report links {K} to {D} {A} {N} {P} {D} {N} [{ref}].",
    "Coverage of {K} notes that {D} {N} {R} {V} {D} {N} [{ref}].",
)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int | None
    """None for models that do not report it (GLM-4 and GLM-Z1)."""


@dataclass(frozen=True)
class Reply:
    """One answer, independent of how it is sent (JSON, stream, or async task)."""

    content: str
    reasoning: str | None
    tool_calls: tuple[dict[str, Any], ...]
    finish_reason: str
    usage: Usage
    web_search: list[dict[str, Any]] | None
    """The sources to return, or None when ``search_result`` was not asked for."""
    results_first: bool = False


CacheLookup = Callable[[Sequence[tuple[str, int]]], int]
"""Given (prefix key, tokens up to that prefix) pairs, the cached tokens; remembers the prefixes."""


def generate(
    request: ChatRequest, cache: CacheLookup, today: date | None = None, break_off: str | None = None
) -> Reply:
    """Answer a validated request; ``cache`` turns the prompt prefixes into cached tokens.

    ``break_off`` (a finish reason, from a ``finish`` fault) stops the content halfway with that reason.
    """
    traits = traits_of(request.model)
    seed = _digest({"model": request.model, "messages": request.messages})
    dice = Dice(seed, "reply")
    last = request.messages[-1]
    user_text = next((message_text(m) for m in reversed(request.messages) if m["role"] == "user"), "")
    prefixes = _prompt_prefixes(request)
    prompt_tokens = prefixes[-1][1]
    if request.context_window is not None and prompt_tokens > request.context_window:
        raise ApiError(
            400,
            "1261",
            f"Prompt exceeds max length: {prompt_tokens} tokens, the model reads at most {request.context_window}.",
        )
    cached_tokens = cache(prefixes)

    calls = _tool_calls(request.functions, user_text, dice) if last["role"] == "user" else ()
    sources: list[dict[str, Any]] | None = None
    if calls:
        content, plan = "", f"The {calls[0]['function']['name']} function fits this request, so I will call it."
    elif request.web_search:
        query = request.web_search.query or user_text
        sources = search(request.web_search, query, today or date.today())
        prompt_tokens += math.ceil(sum(len(s["content"]) for s in sources) / 4)
        content, plan = _cited_answer(dice, _ack(dice, last), query, sources, request.web_search)
    elif request.retrieval and last["role"] == "user":
        content, plan = _knowledge_answer(dice, _ack(dice, last), user_text, request.retrieval)
    else:
        content = paragraph(dice, dice.between(40, 105), _ack(dice, last))
        if (wanted := LENGTH_MARKER.search(user_text)) is not None:
            while len(content) < int(wanted[1]):
                content += "\n\n" + paragraph(dice, 60)
        plan = fill("I should explain how {D} {N} {V} {D} {N}.", dice)
    if request.json_mode and not calls:
        content = json.dumps(
            {"answer": content, "confidence": round(0.5 + dice.below(50) / 100, 2), "topic": quote(user_text)},
            ensure_ascii=False,
        )
    reasoning = _reasoning(dice, last, plan) if traits.think_tags or (traits.thinks and request.thinking) else None
    if traits.vision and content:
        content = BOX[0] + content + BOX[1]
    if traits.think_tags:
        content, reasoning = f"<think>\n{reasoning}\n</think>\n{content}", None

    finish = "tool_calls" if calls else "stop"
    content = _cut_at_stop(content, request.stop)
    if SENSITIVE_MARKER in user_text or FAIL_MARKER in user_text:
        content = _halved(content)
        finish = "sensitive" if SENSITIVE_MARKER in user_text else "network_error"
    if request.max_tokens is not None and not calls:
        reasoning, content, cut = _fit(reasoning, content, request.max_tokens)
        finish = "length" if cut else finish
    if break_off is not None:
        content, finish = _halved(content), break_off

    reasoning_tokens = count_tokens(reasoning or "")
    call_tokens = sum(count_tokens(c["function"]["name"] + c["function"]["arguments"]) for c in calls)
    return Reply(
        content=content,
        reasoning=reasoning,
        tool_calls=calls,
        finish_reason=finish,
        usage=Usage(
            prompt_tokens=prompt_tokens,
            cached_tokens=cached_tokens,
            completion_tokens=reasoning_tokens + count_tokens(content) + call_tokens,
            reasoning_tokens=reasoning_tokens if traits.thinks else None,
        ),
        web_search=sources if request.web_search and request.web_search.search_result else None,
        results_first=bool(request.web_search and request.web_search.results_first),
    )


def prompt_tokens(request: ChatRequest) -> int:
    """The tokens of a request's prompt (its tools, then its messages), as its answer's ``usage`` counts them and
    ``POST /tokenizer`` reports them."""
    return _prompt_prefixes(request)[-1][1]


def prompt_tokens_of(message: dict[str, Any]) -> int:
    """Tokens of one message: ``4 + ceil(characters / 4)`` of its text and tool calls."""
    text = message_text(message)
    if message.get("tool_calls"):
        text += json.dumps(message["tool_calls"], ensure_ascii=False)
    return PER_MESSAGE_TOKENS + math.ceil(len(text) / 4)


def _prompt_prefixes(request: ChatRequest) -> list[tuple[str, int]]:
    """For every message prefix: a key naming (model, tools, prefix) and the prompt tokens so far.

    Tools cost ``ceil(characters of their JSON / 4)`` and come first, as in the real prompt.
    """
    key = _digest({"model": request.model, "tools": request.tools})
    tokens = math.ceil(len(json.dumps(request.tools, ensure_ascii=False)) / 4) if request.tools else 0
    prefixes = []
    for message in request.messages:
        key = _digest([key, message])
        tokens += prompt_tokens_of(message)
        prefixes.append((key, tokens))
    return prefixes


def _digest(value: object) -> str:
    canonical = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _ack(dice: Dice, last: dict[str, Any]) -> str:
    """The opening that shows which prompt (or tool result) the reply answers."""
    q = quote(message_text(last)) or "your message"
    if last["role"] == "tool":
        return f"The tool returned “{q}”."
    return dice.pick(_ACKS).format(q=q)


def _reasoning(dice: Dice, last: dict[str, Any], plan: str) -> str:
    """Two or three sentences of visible thinking: what was asked, the plan, maybe an afterthought."""
    about = quote(message_text(last)) or "an attachment"
    opening = f"The tool result is “{about}”." if last["role"] == "tool" else f"The user asks about “{about}”."
    afterthought = [dice.pick(_AFTERTHOUGHTS)] if dice.chance(0.5) else []
    return " ".join([opening, plan, *afterthought])


def _cited_answer(
    dice: Dice, ack: str, query: str, sources: list[dict[str, Any]], options: WebSearch
) -> tuple[str, str]:
    """An answer citing some of the sources as ``[ref_n]``, and the reasoning plan behind it."""
    terms = keywords(query) or ["this topic"]
    quoted = quote(query) or "the question"
    plan = f"I will search for {', '.join(terms)} and cite the most relevant sources."
    if options.prompt:
        plan += f" The search instructions say “{quote(options.prompt)}”."
    if not sources:
        if options.require_search:
            return f"{ack} No sources were found for “{quoted}”, so I cannot answer from search results.", plan
        return paragraph(dice, 30, f"{ack} No sources were found for “{quoted}”. From general knowledge:"), plan
    chosen = sorted({dice.below(len(sources)) for _ in range(dice.between(2, 4))})
    cited = [
        fill(dice.pick(_CITED), dice, K=dice.pick(terms), ref=sources[i]["refer"], media=sources[i]["media"])
        for i in chosen
    ]
    return " ".join([ack, *cited, sentence(dice)]), plan


def _knowledge_answer(dice: Dice, ack: str, question: str, retrieval: Retrieval) -> tuple[str, str]:
    """An answer drawn from the knowledge base: it names the base and quotes the question's key words."""
    terms = keywords(question) or ["this question"]
    facts = [
        f"The document in knowledge base {retrieval.knowledge_id} covers {' and '.join(terms)}.",
        fill("It says that {K} {V} {D} {A} {N}.", dice, K=dice.pick(terms)),
        fill("It also notes that {D} {N} {R} {V} {D} {N}.", dice),
    ]
    plan = f"I will look up {', '.join(terms)} in knowledge base {retrieval.knowledge_id}."
    if retrieval.prompt_template:
        plan += f" The prompt template says “{quote(retrieval.prompt_template)}”."
    return " ".join([ack, *facts, sentence(dice)]), plan


def _tool_calls(functions: Sequence[FunctionTool], text: str, dice: Dice) -> tuple[dict[str, Any], ...]:
    """A call for every offered function the user mentions by name, in the order of ``tools``."""
    mentioned = [f for f in functions if re.search(rf"(?<![\w-]){re.escape(f.name)}(?![\w-])", text, re.I)]
    return tuple(
        {
            "id": f"call_{secrets.token_hex(12)}",
            "index": i,
            "type": "function",
            "function": {"name": f.name, "arguments": json.dumps(_arguments(f, dice), ensure_ascii=False)},
        }
        for i, f in enumerate(mentioned)
    )


def _arguments(function: FunctionTool, dice: Dice) -> dict[str, Any]:
    """Short, schema-shaped values for the function's required parameters."""
    properties = function.parameters.get("properties") or {}
    required = [name for name in function.parameters.get("required") or [] if isinstance(name, str)]
    return {name: _value(properties.get(name) or {}, dice) for name in required}


def _value(schema: dict[str, Any], dice: Dice) -> Any:
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return dice.pick(schema["enum"])
    kind = schema.get("type")
    values: dict[Any, Callable[[], Any]] = {
        "integer": lambda: dice.between(1, 10),
        "number": lambda: dice.between(10, 100) / 10,
        "boolean": lambda: True,
        "array": list,
        "object": dict,
    }
    return values.get(kind, lambda: dice.pick(NOUNS))()


def _halved(content: str) -> str:
    """The first half of the content's tokens: an answer that broke off."""
    return truncate_tokens(content, count_tokens(content) // 2)


def _cut_at_stop(content: str, stops: Sequence[str]) -> str:
    """The content before the first occurrence of any stop string."""
    positions = [i for i in (content.find(s) for s in stops) if i >= 0]
    return content[: min(positions)] if positions else content


def _fit(reasoning: str | None, content: str, budget: int) -> tuple[str | None, str, bool]:
    """Cut reasoning, then content, to ``budget`` completion tokens; tell whether anything was cut."""
    reasoning_tokens = count_tokens(reasoning or "")
    if reasoning_tokens + count_tokens(content) <= budget:
        return reasoning, content, False
    if reasoning is not None:
        reasoning = truncate_tokens(reasoning, budget)
    return reasoning, truncate_tokens(content, budget - reasoning_tokens), True
