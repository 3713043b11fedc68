"""Sign-in against a key endpoint that misbehaves, and tokens made to break the verifier, on a real server process.

The provider's keys are served by the hostile upstream (tests/hostile_upstream.py, a real loopback socket) at
GLM_MCP_OAUTH_JWKS_URL: honestly at first, then trickling a byte a second without end, or sending a body far
larger than any key set. The tokens are minted here, signed with keys that endpoint serves. Whatever comes in,
a request is answered 200, 401 or 403, never 500; nothing waits on a slow key endpoint beyond the fetch's
deadline, and a token whose key is in the last key set fetched is not held up by a fetch under way; the
server writes no traceback.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from glm_mcp.emulator import Emulator
from glm_mcp.server.signing_keys import KEY_SET_COOLDOWN_S
from tests.conftest import GENERAL_KEY
from tests.hostile_upstream import HostileUpstream, Record, Reply, Request, gzip_bomb, json_reply
from tests.processes import drain, free_port, listening, server_env

ISSUER = "https://sign-in.example"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
"""Signs tokens naming a key the endpoint does not serve."""
HUNG = 60
"""Seconds after which a request still unanswered counts as hung: far past the fetch's deadline."""


def key_set(also: rsa.RSAPrivateKey | None = None) -> dict[str, Any]:
    """The endpoint's JWK set: RSA_KEY as rsa-1 (for RS256), EC_KEY as ec-1 (no alg: its curve says ES256), and
    `also` as rsa-2."""
    keys = [
        json.loads(RSAAlgorithm.to_jwk(RSA_KEY.public_key())) | {"kid": "rsa-1", "alg": "RS256", "use": "sig"},
        json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key())) | {"kid": "ec-1", "use": "sig"},
    ]
    if also is not None:
        keys.append(json.loads(RSAAlgorithm.to_jwk(also.public_key())) | {"kid": "rsa-2", "alg": "RS256"})
    return {"keys": keys}


@dataclass
class KeyEndpoint:
    """The hostile upstream as the provider's key endpoint: `answer` is what it does to the next fetch."""

    upstream: HostileUpstream
    answer: Callable[[], Reply] = field(default=lambda: json_reply(key_set()))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.upstream.port}/jwks"

    @property
    def fetches(self) -> int:
        return len(self._fetch_records)

    @property
    def last_fetch(self) -> Record:
        return self._fetch_records[-1]

    @property
    def _fetch_records(self) -> list[Record]:
        return [record for record in self.upstream.records if record.request.path == "/jwks"]

    def reply(self, request: Request) -> Reply:
        return self.answer() if request.path == "/jwks" else Reply(404, "Not Found")


@dataclass
class Served:
    origin: str
    audience: str
    output: Callable[[], bytes]


@pytest.fixture
def keys() -> Iterator[KeyEndpoint]:
    with HostileUpstream() as upstream:
        endpoint = KeyEndpoint(upstream)
        upstream.reply = endpoint.reply
        yield endpoint


@pytest.fixture
def server(keys: KeyEndpoint, emulator: Emulator) -> Iterator[Served]:
    port = free_port()
    audience = f"http://127.0.0.1:{port}/mcp"
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator.base_url,
        GLM_MCP_OAUTH_ISSUER=ISSUER,
        GLM_MCP_OAUTH_AUDIENCE=audience,
        GLM_MCP_OAUTH_JWKS_URL=keys.url,
    )
    with listening(["--transport", "http", "--port", str(port)], port, env=env) as (process, origin):
        served = Served(origin, audience, drain(process))
        yield served
    log = served.output()
    assert b"Traceback" not in log, log.decode(errors="replace")[-3000:]


def mint(audience: str, *, key: Any = RSA_KEY, kid: Any = "rsa-1", algorithm: str = "RS256", **claims: Any) -> str:
    """A token signed with `key`, naming `kid`: the claims of a good one unless told otherwise."""
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": audience, "sub": "carol", "exp": now + 300, "scope": "glm-mcp", **claims}
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


