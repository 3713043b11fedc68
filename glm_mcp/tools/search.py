"""web_search and read_url: the platform's search engine and page reader, with no model's answer.

Cheaper than web_search_chat for an agent that reads sources itself; a long page is read in parts
(`offset`, `next`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from mcp.server.mcpserver import Context
from pydantic import Field

from glm_mcp.errors import ArgumentError
from glm_mcp.glm.types import (
    ContentSize,
    ReaderFormat,
    ReaderRequest,
    RecencyFilter,
    SearchEngine,
    WebSearchRequest,
    WebSearchResponse,
)
from glm_mcp.server.registration import ASKS, ToolSpec
from glm_mcp.server.result import Result, paragraphs
from glm_mcp.server.state import AppState
from glm_mcp.tools import accounting
from glm_mcp.tools.answer import Source
from glm_mcp.tools.arguments import Arguments, new_request_id

__all__ = [
    "READ_URL",
    "WEB_SEARCH",
    "PageResult",
    "ReadArguments",
    "SearchArguments",
    "SearchResults",
    "read_url",
    "web_search",
]


class SearchArguments(Arguments):
    """`web_search`: the platform's search engine alone, no model answer."""

    query: Annotated[str, Field(description="What to search for.", min_length=1, max_length=4096)]
    engine: Annotated[SearchEngine, Field(description="Search engine.")] = "search_std"
    count: Annotated[int, Field(description="Results, 1-50 (search_pro_sogou: 10-50 by tens).", ge=1, le=50)] = 10
    domain: Annotated[str, Field(description="Only this domain's pages.", max_length=253)] = ""
    recency: Annotated[RecencyFilter | None, Field(description="Only pages from this period.")] = None
    content_size: Annotated[
        ContentSize | None, Field(description="Text per result: medium 400-600 chars, high ~2500.")
    ] = None

    def request(self) -> WebSearchRequest:
        if not self.query.strip():
            raise ArgumentError("query", "it is empty; give what to search for.")
        if self.engine == "search_pro_sogou" and self.count % 10:
            raise ArgumentError("count", "search_pro_sogou takes 10, 20, 30, 40 or 50.")
        return WebSearchRequest(
            search_query=self.query.strip(),
            search_engine=self.engine,
            count=self.count,
            search_domain_filter=self.domain or None,
            search_recency_filter=self.recency,
            content_size=self.content_size,
            request_id=new_request_id(),
        )


class ReadArguments(Arguments):
    """`read_url`: one page through the platform's reader."""

    url: Annotated[str, Field(description="The page, http(s).", pattern=r"^https?://\S+$", max_length=4096)]
    format: Annotated[ReaderFormat, Field(description="markdown or plain text.")] = "markdown"
    links: Annotated[bool, Field(description="Also list the page's links.")] = False
    images: Annotated[bool, Field(description="Also list its images.")] = False
    fresh: Annotated[bool, Field(description="Fetch it again, not from the reader's cache.")] = False
    offset: Annotated[int, Field(description="A long page's next_offset: read on from there.", ge=0)] = 0

    def request(self) -> ReaderRequest:
        return ReaderRequest(
            url=self.url,
            return_format=self.format,
            with_links_summary=self.links or None,
            with_images_summary=self.images or None,
            no_cache=self.fresh or None,
            request_id=new_request_id(),
        )


class SearchResults(Result):
    """Web search results, without a model's answer."""

    FIRST: ClassVar[tuple[str, ...]] = ("results", "note")

    query: str
    results: list[Source] = Field(default_factory=list, description="In rank order. Absent when none was found.")
    note: str | None = Field(None, description="Said when the search found nothing.")
    request_id: str | None = None

    @classmethod
    def from_response(cls, query: str, response: WebSearchResponse) -> SearchResults:
        results = [Source.from_item(item) for item in response.search_result]
        return cls(
            query=query,
            results=results,
            note=None if results else "Nothing found: try other words, another engine, or no filters.",
            request_id=response.request_id or response.id or None,
        )

    def to_text(self) -> str:
        if not self.results:
            return self.note or ""
        return "\n\n".join(
            f"[{s.ref or i}] {s.title or '(untitled)'} — {s.url or 'no link'}"
            + (f" ({', '.join(x for x in (s.media, s.publish_date) if x)})" if s.media or s.publish_date else "")
            + (f"\n{s.snippet}" if s.snippet else "")
            for i, s in enumerate(self.results, 1)
        )


class PageResult(Result):
    """A web page as the platform's reader gave it."""

    FIRST: ClassVar[tuple[str, ...]] = ("title", "url", "next", "content")

    url: str
    title: str = ""
    description: str = ""
    published: str | None = None
    content: str = Field("", description="The page as markdown or text (this part of it, when it is long).")
    total_chars: int | None = Field(None, description="The whole content's length, when it is cut.")
    next_offset: int | None = Field(None, description="Where the rest starts, when the content is cut.")
    next: str | None = Field(None, description="When cut: the exact call that reads on.")
    metadata: dict[str, str] = Field(default_factory=dict, description="The page's meta tags.")
    links: dict[str, str] = Field(default_factory=dict, description="Link text to URL, when asked for.")
    images: dict[str, str] = Field(default_factory=dict, description="Image caption to URL, when asked for.")
    request_id: str | None = None

    def to_text(self) -> str:
        head = f"# {self.title}\n{self.url}" if self.title else self.url
        links = "\n".join(f"- [{text}]({url})" for text, url in self.links.items())
        return paragraphs(head, self.description, self.content, self.next or "", "Links:\n" + links if links else "")


async def web_search(app: AppState, ctx: Context, args: SearchArguments) -> SearchResults:
    response = await app.glm.web_search(args.request())
    await accounting.record(app, "web_search", args.engine)
    return SearchResults.from_response(args.query.strip(), response)


async def read_url(app: AppState, ctx: Context, args: ReadArguments) -> PageResult:
    page = (await app.glm.read_url(args.request())).reader_result
    await accounting.record(app, "read_url", "web-reader")
    limit = app.settings.results.max_chars
    whole = page.content
    part = whole[args.offset : args.offset + limit]
    end = args.offset + len(part)
    cut = end < len(whole)
    return PageResult(
        url=page.url or args.url,
        title=page.title,
        description=page.description,
        published=page.publishedTime,
        content=part,
        total_chars=len(whole) if cut or args.offset else None,
        next_offset=end if cut else None,
        next=f'Call read_url with url="{args.url}" and offset={end} for the rest.' if cut else None,
        metadata={str(k): str(v) for k, v in page.metadata.items()},
        links=page.links,
        images=page.images,
        request_id=(page.model_extra or {}).get("request_id") or None,
    )


WEB_SEARCH = ToolSpec(
    "web_search",
    "Search the web",
    "Search the web with the GLM platform's engine and get the results themselves (title, URL, site, date, "
    "text), no model's answer: cheaper than web_search_chat. Follow up with read_url for a whole page.",
    web_search,
    SearchArguments,
    SearchResults,
    ASKS,
    toolset="search",
)

READ_URL = ToolSpec(
    "read_url",
    "Read a web page",
    "Fetch a web page through the GLM platform's reader and get it as clean markdown (or text), with its "
    "title, description and metadata; optionally its links and images. A long page comes in parts: `next` "
    "says how to read on.",
    read_url,
    ReadArguments,
    PageResult,
    ASKS,
    toolset="search",
)
