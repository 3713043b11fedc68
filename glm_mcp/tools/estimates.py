"""What a call is about to cost, before anything is sent: the spend a room states for the user to confirm
(GLM_CONFIRM_ABOVE, `server/confirmation.py`) and a chat prompt's tokens counted in advance (`estimate_tokens`).

Prices are the `usage` tool's: the built-in table (`glm.models.PRICES`, USD) with GLM_PRICES over it. A call
billed per call (an image, a video, a batch's items) states `per_call`; a chat states its prompt's tokens times its
model's input price (`chat_spend`), its answer's tokens coming on top. The prompt is counted by the platform's
tokenizer only when that could matter: when the call asks for a count, or when a generous bound of its tokens
(`glm.tokens.upper_bound`) would cost more than the threshold; otherwise a chat sends nothing more than before.
Counts are kept by content and caller (`AppState.token_counts`), so a call asked again after a confirmation, or the
same files sent again, is not counted twice.

A new room confirms with one line before it sends anything: `per_call` for what is billed per call, `per_token` for
tokens (a batch: its prompts' tokens, counted or bounded, at half the input price)::

    spend = per_token(app.settings, model, tokens, f"batch: {n} prompts to {model}", counted=how, share=0.5)
    await confirm_spend(app, ctx, spend)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from glm_mcp.config import Settings
from glm_mcp.glm import GLMError
from glm_mcp.glm.models import PRICES, CallPrice, Price, parse_prices, price_of
from glm_mcp.glm.tokens import content_key, local_estimate, tokenizer_request, upper_bound
from glm_mcp.glm.types import ChatRequest
from glm_mcp.server.confirmation import Spend, confirm_spend
from glm_mcp.server.state import AppState

__all__ = [
    "Estimated",
    "PriceRow",
    "TokenEstimate",
    "chat_spend",
    "count_prompt",
    "per_call",
    "per_token",
    "preflight",
    "price_row",
]

BUILT_IN = "the built-in price table (docs.z.ai pricing; docs/usage.md)"


@dataclass(frozen=True, slots=True)
class PriceRow:
    """The price a model is estimated at, and where it comes from."""

    price: Price | CallPrice
    prefix: str
    """The table's entry that matched: the model code or its family's prefix."""
    overridden: bool
    """From GLM_PRICES (in whatever currency they were written), not the built-in table (USD)."""

    @property
    def currency(self) -> str:
        return "" if self.overridden else "USD"

    def source(self) -> str:
        return f"the row {self.prefix} of {'GLM_PRICES' if self.overridden else BUILT_IN}"


def price_row(settings: Settings, model: str) -> PriceRow | None:
    """The price of `model` (its code, else its family's longest prefix), GLM_PRICES over the built-in table; None
    when neither prices it."""
    overrides = parse_prices(settings.models.prices)
    table = {**PRICES, **overrides}
    price = price_of(model, table)
    if price is None:
        return None
    prefix = max((entry for entry in table if model.startswith(entry)), key=len)
    return PriceRow(price, prefix, prefix in overrides)


def per_call(settings: Settings, model: str, what: str, *, calls: int = 1) -> Spend | None:
    """`calls` calls of `model` billed per call (an image, a video), as a `Spend`; None when the model has no per-call
    price (unpriced models are never asked about: GLM_PRICES prices them)."""
    row = price_row(settings, model)
    if row is None or not isinstance(row.price, CallPrice):
        return None
    each = row.price.each
    unit = f" {row.currency}" if row.currency else ""
    count = f"{calls:,} calls at " if calls != 1 else ""
    return Spend(each * calls, what, f"{count}{each:g}{unit} a call, {row.source()}", row.currency)


def per_token(
    settings: Settings, model: str, prompt_tokens: int, what: str, *, counted: str, share: float = 1.0
) -> Spend | None:
    """`prompt_tokens` sent to `model` at its input price (times `share`: 0.5 for the Batch API's half price), as a
    `Spend` whose basis says how the tokens were `counted`; None when the model has no token price. The answer's
    tokens come on top, and the basis says so."""
    row = price_row(settings, model)
    if row is None or not isinstance(row.price, Price):
        return None
    unit = f" {row.currency}" if row.currency else ""
    rate = f"{row.price.input * share:g}{unit} per million input tokens"
    if share != 1.0:
        rate += f" ({share:g} of {row.price.input:g})"
    basis = f"{counted}, at {rate} ({row.source()}); the answer's tokens come on top"
    return Spend(prompt_tokens * row.price.input * share / 1_000_000, what, basis, row.currency)


class TokenEstimate(BaseModel):
    """A prompt's tokens counted before it was sent."""

    prompt_tokens: int = Field(description="The prompt's tokens: messages, files, the conversation's kept turns.")
    counted_by: Literal["platform tokenizer", "glm-mcp estimate"] = Field(
        description="platform tokenizer: the platform's own count; glm-mcp estimate: a guess (see note)."
    )
    cached: bool = Field(False, description="true: counted before for the same content, not asked again.")
    note: str | None = Field(None, description="Why the platform's tokenizer did not count it.")

    def text(self) -> str:
        cached = ", counted before" if self.cached else ""
        note = f" ({self.note})" if self.note else ""
        return f"Prompt before sending: {self.prompt_tokens:,} tokens by the {self.counted_by}{cached}{note}."


class Estimated(BaseModel):
    """A result that may carry its prompt's count, made before it was sent (`estimate_tokens`)."""

    prompt_estimate: Annotated[
        TokenEstimate | None, Field(description="With estimate_tokens: the prompt's tokens counted before sending.")
    ] = None

    def estimate_text(self) -> str:
        return self.prompt_estimate.text() if self.prompt_estimate else ""


async def count_prompt(app: AppState, request: ChatRequest) -> TokenEstimate:
    """`request`'s prompt tokens as the platform's tokenizer counts them, once per content and caller; glm-mcp's own
    estimate, saying why, when the tokenizer does not answer (the call goes on either way)."""
    asked = tokenizer_request(request)
    key = content_key(asked, app.principal)
    tokens = app.token_counts.get(key)
    if tokens is not None:
        return TokenEstimate(prompt_tokens=tokens, counted_by="platform tokenizer", cached=True)
    try:
        tokens = (await app.glm.count_tokens(asked)).tokens
    except GLMError as exc:
        note = f"the platform's tokenizer did not count it: {exc.message}"
        return TokenEstimate(prompt_tokens=local_estimate(request), counted_by="glm-mcp estimate", note=note)
    app.token_counts.put(key, tokens)
    return TokenEstimate(prompt_tokens=tokens, counted_by="platform tokenizer")


async def chat_spend(
    app: AppState, request: ChatRequest, what: str, counted: TokenEstimate | None = None
) -> Spend | None:
    """What sending `request`'s prompt costs at its model's input price, when that may be above GLM_CONFIRM_ABOVE;
    None when it cannot be (confirmation off, the model unpriced or free, or even a token a character is cheaper),
    so that a chat asks the tokenizer nothing it did not ask before. `counted`: a count the call has already."""
    threshold = app.settings.models.confirm_above
    if threshold is None:  # confirmation off (the default): a plain chat measures and prices nothing
        return None
    bound = upper_bound(request)
    most = per_token(app.settings, request.model, bound, what, counted="")
    if most is None or most.amount <= 0 or (counted is None and most.amount <= threshold):
        return None
    counted = counted or await count_prompt(app, request)
    if counted.counted_by == "platform tokenizer":
        tokens = counted.prompt_tokens
        how = f"the platform tokenizer's count of the prompt, {tokens:,} tokens"
    else:
        tokens, how = bound, f"at most {bound:,} prompt tokens (a token a character; {counted.note})"
    bought = f"{what}: a {tokens:,}-token prompt to {request.model}"
    return per_token(app.settings, request.model, tokens, bought, counted=how)


async def preflight(
    app: AppState, ctx: Context, request: ChatRequest, *, what: str, count: bool = False
) -> TokenEstimate | None:
    """Before a chat's request is sent: its prompt counted when the call asked (`count`), and its cost confirmed when
    it may be above GLM_CONFIRM_ABOVE. Returns the count for the result; raises what `confirm_spend` raises."""
    counted = await count_prompt(app, request) if count else None
    await confirm_spend(app, ctx, await chat_spend(app, request, what, counted))
    return counted
