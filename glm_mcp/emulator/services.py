"""The platform's endpoints beside chat: image and video generation, standalone web search and the page reader.

Each ``*_request`` checks a body the way the platform does (raising the ApiError it would answer) and each
answer is a pure function of the request, apart from ids, timestamps and file URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from .config import IMAGE_MODELS, EmulatorConfig
from .errors import ApiError, bad_request, platform_error
from .generation import FAIL_MARKER, SENSITIVE_MARKER
from .prose import Dice, fill, keywords, paragraph
from .search import UNREACHABLE_SUFFIX, search
from .validation import WebSearch, optional, search_options

IMAGE_QUALITIES = frozenset({"hd", "standard"})
VIDEO_QUALITIES = frozenset({"quality", "speed"})
FIXED_SIZES = frozenset({"1024x1024", "768x1344", "864x1152", "1344x768", "1152x864", "1440x720", "720x1440"})
"""The sizes every image model accepts (the only ones ``cogview-3-flash`` takes)."""
READER_FORMATS = frozenset({"markdown", "text"})
_SIZE = re.compile(r"(\d{2,4})x(\d{2,4})")


def _missing(name: str) -> ApiError:
    return ApiError(400, "1213", f"The {name} parameter was not received.")


def _object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    optional(body, "request_id", str)
    user_id = optional(body, "user_id", str)
    if user_id is not None and not 6 <= len(user_id) <= 128:
        raise bad_request("user_id must be 6 to 128 characters long.")
    return body


def _check_markers(text: str) -> None:
    if SENSITIVE_MARKER in text:
        raise platform_error("1301")


@dataclass(frozen=True)
class ImageRequest:
    model: str
    prompt: str
    width: int
    height: int
    quality: str


def image_request(body: object, config: EmulatorConfig) -> ImageRequest:
    """Check an image generation body: model, prompt, size (per model family), quality."""
    body = _object(body)
    model = optional(body, "model", str)
    if not model:
        raise _missing("model")
    if model not in config.image_models:
        raise platform_error("1211", model)
    prompt = optional(body, "prompt", str)
    if not prompt:
        raise _missing("prompt")
    _check_markers(prompt)
    quality = optional(body, "quality", str) or "standard"
    if quality not in IMAGE_QUALITIES:
        raise bad_request(f"quality must be hd or standard, got {quality!r}.")
    size = optional(body, "size", str) or IMAGE_MODELS.get(model, "1024x1024")
    width, height = _image_size(model, size)
    return ImageRequest(model, prompt, width, height, quality)


def _image_size(model: str, size: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` within the model's rules: CogView-4 512-2048 px in steps of 16 and at most 2^21
    pixels, glm-image 1024-2048 px in steps of 32, cogview-3-flash only the fixed sizes."""
    match = _SIZE.fullmatch(size)
    if match is None:
        raise bad_request(f"size must look like 1024x1024, got {size!r}.")
    width, height = int(match[1]), int(match[2])
    if size in FIXED_SIZES:
        return width, height
    if model.startswith("glm-image"):
        low, step, pixels = 1024, 32, 2**22
    elif model.startswith("cogview-4"):
        low, step, pixels = 512, 16, 2**21
    else:
        raise bad_request(f"{model} only accepts the sizes {', '.join(sorted(FIXED_SIZES))}.")
    if not (low <= width <= 2048 and low <= height <= 2048) or width % step or height % step:
        raise bad_request(f"size must be {low}-2048 pixels a side, in multiples of {step}, got {size!r}.")
    if width * height > pixels:
        raise bad_request(f"size must have at most {pixels} pixels, got {size!r}.")
    return width, height


@dataclass(frozen=True)
class VideoRequest:
    model: str
    prompt: str
    width: int
    height: int
    fails: bool


def video_request(body: object, config: EmulatorConfig) -> VideoRequest:
    """Check a video generation body: a model, a prompt or an image, and the documented option values."""
    body = _object(body)
    model = optional(body, "model", str)
    if not model:
        raise _missing("model")
    if model not in config.video_models:
        raise platform_error("1211", model)
    prompt = optional(body, "prompt", str) or ""
    image = body.get("image_url")
    if not prompt and not image:
        raise _missing("prompt or image_url")
    if image is not None and not isinstance(image, str | list | dict):
        raise bad_request("image_url must be a URL, a list of URLs or an object.")
    _check_markers(prompt)
    quality = optional(body, "quality", str)
    if quality is not None and quality not in VIDEO_QUALITIES:
        raise bad_request(f"quality must be quality or speed, got {quality!r}.")
    for name, allowed in (("fps", (30, 60)), ("duration", (5, 10))):
        value = optional(body, name, int)
        if value is not None and value not in allowed:
            raise bad_request(f"{name} must be one of {list(allowed)}, got {value}.")
    optional(body, "with_audio", bool)
    size = optional(body, "size", str) or "1920x1080"
    match = _SIZE.fullmatch(size)
    if match is None or not (256 <= int(match[1]) <= 3840 and 256 <= int(match[2]) <= 3840):
        raise bad_request(f"size must look like 1920x1080, got {size!r}.")
    seed = prompt or str(image)
    return VideoRequest(model, seed, int(match[1]), int(match[2]), FAIL_MARKER in prompt)


