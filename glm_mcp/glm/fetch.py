"""Fetching a file an answer names (a generated image or video): where glm-mcp will fetch it from, and what it must be.

The URL is the upstream's say-so, so the server must not be made to fetch whatever it names: a service on
this machine's loopback, the cloud's metadata address, a host of the local network. A URL is fetched only
from a public address, or from the API's own origin (the host and port of GLM_BASE_URL, as written: the
emulator on 127.0.0.1 serves its images there). Its host is resolved once, every address it resolves to
is checked, and the request is sent to the checked address (the host name kept for `Host` and for TLS),
so a name that resolves elsewhere the second time (DNS rebinding) cannot move it; through a proxy, that
address is what the proxy is asked to reach. And what comes back is kept only if it is what was asked for twice
over: an image, an `image/*` Content-Type and the magic bytes of PNG, JPEG, WebP or GIF; a video, a `video/*` (or
`image/*`: an animated image) Content-Type and the magic bytes of MP4, QuickTime or WebM (or of an image).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Literal, NamedTuple

import anyio
import httpx2

from glm_mcp.glm.errors import GLMFileRefusedError, GLMTransportError

IMAGE_MAGIC: tuple[tuple[str, bytes], ...] = (
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
    ("image/gif", b"GIF87a"),
    ("image/gif", b"GIF89a"),
)
"""The image formats glm-mcp shows and saves, by the bytes they start with (WebP is checked on its own: RIFF…WEBP)."""
FileKind = Literal["image", "video"]
"""What a fetched file must be: an image (generate_image), or a video (generate_video; an animated image too)."""
_PNG_SCAN_BYTES = 64 * 1024
"""How far into a PNG its chunks are walked for an `acTL` (an animated PNG) before the first frame's `IDAT`."""
_DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Target(NamedTuple):
    """Where one fetch goes: the URL to send (its host the checked address) and what keeps the name."""

    url: httpx2.URL
    headers: dict[str, str]
    extensions: dict[str, str]


def image_type(data: bytes) -> str | None:
    """The media type the bytes are, by their magic: PNG, JPEG, WebP or GIF; None for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for media_type, magic in IMAGE_MAGIC:
        if data.startswith(magic):
            return media_type
    return None


def video_type(data: bytes) -> str | None:
    """The media type the bytes are, by their magic: MP4, QuickTime (an ISO `ftyp` box) or WebM; None otherwise."""
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM (or Matroska, which players open as WebM)
        return "video/webm"
    return None


def file_type(data: bytes, kind: FileKind) -> str | None:
    """The media type of `data` if it is a file of `kind` (a video may also be an animated image), else None.

    An animated PNG is told from a still one by its `acTL` chunk, which comes before the first frame.
    """
    found = image_type(data) if kind == "image" else video_type(data) or image_type(data)
    if found == "image/png" and _animated_png(data):
        return "image/apng"
    return found


def _animated_png(data: bytes) -> bool:
    at = len(IMAGE_MAGIC[0][1])
    while at + 8 <= min(len(data), _PNG_SCAN_BYTES):
        length, chunk = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        if chunk == b"acTL":
            return True
        if chunk == b"IDAT":
            return False
        at += 12 + length
    return False


def refusal(address: IPAddress) -> str | None:
    """Why glm-mcp will not connect to `address` on an answer's say-so (None: a public address it will).

    An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 address it is.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for what, applies in (
        ("a loopback", address.is_loopback),
        ("an unspecified", address.is_unspecified),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a reserved", address.is_reserved),
        ("a private", address.is_private),
        ("a non-public", not address.is_global),
    ):
        if applies:
            return f"{address} is {what} address"
    return None


def origin(url: httpx2.URL) -> tuple[str, int]:
    """A URL's host (lower case) and port, the default one filled in: what 'the same host' compares."""
    return url.host.lower(), url.port or _DEFAULT_PORTS.get(url.scheme, 0)


async def target(url: httpx2.URL, trusted: tuple[str, int]) -> Target:
    """Where to send a GET of `url`: as it is on the `trusted` origin (the API's own), else to an address of
    its host checked by `refusal`, resolved here and only here; `GLMFileRefusedError` when it may not be fetched."""
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise GLMFileRefusedError(str(url), "it is not an http(s) URL")
    host, port = origin(url)
    if (host, port) == trusted:
        return Target(url, {}, {})
    try:
        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise GLMTransportError(f"could not resolve {host}: {exc.strerror or exc}", maybe_delivered=False) from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found))
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise GLMFileRefusedError(str(url), f"its host {host} resolves to {reason}, where no answer may send it")
    if not addresses:
        raise GLMTransportError(f"could not resolve {host}: no address", maybe_delivered=False)
    pinned = url.copy_with(host=str(addresses[0]))
    headers = {"Host": url.netloc.decode("ascii"), "Connection": "close"}  # close: no pooled connection by IP
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    return Target(pinned, headers, extensions)


__all__ = ["IMAGE_MAGIC", "FileKind", "Target", "file_type", "image_type", "origin", "refusal", "target", "video_type"]
