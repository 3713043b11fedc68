"""The image a generate_image answer names is the upstream's say-so: it is fetched only from where it may be, and
kept only if it is an image.

The API is the hostile upstream on 127.0.0.1 (so its own origin is a loopback one, as the emulator's is); a
second loopback service, which is not the API, serves text that must never come back as an image.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.glm.fetch import image_type, refusal, target
from tests.hostile_upstream import HostileUpstream, Reply, Request, json_reply
from tests.test_tools import failed, ok

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(40)
GIF = b"GIF89a" + bytes(40)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(40)
INTERNAL = b"internal service: db password hunter2"


@pytest.fixture(scope="module")
def api() -> Iterator[HostileUpstream]:
    with HostileUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def internal() -> Iterator[HostileUpstream]:
    """A service on this machine's loopback that is not the API."""
    with HostileUpstream() as service:
        service.reply = lambda request: Reply(200, "OK", {"content-type": "text/plain"}, INTERNAL)
        yield service


def settings(api: HostileUpstream, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "GLM_API_KEY": "imageid.image-secret-half-0123456789",
            "GLM_BASE_URL": api.base_url,
            "GLM_MAX_RETRIES": "0",
            "GLM_DATA_DIR": str(tmp_path / "data"),
            "GLM_IMAGE_DIR": str(tmp_path / "img"),
            "GLM_MCP_TOOLSETS": "images",
        }
    )


def naming(url: str, file: Reply | None = None) -> Callable[[Request], Reply]:
    """The API answers an image request with `url`, and serves `file` at any other path of its own."""

    def reply(request: Request) -> Reply:
        if request.path.endswith("/images/generations"):
            return json_reply({"created": 1, "data": [{"url": url}]})
        return file or Reply(404, "Not Found")

    return reply


def saved(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "img"
    return sorted(folder.iterdir()) if folder.exists() else []


async def generate(api: HostileUpstream, tmp_path: Path, reply: Callable[[Request], Reply]) -> Any:
    api.clear(reply)
    async with Client(create_server(settings(api, tmp_path))) as client:  # in process: as stdio, a copy is saved
        return await client.call_tool("generate_image", {"prompt": "a lantern"})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_an_image_url_on_another_loopback_service_is_refused_before_connecting(
    api: HostileUpstream, internal: HostileUpstream, tmp_path: Path, host: str
) -> None:
    internal.clear()
    url = f"http://{host}:{internal.port}/image.png"
    out = failed(await generate(api, tmp_path, naming(url)))
    assert out["error"] == "upstream_protocol_error"
    assert "127.0.0.1 is a loopback address" in out["message"] and url in out["message"], out
    assert "GLM_BASE_URL" in out["hint"]
    assert internal.records == []  # never connected to
    assert saved(tmp_path) == []
    assert INTERNAL.decode() not in json.dumps(out)


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", INTERNAL, 200),
        ("text/plain", PNG, 200),  # image bytes, not said to be one
        ("application/octet-stream", PNG, 200),
        ("image/png", INTERNAL, 200),  # said to be an image, not one
        ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>", 200),
        ("image/png", PNG, 206),
    ],
    ids=["text", "png-as-text", "png-as-octet-stream", "text-as-png", "svg", "partial-content"],
)
async def test_a_body_that_is_not_an_image_is_refused_and_nothing_saved(
    api: HostileUpstream, tmp_path: Path, content_type: str, body: bytes, status: int
) -> None:
    """On the API's own origin, which is fetched from: what comes back must be said to be an image and be one."""
    file = Reply(status, "OK", {"content-type": content_type}, body)
    out = failed(await generate(api, tmp_path, naming(f"{api.base_url}/files/image.png", file)))
    assert out["error"] == "upstream_protocol_error" and "did not take" in out["message"], out
    assert saved(tmp_path) == []
    assert INTERNAL.decode() not in json.dumps(out)


async def test_a_redirect_is_not_followed(api: HostileUpstream, internal: HostileUpstream, tmp_path: Path) -> None:
    internal.clear()
    elsewhere = f"http://127.0.0.1:{internal.port}/image.png"
    moved = Reply(302, "Found", {"location": elsewhere, "content-type": "text/html"})
    out = failed(await generate(api, tmp_path, naming(f"{api.base_url}/files/image.png", moved)))
    assert "HTTP 302" in out["message"] and internal.records == [] and saved(tmp_path) == []


@pytest.mark.parametrize(
    ("declared", "body", "media_type", "suffix"),
    [
        ("image/png", PNG, "image/png", ".png"),
        ("image/jpeg", JPEG, "image/jpeg", ".jpg"),
        ("image/gif", GIF, "image/gif", ".gif"),
        ("image/webp", WEBP, "image/webp", ".webp"),
        ("image/jpeg; charset=binary", PNG, "image/png", ".png"),  # the bytes say what it is
    ],
    ids=["png", "jpeg", "gif", "webp", "png-said-jpeg"],
)
async def test_an_image_from_the_apis_own_origin_is_shown_and_saved(
    api: HostileUpstream, tmp_path: Path, declared: str, body: bytes, media_type: str, suffix: str
) -> None:
    file = Reply(200, "OK", {"content-type": declared}, body)
    result = await generate(api, tmp_path, naming(f"{api.base_url}/files/image?expires=2000000000", file))
    out = ok(result)
    assert out["media_type"] == media_type and out["bytes"] == len(body)
    (copy,) = saved(tmp_path)
    assert copy.suffix == suffix and copy.read_bytes() == body and out["saved_path"] == str(copy)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.5.6.7", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),  # the clouds' metadata service
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("10.0.0.8", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:192.168.1.1", "private"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("240.0.0.1", "reserved"),
    ],
)
def test_addresses_an_answer_may_not_send_the_server_to(address: str, kind: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None and reason.endswith(f" {kind} address"), reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_fetched_from(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_image_types_are_told_by_their_bytes() -> None:
    told = [image_type(body) for body in (PNG, JPEG, GIF, WEBP)]
    assert told == ["image/png", "image/jpeg", "image/gif", "image/webp"]
    assert image_type(INTERNAL) is None and image_type(b"RIFF\x00\x00\x00\x00WAVE") is None and image_type(b"") is None


async def test_a_public_host_is_connected_to_at_the_address_checked_under_its_own_name() -> None:
    """The request goes to the address that was checked (no second lookup to rebind), with the name kept for the
    Host header and TLS, on a connection of its own (a pooled one keyed by the address could serve another name)."""
    pinned = await target(httpx2.URL("https://93.184.216.34:8443/image.png?sig=1"), ("127.0.0.1", 8765))
    assert str(pinned.url) == "https://93.184.216.34:8443/image.png?sig=1"
    assert pinned.headers == {"Host": "93.184.216.34:8443", "Connection": "close"}
    assert pinned.extensions == {"sni_hostname": "93.184.216.34"}
    own = await target(httpx2.URL("http://127.0.0.1:8765/files/a.png"), ("127.0.0.1", 8765))
    assert own == (httpx2.URL("http://127.0.0.1:8765/files/a.png"), {}, {})  # the API's origin: as it is
