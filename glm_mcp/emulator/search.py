"""Deterministic web search results on reserved example domains (RFC 2606), never real sites."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from .prose import Dice, fill, keywords, sentence
from .validation import WebSearch

SITES: dict[str, tuple[tuple[str, str], ...]] = {
    "search_std": (
        ("news.example.com", "Example News"),
        ("docs.example.org", "Example Docs"),
        ("blog.example.net", "Example Blog"),
        ("wiki.example.org", "Example Wiki"),
        ("forum.example.com", "Example Forum"),
    ),
    "search_pro": (
        ("research.example.org", "Example Research"),
        ("journal.example.net", "Example Journal"),
        ("data.example.com", "Example Data"),
        ("review.example.org", "Example Review"),
    ),
    "search_pro_sogou": (
        ("daily.example.com", "Example Daily"),
        ("encyclopedia.example.org", "Example Encyclopedia"),
        ("answers.example.net", "Example Answers"),
    ),
    "search_pro_quark": (
        ("guide.example.com", "Example Guide"),
        ("learn.example.org", "Example Learn"),
        ("magazine.example.net", "Example Magazine"),
    ),
    "search_pro_jina": (
        ("reader.example.com", "Example Reader"),
        ("papers.example.org", "Example Papers"),
        ("developers.example.net", "Example Developers"),
    ),
    "search_pro_bing": (
        ("www.example.com", "Example"),
        ("www.example.org", "Example Org"),
        ("www.example.net", "Example Net"),
    ),
}
RECENCY_DAYS = {"oneDay": 1, "oneWeek": 7, "oneMonth": 30, "oneYear": 365, "noLimit": 3 * 365}
CONTENT_CHARS = {"medium": (400, 600), "high": (2300, 2700)}
UNREACHABLE_SUFFIX = ".invalid"
"""A domain filter with this reserved suffix finds nothing: the way to test "no sources"."""

_TITLES = (
    "{K}: {A} {N} explained",
    "A {A} guide to {K}",
    "How {K} shapes {D} {N}",
    "{K} and {D} {A} {N}",
    "Notes on {K} from {D} {N}",
    "What {D} {N} says about {K}",
)
_FACTS = (
    "Reports on {K} describe {D} {A} {N} that {V} {D} {N}.",
    "{K} {R} {V} {D} {A} {N}.",
    "Observers of {K} note that {D} {N} {V} {D} {N}.",
    "The {A} side of {K} is {D} {N} {P} {D} {N}.",
)


def search(options: WebSearch, query: str, today: date) -> list[dict[str, Any]]:
    """The results of searching ``query``: same options and query, same items (dates move with ``today``)."""
    if options.domain and options.domain.lower().rstrip(".").endswith(UNREACHABLE_SUFFIX):
        return []
    seed = (options.engine, query, options.domain or "", options.recency, options.content_size)
    terms = keywords(query) or ["this topic"]
    sites = ((options.domain, options.domain),) if options.domain else SITES[options.engine]
    return [_item(i, Dice(*seed, str(i)), terms, sites, options, today) for i in range(options.count)]


def _item(
    i: int,
    dice: Dice,
    terms: list[str],
    sites: tuple[tuple[str, str], ...],
    options: WebSearch,
    today: date,
) -> dict[str, Any]:
    domain, media = dice.pick(sites)
    title = fill(dice.pick(_TITLES), dice, K=dice.pick(terms))
    slug = "-".join("".join(c for c in word if c.isalnum()) for word in title.lower().split())
    low, high = CONTENT_CHARS[options.content_size]
    return {
        "refer": f"ref_{i + 1}",
        "title": title,
        "link": f"https://{domain}/{slug}-{dice.hex(6)}",
        "media": media,
        "icon": f"https://{domain}/favicon.ico",
        "content": _content(dice, terms, dice.between(low, high - 60), high),
        "publish_date": (today - timedelta(days=dice.below(RECENCY_DAYS[options.recency]))).isoformat(),
    }


def _content(dice: Dice, terms: list[str], target: int, limit: int) -> str:
    """Prose about the terms, at least ``target`` and at most ``limit`` characters long."""
    text = ""
    while len(text) < target:
        piece = fill(dice.pick(_FACTS), dice, K=dice.pick(terms)) if dice.chance(0.5) else sentence(dice)
        text = f"{text} {piece}" if text else piece
    if len(text) > limit:
        text = text[: text.rfind(" ", 0, limit - 1)] + "…"
    return text
