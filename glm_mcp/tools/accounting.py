"""Every call's cost recorded, and reported: tokens and model by day, the estimated cost, a Coding Plan's quota.

A record belongs to the request's principal (the server's key, or a caller's own under
GLM_MCP_ALLOW_CLIENT_KEYS), so each caller's report shows only their own calls. Recording never fails a call:
when the registry cannot take it, the call's answer is what matters and the miss is logged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from glm_mcp.errors import RegistryUnavailable
from glm_mcp.glm import GLMError
from glm_mcp.glm.models import PRICES, parse_prices, price_of
from glm_mcp.glm.types import QuotaLimit, Usage
from glm_mcp.jobs import SERVER, Principal
from glm_mcp.jobs.usage import Grouping, UsageRecord
from glm_mcp.server.platform_results import QuotaWindow, UsageReport, UsageRow
from glm_mcp.server.state import AppState

logger = logging.getLogger(__name__)

WINDOWS = {(3, 5): "5 hours", (6, 1): "week", (5, 1): "month"}
"""A quota window's (unit, number) as the monitor API says it (docs/glm-endpoints.md)."""


async def record(
    app: AppState,
    tool: str,
    model: str,
    usage: Usage | None = None,
    *,
    calls: int = 1,
    principal: Principal | None = None,
) -> None:
    """Add one call's cost to the registry; a registry that cannot take it is logged, never raised."""
    entry = UsageRecord(
        principal=principal or app.principal,
        tool=tool,
        model=model,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        cached_tokens=usage.cached_tokens if usage else 0,
        calls=calls,
    )
    try:
        await app.usage.record(entry)
    except RegistryUnavailable as exc:
        logger.warning("the usage of a %s call is not recorded: %s %s", tool, exc, exc.fix)


async def report(app: AppState, days: int, by: Grouping) -> UsageReport:
    """The caller's calls of the last `days` days (UTC, today included), priced, with the plan's quota."""
    today = datetime.now(UTC).date()
    start = datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp() - (days - 1) * 86_400
    totals = await app.usage.totals(principal=app.principal, since=start, by=by)
    prices = {**PRICES, **parse_prices(app.settings.prices)}
    rows: list[UsageRow] = []
    unpriced: set[str] = set()
    total_cost = 0.0
    for total in totals:
        price = price_of(total.model, prices) if total.model else None
        cost = None
        if price is not None:
            cost = round((total.prompt_tokens * price.input + total.completion_tokens * price.output) / 1e6, 6)
            total_cost += cost
        elif total.model and (total.prompt_tokens or total.completion_tokens):
            unpriced.add(total.model)
        rows.append(
            UsageRow(
                day=total.day or None,
                model=total.model or None,
                calls=total.calls,
                prompt_tokens=total.prompt_tokens,
                completion_tokens=total.completion_tokens,
                cached_tokens=total.cached_tokens,
                cost=cost,
            )
        )
    priced = by != "day" and any(row.cost is not None for row in rows)
    result = UsageReport(
        since=datetime.fromtimestamp(start, UTC).date().isoformat(),
        caller="this server's key" if app.principal == SERVER else "your own key",
        rows=rows,
        total_cost=round(total_cost, 6) if priced else None,
        unpriced=sorted(unpriced),
        note=None if by != "day" else "Grouped by day only: cost needs the model (by model or day_model).",
    )
    if _coding_plan(app):
        result = await _with_quota(app, result)
    return result


def _coding_plan(app: AppState) -> bool:
    return app.settings.plan == "coding" or "/api/coding/" in app.glm.base_url + "/"


async def _with_quota(app: AppState, result: UsageReport) -> UsageReport:
    """The GLM Coding Plan's quota windows from the platform's monitor API; what went wrong is said, not raised."""
    try:
        answer = await app.glm.coding_quota()
    except GLMError as exc:
        return result.model_copy(update={"note": f"The Coding Plan's quota could not be read: {exc.message}"})
    if not answer.success or answer.data is None:
        said = answer.msg or "no quota in the answer"
        return result.model_copy(update={"note": f"The platform gave no Coding Plan quota for this key: {said}"})
    windows = [_window(limit) for limit in answer.data.limits]
    return result.model_copy(update={"plan_level": answer.data.level, "quota": windows})


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