def rs256(signing_input: bytes) -> bytes:
    return bytes(jwt.get_algorithm_by_name("RS256").sign(signing_input, RSA_KEY))


def forged(header: dict[str, Any] | str, payload: dict[str, Any] | str, sign: Callable[[bytes], bytes] = rs256) -> str:
    """A token whose header and payload are these exact JSON texts, signed by `sign`: what no JWT library would
    write (numbers out of range, nesting that has no end, a public key as an HMAC secret)."""

    def part(value: dict[str, Any] | str) -> bytes:
        text = value if isinstance(value, str) else json.dumps(value)
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=")

    signing_input = part(header) + b"." + part(payload)
    return (signing_input + b"." + base64.urlsafe_b64encode(sign(signing_input)).rstrip(b"=")).decode()


def ask(origin: str, bearer: str, timeout: float = HUNG) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json, text/event-stream"}
    return httpx2.post(origin + "/mcp", json=body, headers=headers, timeout=timeout)


def test_malformed_and_mismatched_tokens_are_refused_never_a_500(server: Served) -> None:
    aud = server.audience
    now = int(time.time())
    rsa_public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert ask(server.origin, mint(aud)).status_code == 200
    assert ask(server.origin, mint(aud, key=EC_KEY, kid="ec-1", algorithm="ES256")).status_code == 200
    good_claims = {"iss": ISSUER, "aud": aud, "sub": "carol", "exp": now + 300}
    rsa_header = {"alg": "RS256", "kid": "rsa-1"}
    invalid = {
        "ES256 under the RSA key's id": mint(aud, key=EC_KEY, algorithm="ES256"),
        "RS256 under the EC key's id": mint(aud, kid="ec-1"),
        "PS256 under a key published for RS256": mint(aud, algorithm="PS256"),
        "HS256 keyed with the RSA public key": forged(
            {"alg": "HS256", "kid": "rsa-1"}, good_claims, lambda data: hmac.digest(rsa_public_pem, data, "sha256")
        ),
        "none": forged({"alg": "none", "kid": "rsa-1"}, good_claims, lambda _: b""),
        "a numeric scope": mint(aud, scope=7),
        "a scope list of numbers": mint(aud, scope=[1, 2]),
        "an object for a scope": mint(aud, scope={"glm-mcp": True}),
        "a numeric subject": mint(aud, sub=42),
        "a numeric kid": forged({"alg": "RS256", "kid": 1}, good_claims),
        "no kid": jwt.encode(good_claims, RSA_KEY, algorithm="RS256"),
        "an unknown kid": mint(aud, key=STRANGER, kid="rsa-2"),
        "an expiry past any number": forged(
            rsa_header, json.dumps({**good_claims, "exp": "X"}).replace('"X"', "1e9999")
        ),
        "a not-before past any number": forged(
            rsa_header, json.dumps({**good_claims, "nbf": "X"}).replace('"X"', "-1e9999")
        ),
        "a header nested past any depth": forged("[" * 5000 + "]" * 5000, good_claims),
        "a payload nested past any depth": forged(rsa_header, "[" * 5000 + "]" * 5000),
        "a header that is a list": forged("[1]", good_claims),
        "a payload that is a number": forged(rsa_header, "7"),
    }
    for what, token in invalid.items():
        answer = ask(server.origin, token)
        assert answer.status_code == 401, (what, answer.status_code, answer.text[:300])
        assert 'error="invalid_token"' in answer.headers["www-authenticate"], what
    answer = ask(server.origin, mint(aud, scope=["other", "more"]))
    assert answer.status_code == 403 and 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert ask(server.origin, mint(aud, scope=["glm-mcp"])).status_code == 200
    assert ask(server.origin, mint(aud)).status_code == 200


def fetch_under_way(keys: KeyEndpoint, origin: str, stranger: str, pool: ThreadPoolExecutor) -> list[Future[Any]]:
    """Send tokens naming an unknown key, one a second, until one brings about a new fetch (the last one was too
    recent before that: the cooldown); the requests sent, still in flight."""
    fetched = keys.fetches
    sent: list[Future[Any]] = []
    deadline = time.monotonic() + HUNG
    while keys.fetches == fetched:
        assert time.monotonic() < deadline, "an unknown key brought about no new fetch of the key set"
        sent.append(pool.submit(ask, origin, stranger))
        time.sleep(1)
    return sent


