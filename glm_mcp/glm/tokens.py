"""A prompt's tokens before it is sent: what the platform's tokenizer counts, kept by content, and what can be said
without asking it.

The tokenizer (`GLMClient.count_tokens`, POST /tokenizer) is a request of its own, so nothing on a chat's path asks
it unless the call wants a count (`estimate_tokens`) or a cost above GLM_CONFIRM_ABOVE may be at stake. Without
it there are two figures: `local_estimate`, the generous guess the context-window trimming uses (a token a few
characters), and `upper_bound`, a figure the prompt is not expected to pass (a token a character), which decides
whether a prompt could cost enough to be worth counting at all.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from threading import Lock
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the wire types are imported by the calls that use them: not at start (AppState holds a cache)
    from glm_mcp.glm.types import ChatRequest, Message, TokenizerRequest

__all__ = ["COUNTS_KEPT", "TokenCounts", "content_key", "local_estimate", "tokenizer_request", "upper_bound"]

COUNTS_KEPT = 1024
"""How many prompts' counts a process keeps (the least recently used goes first): a count is a few dozen bytes."""


def tokenizer_request(request: ChatRequest) -> TokenizerRequest:
    """What the tokenizer is asked to count of `request`: its model, its messages and its functions (the tools the
    tokenizer takes). No request id: the chat's own is the platform's to see once, on the chat."""
    from glm_mcp.glm.types import FunctionTool, TokenizerRequest

    functions = [tool for tool in request.tools or () if isinstance(tool, FunctionTool)]
    return TokenizerRequest(model=request.model, messages=request.messages, tools=functions or None)


def content_key(request: TokenizerRequest, owner: str) -> str:
    """The key of a prompt's count: its content and whose it is (one caller's prompts tell another nothing, not even
    by how fast a count comes back)."""
    body = request.model_dump(mode="json", exclude_none=True, exclude={"request_id"})
    canonical = json.dumps([owner, body], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _sizes(request: ChatRequest) -> tuple[int, int]:
    """The characters of text `request` sends (its messages' and its functions' JSON) and its media parts."""
    from glm_mcp.glm.types import FunctionTool, TextPart

    chars = media = 0
    for message in request.messages:
        chars += _text_chars(message)
        if isinstance(message.content, list):
            media += sum(1 for part in message.content if not isinstance(part, TextPart))
    functions = [tool.model_dump(mode="json") for tool in request.tools or () if isinstance(tool, FunctionTool)]
    if functions:
        chars += len(json.dumps(functions, ensure_ascii=False))
    return chars, media


def _text_chars(message: Message) -> int:
    from glm_mcp.glm.types import TextPart

    content = message.content
    chars = (
        sum(len(part.text) for part in content if isinstance(part, TextPart))
        if isinstance(content, list)
        else len(content or "")
    )
    if message.tool_calls:
        chars += sum(len(call.model_dump_json()) for call in message.tool_calls)
    return chars


def local_estimate(request: ChatRequest) -> int:
    """The prompt's tokens as glm-mcp guesses them without asking (the estimate the context-window trimming uses:
    a token three characters, an image 1,600, 4 a message)."""
    from glm_mcp.glm.models import IMAGE_TOKENS, MESSAGE_OVERHEAD_TOKENS, estimated_tokens  # not at start, likewise

    chars, media = _sizes(request)
    return len(request.messages) * MESSAGE_OVERHEAD_TOKENS + estimated_tokens(chars) + media * IMAGE_TOKENS


def upper_bound(request: ChatRequest) -> int:
    """A figure the prompt's tokens are not expected to pass: a token a character (the platform's tokenizers take
    several characters a token in English and about one a character in Chinese), an image 1,600."""
    from glm_mcp.glm.models import IMAGE_TOKENS, MESSAGE_OVERHEAD_TOKENS  # not at start, likewise

    chars, media = _sizes(request)
    return len(request.messages) * MESSAGE_OVERHEAD_TOKENS + chars + media * IMAGE_TOKENS


class TokenCounts:
    """The platform's counts of prompts, by `content_key`: the last `kept` of them, in memory, for this process.

    The same prompt is not counted twice (a call asked again after a confirmation, the same files sent again).
    Safe to share between the event loop's tasks and threads.
    """

    def __init__(self, kept: int = COUNTS_KEPT) -> None:
        self._kept = kept
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = Lock()

    def get(self, key: str) -> int | None:
        with self._lock:
            tokens = self._counts.get(key)
            if tokens is not None:
                self._counts.move_to_end(key)
            return tokens

    def put(self, key: str, tokens: int) -> None:
        with self._lock:
            self._counts[key] = tokens
            self._counts.move_to_end(key)
            while len(self._counts) > self._kept:
                self._counts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._counts)
