"""list_models and usage: what this key can use, and what the calls made through this server cost.

`list_models` reads the key's models from the platform, each with what glm-mcp's one model table
(`glm.models.MODELS`) says of it. `usage` reports the calls recorded by `accounting.record`: tokens and
model by day, the estimated cost, and a Coding Plan's quota ([usage.md](../../docs/usage.md)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.glm import GLMError
from glm_mcp.glm import models as model_table
from glm_mcp.glm.models import MEDIA_MODELS, PRICES, CallPrice, ModelKind, Price, parse_prices, price_of
from glm_mcp.glm.types import QuotaLimit
from glm_mcp.jobs import SERVER
from glm_mcp.jobs.usage import Grouping, UsageTotal
from glm_mcp.server.registration import LISTS, LOOKS_UP, ToolSpec
from glm_mcp.server.result import Result, paragraphs
from glm_mcp.server.state import AppState
from glm_mcp.tools.arguments import Arguments

__all__ = [
    "LIST_MODELS",
    "USAGE",
    "ModelList",
    "ModelsArguments",
    "UsageArguments",
    "UsageReport",
    "list_models",
    "model_list",
    "usage",
]

WINDOWS = {(3, 5): "5 hours", (6, 1): "week", (5, 1): "month"}
"""A quota window's (unit, number) as the monitor API says it (docs/glm-endpoints.md)."""


class ModelsArguments(Arguments):
    """`list_models`: which models."""

    kind: Annotated[Literal["chat", "image", "video"] | None, Field(description="Only models of this kind.")] = None


class UsageArguments(Arguments):
    """`usage`: which span of the recorded calls, grouped how."""

    days: Annotated[int, Field(description="The last this many days, today included.", ge=1, le=366)] = 7
    by: Annotated[Literal["day", "model", "day_model"], Field(description="Group by.")] = "day_model"


class ModelEntry(BaseModel):
    model_config = ConfigDict(defer_build=True)

    id: str
    kind: ModelKind | None = None
    vision: bool | None = None
    reasoning: bool | None = None
    context_tokens: int | None = None
    max_output_tokens: int | None = None
    known: bool = Field(True, description="false: not in glm-mcp's table; what it can do is not known here.")
    default: bool = Field(False, description="Used when a call names no model (GLM_MODEL, GLM_IMAGE_MODEL, …).")
    listed: bool = Field(True, description="false: not in the platform's model list; glm-mcp knows it and uses it.")


class ModelList(Result):
    """The models this key can use, each with what it can do."""

    models: list[ModelEntry] = Field(default_factory=list)
    note: str | None = None

    def to_text(self) -> str:
        def line(m: ModelEntry) -> str:
            if not m.known:
                return f"- {m.id}: not in glm-mcp's table (capabilities unknown)"
            traits: list[str] = [m.kind or "chat"]
            traits += [word for word, on in (("vision", m.vision), ("reasoning", m.reasoning)) if on]
            if m.context_tokens:
                traits.append(f"context {m.context_tokens:,}")
            if m.max_output_tokens:
                traits.append(f"output {m.max_output_tokens:,}")
            notes = (("the default", m.default), ("not in the platform's list", not m.listed))
            traits += [word for word, on in notes if on]
            return f"- {m.id}: {', '.join(traits)}"

        return paragraphs("\n".join(line(m) for m in self.models) or "No models.", self.note or "")


Billing = Literal["per token", "per call"]


class UsageRow(BaseModel):
    model_config = ConfigDict(defer_build=True)

    day: str | None = Field(None, description="UTC, YYYY-MM-DD.")
    model: str | None = None
    calls: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    billed: Billing = Field("per token", description="per call: searches, page reads, images, videos.")
    cost: float | None = Field(None, description="Estimated, from the price table; absent when unpriced.")
    unpriced: bool = Field(False, description="true: no price known; the total leaves it out.")

    def to_text(self, currency: str) -> str:
        calls = f"{self.calls} call{'' if self.calls == 1 else 's'}"
        tokens = f"{self.prompt_tokens} in / {self.completion_tokens} out" if self.billed == "per token" else ""
        cost = f"~{self.cost:.4f} {currency}" if self.cost is not None else ""
        if cost and self.billed == "per call":
            cost += " (per call)"
        unpriced = f"unpriced ({self.billed}, no price known)" if self.unpriced else ""
        return " · ".join(part for part in (self.day or "", self.model or "", calls, tokens, cost, unpriced) if part)


