"""The front page and the reference pages link each other as they are: every relative link of README.md and
docs/*.md names a file or directory of the checkout, and every `#anchor` a heading of the page it points at, slugged
as GitHub slugs headings. Moving a section renames its anchor; this catches the links left pointing at the old one.
Every page of docs/ is reachable from the front page, and the front page stays a front page."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FRONT_PAGE_MAX_BYTES = 16_000
"""About 12 KB is the aim: what it is, the demo, each client's set-up, the tools, a link to each reference page."""

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\S\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[^\S\n]*\n).)+?(?<!`)\1(?!`)", re.S)
"""A code span: a run of backticks up to the next run of the same length, within one paragraph."""
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.M)
HEADING = re.compile(r"^ {0,3}(#{1,6})[^\S\n]+(.*?)(?:[^\S\n]+#+)?[^\S\n]*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:[^>]*\s)?(?:id|name)=\"([^\"]+)\"", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def prose(markdown: str) -> str:
    """`markdown` without its code: fenced blocks and inline code spans hold examples, not links."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading (github-slugger): the rendered text, lower-cased, punctuation and symbols
    dropped (letters, digits, marks, `-` and `_` kept), each space a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = "".join(  # HTML tags render as nothing, except inside code, where `<origin>` is text
        part if index % 2 else re.sub(r"<[^>]+>", "", part) for index, part in enumerate(text.split("`"))
    ).lower()
    return "".join(
        "-" if char == " " else char for char in text if char in " -_" or unicodedata.category(char)[0] in "LNM"
    )


def anchors(page: Path) -> set[str]:
    """Every anchor `page` has: its headings' slugs (a repeated one numbered -1, -2, … as GitHub does) and the
    ids of its HTML anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    text = FENCE.sub("", page.read_text())
    for _, title in HEADING.findall(text):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found | set(HTML_ANCHOR.findall(text))


def links(page: Path) -> list[str]:
    """The targets of `page`'s inline links and images and its reference definitions, outside code."""
    text = prose(page.read_text())
    return [*LINK.findall(text), *REFERENCE_DEFINITION.findall(text)]


def broken(page: Path) -> list[str]:
    """`page`'s relative links whose file or anchor is not there, each with the reason."""
    problems = []
    for target in links(page):
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not linked.exists():
            problems.append(f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif not linked.is_relative_to(ROOT):
            problems.append(f"{target}: outside the checkout")
        elif anchor and linked.suffix == ".md" and unquote(anchor) not in anchors(linked):
            problems.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken(page) == []


def test_every_page_of_docs_is_reachable_from_the_front_page() -> None:
    """A reference page nothing leads to is lost to readers: follow the links from README.md, page to page."""
    reached: set[Path] = set()
    queue = [ROOT / "README.md"]
    while queue:
        page = queue.pop()
        if page in reached:
            continue
        reached.add(page)
        for target in links(page):
            path_part = target.partition("#")[0]
            if path_part and not SCHEME.match(path_part):
                linked = (page.parent / unquote(path_part)).resolve()
                if linked.suffix == ".md" and linked.is_file():
                    queue.append(linked)
    unreached = [str(page.relative_to(ROOT)) for page in PAGES if page not in reached]
    assert unreached == [], "pages of docs/ no link from README.md leads to"


def test_the_front_page_is_a_front_page() -> None:
    """The reference lives in docs/; README.md says what glm-mcp is, how to try it and set it up, and links on."""
    size = len((ROOT / "README.md").read_bytes())
    assert size <= FRONT_PAGE_MAX_BYTES, f"README.md is {size:,} bytes: move reference text into docs/"


def test_the_slugs_are_githubs() -> None:
    """The slug rules on headings this project writes, as GitHub renders them."""
    assert slug("Check the set-up: `glm-mcp doctor`") == "check-the-set-up-glm-mcp-doctor"
    assert slug("Files, conversations, long answers") == "files-conversations-long-answers"
    assert slug("`web_search_chat`") == "web_search_chat"
    assert (
        slug("Several replicas: PostgreSQL (`GLM_MCP_DATABASE_URL`)")
        == "several-replicas-postgresql-glm_mcp_database_url"
    )
    assert slug('The client does not start the server (`ENOENT`, `uvx` not found, "not found" on PyPI)') == (
        "the-client-does-not-start-the-server-enoent-uvx-not-found-not-found-on-pypi"
    )
    assert slug("Claude Desktop / MCPB") == "claude-desktop--mcpb"
    assert slug("GLM Coding Plan usage: `GET <origin>/api/monitor/usage/...`") == (
        "glm-coding-plan-usage-get-originapimonitorusage"
    )