def test_a_trickling_key_endpoint_holds_up_no_known_key_and_no_sign_in_for_long(
    keys: KeyEndpoint, server: Served
) -> None:
    aud = server.audience
    known, stranger = mint(aud), mint(aud, key=STRANGER, kid="rsa-2")
    assert ask(server.origin, known).status_code == 200

    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(3600):
            yield b" "

    keys.answer = lambda: Reply(headers={"content-type": "application/json"}, stream=trickle, pause=1.0)
    with ThreadPoolExecutor(max_workers=HUNG + 5) as pool:
        waiting = fetch_under_way(keys, server.origin, stranger, pool)
        trickled = keys.last_fetch
        # the fetch trickles on (for an hour, unless the server walks away); a known key goes straight through
        for _ in range(3):
            assert ask(server.origin, known, timeout=20).status_code == 200
        assert not trickled.client_left
        for request in waiting:  # the unknown key waited for the fetch, which ended at its deadline
            assert request.result(timeout=HUNG).status_code == 401
    deadline = time.monotonic() + HUNG
    while not trickled.client_left:  # the server walked away from the trickle
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert ask(server.origin, known).status_code == 200  # the last good key set still serves
    keys.answer = lambda: json_reply(key_set(also=STRANGER))  # the endpoint mends, with the stranger's key
    deadline = time.monotonic() + HUNG
    while ask(server.origin, stranger).status_code != 200:
        assert time.monotonic() < deadline, "the key set was not fetched again once the endpoint answered"
        time.sleep(1)


@pytest.mark.parametrize("body", ["chunked", "gzip"])
def test_a_key_set_larger_than_its_bound_is_not_read_whole(keys: KeyEndpoint, server: Served, body: str) -> None:
    aud = server.audience
    known, stranger = mint(aud), mint(aud, key=STRANGER, kid="rsa-2")
    assert ask(server.origin, known).status_code == 200
    padding = b" " * (64 << 20)  # valid JSON once closed: read whole, it would parse

    async def endless_key_set() -> AsyncIterator[bytes]:
        yield b'{"keys": ['
        for start in range(0, len(padding), 1 << 16):
            yield padding[start : start + (1 << 16)]
        yield b"]}"

    bomb = gzip_bomb(64 << 20)  # about 64 KB on the wire

    async def bomb_in_pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(bomb), 4096):
            yield bomb[start : start + 4096]

    if body == "chunked":
        keys.answer = lambda: Reply(stream=endless_key_set, pause=0.001)
    else:
        keys.answer = lambda: Reply(headers={"content-encoding": "gzip"}, stream=bomb_in_pieces, pause=0.05)
    with ThreadPoolExecutor(max_workers=HUNG + 5) as pool:
        waiting = fetch_under_way(keys, server.origin, stranger, pool)
        huge = keys.last_fetch
        for request in waiting:
            assert request.result(timeout=HUNG).status_code == 401
    deadline = time.monotonic() + HUNG
    while not huge.client_left:
        assert time.monotonic() < deadline, "the server read on"
        time.sleep(0.2)
    assert ask(server.origin, known).status_code == 200


def test_a_flood_of_unknown_keys_costs_the_provider_one_fetch_per_cooldown(keys: KeyEndpoint, server: Served) -> None:
    aud = server.audience
    assert ask(server.origin, mint(aud)).status_code == 200
    started = time.monotonic()
    strangers = [mint(aud, key=STRANGER, kid=f"made-up-{n}") for n in range(60)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda token: ask(server.origin, token).status_code, strangers))
    took = time.monotonic() - started
    assert answers == [401] * len(strangers)
    assert keys.fetches <= 2 + took / KEY_SET_COOLDOWN_S, (keys.fetches, took)
