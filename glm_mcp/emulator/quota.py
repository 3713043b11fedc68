"""The GLM Coding Plan's usage endpoints (``/api/monitor/usage/...``), computed from what the emulator served.

The platform does not document them; their shape is the one the official ``glm-plan-usage`` plugin reads
(see docs/glm-endpoints.md). Answers use the monitor API's own envelope ``{code, msg, data, success}``,
not the ``{"error": …}`` of the model API.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from .config import EmulatorConfig
from .state import Use

FIVE_HOURS = 5 * 3600.0
WEEK = 7 * 24 * 3600.0
MONTH = 30 * 24 * 3600.0
WEEKLY_FACTOR = 10
"""The weekly token cap, in 5-hour quotas (a guess: the platform publishes only the plans' prompt counts)."""
TOOL_CODES = ("search-prime", "web-reader", "zread")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def envelope(data: Any) -> dict[str, Any]:
    return {"code": 200, "msg": "Operation successful", "data": data, "success": True}


def failure(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "msg": message, "success": False}


def _window(started: float, now: float, length: float) -> tuple[float, float]:
    """The current window of ``length`` seconds counted from ``started``: (its start, its reset)."""
    begun = started + math.floor((now - started) / length) * length
    return begun, begun + length


def _percentage(used: int, limit: int) -> int:
    return min(100, used * 100 // limit) if limit > 0 else 100


def quota_limit(config: EmulatorConfig, uses: list[Use], started: float, now: float) -> dict[str, Any]:
    """Token windows (5 hours, a week) reported only as percentages, and the monthly tool-call count in full."""
    limits: list[dict[str, Any]] = []
    for unit, number, length, cap in (
        (3, 5, FIVE_HOURS, config.coding_token_quota),
        (6, 1, WEEK, config.coding_token_quota * WEEKLY_FACTOR),
    ):
        begun, reset = _window(started, now, length)
        used = sum(u.tokens for u in uses if u.at >= begun)
        limits.append(
            {
                "type": "TOKENS_LIMIT",
                "unit": unit,
                "number": number,
                "percentage": _percentage(used, cap),
                "nextResetTime": int(reset * 1000),
            }
        )
    begun, reset = _window(started, now, MONTH)
    tools = [u for u in uses if u.tool and u.at >= begun]
    used = len(tools)
    limits.append(
        {
            "type": "TIME_LIMIT",
            "unit": 5,
            "number": 1,
            "usage": config.coding_tool_quota,
            "currentValue": used,
            "remaining": max(0, config.coding_tool_quota - used),
            "percentage": _percentage(used, config.coding_tool_quota),
            "nextResetTime": int(reset * 1000),
            "usageDetails": [{"modelCode": code, "usage": sum(u.tool == code for u in tools)} for code in TOOL_CODES],
        }
    )
    return envelope({"limits": limits, "level": config.coding_level})


def time_range(start: str | None, end: str | None) -> tuple[datetime, datetime] | None:
    """``startTime`` and ``endTime`` (local ``yyyy-MM-dd HH:mm:ss``), or None when missing or malformed."""
    try:
        first, last = datetime.strptime(start or "", TIME_FORMAT), datetime.strptime(end or "", TIME_FORMAT)
    except ValueError:
        return None
    return (first, last) if first <= last else None


def _hours(first: datetime, last: datetime) -> list[datetime]:
    hour = first.replace(minute=0, second=0, microsecond=0)
    hours: list[datetime] = []
    while hour <= last and len(hours) < 24 * 62:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def _bucket(uses: list[Use], hour: datetime) -> list[Use]:
    start = hour.timestamp()
    return [u for u in uses if start <= u.at < start + 3600]


def model_usage(uses: list[Use], first: datetime, last: datetime) -> dict[str, Any]:
    """Model calls and tokens per hour of the range, and totals by model (names as the console writes them)."""
    calls = [u for u in uses if not u.tool and first.timestamp() <= u.at <= last.timestamp()]
    hours = _hours(first, last)
    by_model: dict[str, int] = {}
    for use in calls:
        by_model[use.model.upper()] = by_model.get(use.model.upper(), 0) + use.tokens
    ranked = sorted(by_model.items(), key=lambda item: -item[1])
    return envelope(
        {
            "x_time": [h.strftime("%Y-%m-%d %H:%M") for h in hours],
            "modelCallCount": [len(_bucket(calls, h)) for h in hours],
            "tokensUsage": [sum(u.tokens for u in _bucket(calls, h)) for h in hours],
            "totalUsage": {
                "totalModelCallCount": len(calls),
                "totalTokensUsage": sum(u.tokens for u in calls),
                "modelSummaryList": [
                    {"modelName": name, "sortOrder": i, "totalTokens": tokens}
                    for i, (name, tokens) in enumerate(ranked, 1)
                ],
            },
        }
    )


def tool_usage(uses: list[Use], first: datetime, last: datetime) -> dict[str, Any]:
    """Web searches, page reads and zread calls per hour of the range, with totals."""
    tools = [u for u in uses if u.tool and first.timestamp() <= u.at <= last.timestamp()]
    hours = _hours(first, last)
    series = {"networkSearchCount": "search-prime", "webReadMcpCount": "web-reader", "zreadMcpCount": "zread"}
    data: dict[str, Any] = {"x_time": [h.strftime("%Y-%m-%d %H:%M") for h in hours]}
    for name, code in series.items():
        data[name] = [sum(u.tool == code for u in _bucket(tools, h)) for h in hours]
    data["totalUsage"] = {
        "totalNetworkSearchCount": sum(u.tool == "search-prime" for u in tools),
        "totalWebReadMcpCount": sum(u.tool == "web-reader" for u in tools),
        "totalZreadMcpCount": sum(u.tool == "zread" for u in tools),
    }
    return envelope(data)
