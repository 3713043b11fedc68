"""Deterministic, plausible-looking English prose, and the emulator's token rule.

Everything here is a pure function of a seed, so the same request always reads the same. The
vocabulary is small and ordinary on purpose: replies should look like text at a glance without
pretending to answer anything.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

TOKEN = re.compile(r"\w+|[^\w\s]")
"""One token per word (a run of letters, digits, ``_``) or per other non-space character."""

# fmt: off
NOUNS = (
    "garden", "river", "bridge", "window", "library", "market", "journey", "question", "answer",
    "pattern", "method", "project", "village", "mountain", "harbor", "museum", "kitchen", "teacher",
    "student", "neighbor", "engine", "signal", "letter", "story", "picture", "season", "morning",
    "evening", "forest", "valley", "island", "road", "station", "schedule", "budget", "report",
    "detail", "example", "feature", "system", "process", "design", "model", "surface", "context",
    "record", "result", "reason", "choice", "habit", "routine", "lesson", "chapter", "theory",
    "experiment", "sample", "estimate", "outline", "draft", "summary", "argument", "principle",
    "strategy", "tradition", "community", "team", "family", "audience", "customer", "partner",
    "leader", "worker", "farmer", "writer", "artist", "builder", "traveler", "visitor", "map",
    "compass", "lantern", "candle", "clock", "calendar", "notebook", "pencil", "basket", "bottle",
    "blanket", "table", "chair", "door", "wall", "roof", "field", "meadow", "orchard", "stream",
    "lake", "coast", "shore", "cloud", "storm", "breeze", "shadow", "voice", "melody", "rhythm",
    "idea", "goal", "plan", "step", "path", "edge", "corner", "center", "layer", "frame", "network",
    "archive", "catalog", "index", "channel", "platform", "tool", "device", "machine", "sensor",
    "battery", "circuit", "program", "workshop", "festival", "recipe", "harvest", "journal",
)
ADJECTIVES = (
    "quiet", "careful", "simple", "clear", "gentle", "steady", "bright", "practical", "useful",
    "modest", "reliable", "familiar", "curious", "patient", "thoughtful", "flexible", "narrow",
    "broad", "local", "recent", "early", "small", "large", "quick", "slow", "calm", "warm", "cool",
    "fresh", "ordinary", "natural", "formal", "detailed", "rough", "smooth", "solid", "open",
    "hidden", "shared", "public", "common", "rare", "central", "remote", "modern", "classic",
    "seasonal", "daily", "gradual", "balanced", "honest", "friendly", "helpful", "efficient",
    "sturdy", "tidy", "vivid", "plain", "subtle", "obvious", "complete", "partial", "original",
    "typical", "wooden", "golden", "silent", "busy", "young", "ancient", "distant",
)
VERBS = (
    "build", "shape", "guide", "reach", "explore", "improve", "support", "measure", "describe",
    "follow", "carry", "gather", "share", "protect", "balance", "connect", "review", "test",
    "compare", "change", "explain", "arrange", "prepare", "collect", "deliver", "create", "repair",
    "study", "check", "extend", "hold", "keep", "bring", "find", "open", "mark", "track", "record",
    "solve", "visit", "watch", "notice", "organize", "simplify", "clarify", "adjust", "combine",
    "limit", "offer", "present", "reflect", "serve", "sketch", "trust", "welcome", "fix", "paint",
    "plant", "teach", "reward",
)
ADVERBS = (
    "usually", "often", "quietly", "carefully", "gradually", "clearly", "steadily", "rarely",
    "sometimes", "eventually", "naturally", "simply", "gently", "quickly", "slowly", "openly",
    "briefly", "largely", "mostly", "nearly", "partly", "roughly", "widely", "patiently", "neatly",
)
PREPOSITIONS = (
    "near", "beyond", "beside", "across", "along", "behind", "within", "around", "through", "under",
    "over", "toward", "among", "after", "before", "during", "inside", "against", "without", "above",
)
DETERMINERS = ("the", "a", "this", "that", "each", "our", "their", "another", "one", "every")
STOPWORDS = frozenset((
    "a", "an", "the", "and", "or", "but", "if", "then", "so", "of", "to", "in", "on", "at", "by",
    "for", "with", "from", "about", "into", "over", "under", "is", "are", "was", "were", "be",
    "been", "being", "am", "do", "does", "did", "done", "have", "has", "had", "i", "you", "he",
    "she", "it", "we", "they", "me", "him", "her", "us", "them", "my", "your", "his", "its", "our",
    "their", "this", "that", "these", "those", "what", "which", "who", "whom", "whose", "when",
    "where", "why", "how", "can", "could", "would", "should", "will", "shall", "may", "might",
    "must", "not", "no", "yes", "please", "tell", "give", "show", "explain", "describe", "write",
    "make", "let", "use", "using", "via", "any", "some", "all", "more", "most", "much", "many",
    "very", "just", "also", "only", "there", "here", "emulator", "fail", "sensitive", "latest",
    "recent", "current", "new", "news", "today", "best", "top", "find", "search", "look", "up",
    "know", "need", "want", "like", "get",
))
# fmt: on

_SENTENCES = (
    "{D} {A} {N} {V} {D} {N} {P} {D} {N}.",
    "{R}, {D} {N} {V} {D} {A} {N}.",
    "{P} {D} {A} {N}, {D} {N} {V} {D} {N}.",
    "{D} {N} {V} {D} {N}, and {D} {A} {N} {V} {D} {N} {R}.",
    "We can {B} {D} {A} {N} {P} {D} {N}.",
    "It helps to {B} {D} {N} before {D} {N} {V} {D} {A} {N}.",
    "{D} {A} {N} {R} {V} {D} {N}.",
    "In practice, {D} {N} {V} {D} {A} {N} {P} {D} {N}.",
    "You might {B} {D} {N} {P} {D} {A} {N}.",
    "{D} {N} {V} {D} {A} {N}; {D} {N} {V} {D} {N}.",
)


class Dice:
    """A seeded source of choices that gives the same sequence on every run and Python version.

    Only ``random.Random(int).random()`` is guaranteed stable across Python releases, so every
    choice is derived from it rather than from ``choice``/``randint``.
    """

    def __init__(self, *seed: str) -> None:
        digest = hashlib.sha256("\x1f".join(seed).encode()).digest()
        self._rng = random.Random(int.from_bytes(digest, "big"))

    def below(self, n: int) -> int:
        return min(int(self._rng.random() * n), n - 1)

    def between(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        return low + self.below(high - low + 1)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.below(len(options))]

    def chance(self, p: float) -> bool:
        return self._rng.random() < p

    def hex(self, n: int) -> str:
        return "".join(self.pick("0123456789abcdef") for _ in range(n))


def count_tokens(text: str) -> int:
    return len(TOKEN.findall(text))


def truncate_tokens(text: str, limit: int) -> str:
    """The prefix of ``text`` holding its first ``limit`` tokens (a reply cut by ``max_tokens``)."""
    if limit <= 0:
        return ""
    for i, match in enumerate(TOKEN.finditer(text), 1):
        if i == limit:
            return text[: match.end()]
    return text


def quote(text: str, words: int = 6, max_chars: int = 60) -> str:
    """The first few words of a message, to show a human which prompt a reply belongs to."""
    parts = text.split()
    short = " ".join(parts[:words])
    if len(short) > max_chars:
        short = short[:max_chars].rstrip()
    return short + ("…" if short != " ".join(parts) else "")


def keywords(text: str, limit: int = 4) -> list[str]:
    """The first distinct non-trivial words of a text, as written (so names keep their capital)."""
    found: dict[str, str] = {}
    for word in re.findall(r"\w+", text):
        key = word.lower()
        if key not in STOPWORDS and key not in found and not word.isdigit():
            found[key] = word
    return list(found.values())[:limit]


def verb_s(verb: str) -> str:
    """Third person singular of a regular verb."""
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def fill(template: str, dice: Dice, **extra: str) -> str:
    """Fill a template's word slots and fix articles and the initial capital.

    Slots: ``{D}`` determiner, ``{A}`` adjective, ``{N}`` noun, ``{V}`` verb (3rd person),
    ``{B}`` base verb, ``{R}`` adverb, ``{P}`` preposition; ``extra`` fills named slots.
    """
    slots = {
        "D": lambda: dice.pick(DETERMINERS),
        "A": lambda: dice.pick(ADJECTIVES),
        "N": lambda: dice.pick(NOUNS),
        "V": lambda: verb_s(dice.pick(VERBS)),
        "B": lambda: dice.pick(VERBS),
        "R": lambda: dice.pick(ADVERBS),
        "P": lambda: dice.pick(PREPOSITIONS),
    }
    text = re.sub(r"\{(\w+)\}", lambda m: extra[m[1]] if m[1] in extra else slots[m[1]](), template)
    text = re.sub(r"\b([Aa]) (?=[aeio]|un)", r"\1n ", text)
    return text[:1].upper() + text[1:]


def sentence(dice: Dice) -> str:
    return fill(dice.pick(_SENTENCES), dice)


def paragraph(dice: Dice, words: int, lead: str = "") -> str:
    """``lead`` followed by sentences until the text holds at least ``words`` words."""
    text = lead
    while len(text.split()) < words:
        text = f"{text} {sentence(dice)}" if text else sentence(dice)
    return text