def web_search_request(body: object) -> tuple[WebSearch, str]:
    """Check a ``POST /web_search`` body: the search options and the query (both ``search_query`` and
    ``search_engine`` are required)."""
    body = _object(body)
    query = optional(body, "search_query", str)
    if not query or not query.strip():
        raise _missing("search_query")
    engine = optional(body, "search_engine", str)
    if not engine:
        raise _missing("search_engine")
    _check_markers(query)
    optional(body, "search_intent", bool)
    return search_options(body, engine), query


def web_search_body(options: WebSearch, query: str, today: date) -> dict[str, Any]:
    """``search_intent`` (what the platform understood: the query, its intent, its key words) and
    ``search_result`` (the sources, as the chat tool's)."""
    terms = keywords(query) or [query.strip()]
    return {
        "search_intent": [{"query": query, "intent": "SEARCH_ALWAYS", "keywords": " ".join(terms)}],
        "search_result": search(options, query, today),
    }


@dataclass(frozen=True)
class ReaderRequest:
    url: str
    markdown: bool
    images: bool
    gfm: bool
    images_summary: bool
    links_summary: bool


def reader_request(body: object) -> ReaderRequest:
    """Check a ``POST /reader`` body: an http(s) URL and the output options."""
    body = _object(body)
    url = optional(body, "url", str)
    if not url:
        raise _missing("url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request(f"url must be an http or https URL, got {url!r}.")
    if parts.hostname.rstrip(".").endswith(UNREACHABLE_SUFFIX):
        raise bad_request(f"The page could not be fetched: {url}")
    _check_markers(url)
    return_format = optional(body, "return_format", str) or "markdown"
    if return_format not in READER_FORMATS:
        raise bad_request(f"return_format must be markdown or text, got {return_format!r}.")
    for name in ("no_cache", "keep_img_data_url"):
        optional(body, name, bool)
    timeout = body.get("timeout")
    if timeout is not None and not isinstance(timeout, str | int):
        raise bad_request("timeout has the wrong type.")

    def flag(name: str, default: bool) -> bool:
        value = optional(body, name, bool)
        return default if value is None else bool(value)

    return ReaderRequest(
        url=url,
        markdown=return_format == "markdown",
        images=flag("retain_images", True),
        gfm=not flag("no_gfm", False),
        images_summary=flag("with_images_summary", False),
        links_summary=flag("with_links_summary", False),
    )


def reader_body(request: ReaderRequest, today: date) -> dict[str, Any]:
    """The page as the reader returns it: title, description, content in the asked format, metadata."""
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    dice = Dice("reader", request.url)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", parts.path) if w and not w.isdigit()] or [host.split(".")[0]]
    subject = " ".join(words[:4]).capitalize()
    title = f"{subject} | {host}"
    description = fill("A {A} page about {K} and {D} {N}.", dice, K=subject.lower())
    links = {fill("{A} {N}", dice): f"https://{host}/{dice.pick(words)}-{dice.hex(4)}" for _ in range(3)}
    images = {fill("{A} {N} picture", dice): f"https://{host}/images/{dice.hex(8)}.png" for _ in range(2)}
    sections = [(fill("{A} {N}", dice).capitalize(), paragraph(dice, dice.between(40, 80))) for _ in range(3)]
    content = _page_text(request, title, sections, links, images)
    result: dict[str, Any] = {
        "title": title,
        "description": description,
        "url": request.url,
        "content": content,
        "publishedTime": today.replace(day=1).isoformat() + "T08:00:00Z",
        "metadata": {
            "viewport": "width=device-width, initial-scale=1",
            "description": description,
            "og:title": title,
            "og:site_name": host,
            "lang": "en",
        },
        "external": {"icon": {f"https://{host}/favicon.ico": {"type": "image/x-icon"}}},
    }
    if request.links_summary:
        result["links"] = links
    if request.images_summary:
        result["images"] = images
    return {"reader_result": result}


def _page_text(
    request: ReaderRequest,
    title: str,
    sections: list[tuple[str, str]],
    links: dict[str, str],
    images: dict[str, str],
) -> str:
    """The page in markdown (headings, links, images, a GFM table unless ``no_gfm``) or as plain text."""
    link_text, link = next(iter(links.items()))
    alt, image = next(iter(images.items()))
    if not request.markdown:
        body = [title, *(f"{heading}\n\n{text}" for heading, text in sections), f"See also: {link_text}."]
        return "\n\n".join(body)
    blocks = [f"# {title}"]
    for i, (heading, text) in enumerate(sections):
        blocks += [f"## {heading}", text]
        if i == 0 and request.images:
            blocks.append(f"![{alt}]({image})")
    blocks.append(f"See also: [{link_text}]({link}).")
    if request.gfm:
        blocks.append("| term | meaning |\n| --- | --- |\n| " + " | ".join(sections[0][0].split(" ", 1)) + " |")
    return "\n\n".join(blocks)