class QuotaWindow(BaseModel):
    model_config = ConfigDict(defer_build=True)

    window: str = Field(description="5 hours, week or month (tool calls).")
    used_percent: float | None = None
    used: int | None = None
    limit: int | None = None
    resets_at: str | None = Field(None, description="ISO 8601 UTC.")


class UsageReport(Result):
    """What the calls made through this server cost, and the Coding Plan's quota."""

    FIRST: ClassVar[tuple[str, ...]] = ("since", "rows", "total_cost")

    since: str = Field(description="The first day counted (UTC).")
    caller: str = Field(description="Whose calls: this server's key, or your own key.")
    rows: list[UsageRow] = Field(default_factory=list)
    total_cost: float | None = Field(None, description="Estimated, for the rows with a known price.")
    currency: str = "USD"
    unpriced: list[str] = Field(default_factory=list, description="Models with no price: left out of the total.")
    plan_level: str | None = Field(None, description="The GLM Coding Plan's level, for a coding-plan key.")
    quota: list[QuotaWindow] = Field(default_factory=list, description="The Coding Plan's quota windows.")
    note: str | None = None

    def to_text(self) -> str:
        lines = [row.to_text(self.currency) for row in self.rows]
        quota = "\n".join(
            f"- {q.window}: {q.used_percent:g}% used" + (f", resets {q.resets_at}" if q.resets_at else "")
            for q in self.quota
            if q.used_percent is not None
        )
        total = f"Estimated total: {self.total_cost:.4f} {self.currency}" if self.total_cost is not None else ""
        if total and self.unpriced:
            total += f", leaving out what has no price ({', '.join(self.unpriced)})"
        total += "." if total else ""
        return paragraphs(
            f"Usage since {self.since} ({self.caller}):\n" + ("\n".join(lines) or "no calls recorded"),
            total,
            f"Coding Plan ({self.plan_level}) quota:\n{quota}" if quota else "",
            self.note or "",
        )


async def list_models(app: AppState, ctx: Context, args: ModelsArguments) -> ModelList:
    return await model_list(app, args.kind)


async def model_list(app: AppState, kind: str | None = None) -> ModelList:
    """The key's models (GET /models), each with what glm-mcp's one table (`glm.models.MODELS`) says of it; for an
    image or video kind the platform does not list, the ones the server knows and uses (`glm.models.MEDIA_MODELS`)."""
    models = app.settings.models
    defaults = {"chat": models.default, "image": models.image, "video": models.video}
    entries = [_entry(info.id, defaults) for info in sorted(await app.glm.list_models(), key=lambda m: m.id)]
    if kind is not None:
        entries = [entry for entry in entries if (entry.kind or "") == kind or not entry.known]
    notes: list[str] = []
    media: ModelKind | None = "image" if kind == "image" else "video" if kind == "video" else None
    if media is not None and not any(entry.known for entry in entries):
        default = defaults[media]
        codes = dict.fromkeys((default, *MEDIA_MODELS[media]))
        entries = [_entry(code, defaults, kind=media, listed=False) for code in codes] + entries
        notes.append(
            f"The platform's model list names no {media} models: these are the ones glm-mcp knows; it uses {default} "
            f"(GLM_{media.upper()}_MODEL) when a call names none."
        )
    unknown = sum(not entry.known for entry in entries)
    if unknown:
        notes.append(f"{unknown} model(s) not in glm-mcp's table: their capabilities are not known here.")
    return ModelList(models=entries, note=" ".join(notes) or None)


def _entry(code: str, defaults: dict[str, str], *, kind: ModelKind | None = None, listed: bool = True) -> ModelEntry:
    """`code` as list_models shows it: what glm-mcp's table says of it, and whether it is a default."""
    traits = model_table.traits(code)
    if traits is None:
        return ModelEntry(id=code, kind=kind, known=False, default=defaults.get(kind or "") == code, listed=listed)
    return ModelEntry(
        id=code,
        kind=traits.kind,
        vision=traits.vision if traits.kind == "chat" else None,  # what a chat model reads and does
        reasoning=traits.reasoning if traits.kind == "chat" else None,
        context_tokens=traits.context_tokens,
        max_output_tokens=traits.max_output_tokens,
        default=defaults[traits.kind] == code,
        listed=listed,
    )


async def usage(app: AppState, ctx: Context, args: UsageArguments) -> UsageReport:
    return await _report(app, args.days, args.by)


async def _report(app: AppState, days: int, by: Grouping) -> UsageReport:
    """The caller's calls of the last `days` days (UTC, today included), priced, with the plan's quota."""
    today = datetime.now(UTC).date()
    start = datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp() - (days - 1) * 86_400
    totals = await app.usage.totals(principal=app.principal, since=start, by=by)
    prices = {**PRICES, **parse_prices(app.settings.models.prices)}
    rows = [_row(total, prices) for total in totals]
    priced = [row.cost for row in rows if row.cost is not None]
    quota = await _quota(app) if _coding_plan(app) else PlanQuota()
    grouped = None if by != "day" else "Grouped by day only: cost needs the model (by model or day_model)."
    return UsageReport(
        since=datetime.fromtimestamp(start, UTC).date().isoformat(),
        caller="this server's key" if app.principal == SERVER else "your own key",
        rows=rows,
        total_cost=round(sum(priced), 6) if priced else None,
        unpriced=sorted({row.model for row in rows if row.unpriced and row.model}),
        plan_level=quota.level,
        quota=quota.windows,
        note=quota.problem or grouped,
    )


def _row(total: UsageTotal, prices: dict[str, Price | CallPrice]) -> UsageRow:
    """One row of the report, priced per token or per call as the table prices its model; unpriced when it has no
    price (a row grouped by day alone has no model to price)."""
    price = price_of(total.model, prices) if total.model else None
    billed: Billing = "per call" if isinstance(price, CallPrice) else "per token"
    cost = None
    if isinstance(price, CallPrice):
        cost = round(total.calls * price.each, 6)
    elif price is not None:
        cost = round((total.prompt_tokens * price.input + total.completion_tokens * price.output) / 1e6, 6)
    elif total.model and not (total.prompt_tokens or total.completion_tokens):
        billed = "per call"  # a model that counted no tokens: a search, a page read, an image or a video
    return UsageRow(
        day=total.day or None,
        model=total.model or None,
        calls=total.calls,
        prompt_tokens=total.prompt_tokens,
        completion_tokens=total.completion_tokens,
        cached_tokens=total.cached_tokens,
        billed=billed,
        cost=cost,
        unpriced=bool(total.model) and price is None,
    )


@dataclass(frozen=True, slots=True)
class PlanQuota:
    """A GLM Coding Plan's quota as the platform gave it, or why it gave none."""

    level: str | None = None
    windows: list[QuotaWindow] = field(default_factory=list)
    problem: str | None = None


def _coding_plan(app: AppState) -> bool:
    return app.settings.upstream.plan == "coding" or "/api/coding/" in app.glm.base_url + "/"


async def _quota(app: AppState) -> PlanQuota:
    """The GLM Coding Plan's quota windows from the platform's monitor API; what went wrong is said, not raised."""
    try:
        answer = await app.glm.coding_quota()
    except GLMError as exc:
        return PlanQuota(problem=f"The Coding Plan's quota could not be read: {exc.message}")
    if not answer.success or answer.data is None:
        said = answer.msg or "no quota in the answer"
        return PlanQuota(problem=f"The platform gave no Coding Plan quota for this key: {said}")
    return PlanQuota(answer.data.level, [_window(limit) for limit in answer.data.limits])


def _window(limit: QuotaLimit) -> QuotaWindow:
    name = WINDOWS.get((limit.unit or 0, limit.number or 0), f"{limit.type} unit {limit.unit} x{limit.number}")
    resets = (
        datetime.fromtimestamp(limit.nextResetTime / 1000, UTC).isoformat(timespec="seconds")
        if limit.nextResetTime
        else None
    )
    return QuotaWindow(
        window=name + (" (tool calls)" if limit.type == "TIME_LIMIT" else " (tokens)"),
        used_percent=limit.percentage,
        used=limit.currentValue,
        limit=limit.usage if limit.type == "TIME_LIMIT" else None,
        resets_at=resets,
    )


LIST_MODELS = ToolSpec(
    "list_models",
    "List GLM models",
    "The models this key can use, each with what it can do (chat, image or video; vision, reasoning, context "
    "window, output limit) from glm-mcp's model table; a model the table does not know is marked so.",
    list_models,
    ModelsArguments,
    ModelList,
    LOOKS_UP,
    toolset="models",
)

USAGE = ToolSpec(
    "usage",
    "GLM usage and cost",
    "Tokens and calls made through this server, by day and model, with an estimated cost: per token for chats, "
    "per call for searches, images and videos (GLM_PRICES overrides the table); rows with no known price are "
    "marked unpriced, left out of the total. Yours only when you use your own key. For a GLM Coding Plan "
    "key, the plan's quota windows too.",
    usage,
    UsageArguments,
    UsageReport,
    LISTS,
    toolset="usage",
)
