"""`glm-mcp doctor` against the emulator: the right verdict and fix for a good set-up and for each
broken one the emulator can produce, and never the key in its output.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpcore2
import httpx2
import pytest

from glm_mcp.config import Settings
from glm_mcp.doctor import run_doctor
from glm_mcp.emulator import DEFAULT_MODELS, Emulator
from glm_mcp.glm import GLMAPIError
from glm_mcp.glm.proxy import ProxyRoute, proxy_route
from glm_mcp.server.failures import describe_failure
from tests.conftest import CODING_KEY, GENERAL_KEY, upstream_calls
from tests.hostile_upstream import HostileUpstream, Reply, honest
from tests.processes import COMMAND, free_port, server_env

ROOT = Path(__file__).resolve().parents[1]
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]


def doctor(**env: str) -> tuple[int, str]:
    """Run the doctor in process on exactly `env`: its exit status and report."""
    return doctor_on(env)


def doctor_on(env: dict[str, str], *, chat: bool = True) -> tuple[int, str]:
    """The doctor's exit status and report on `env`, checked to show no key."""
    out = io.StringIO()
    status = run_doctor(env, out, chat=chat)
    report = out.getvalue()
    for key in {env.get(name, "") for name in ("GLM_API_KEY", "ZAI_API_KEY", "ZHIPUAI_API_KEY")} - {""}:
        secret = key.partition(".")[2]
        assert key not in report and not (secret and secret in report), "the report shows a key"
    return status, report


def line(report: str, start: str) -> str:
    """The finding whose text starts with `start`, its fix included, as one line (the report wraps them)."""
    findings: list[str] = []
    for text in report.splitlines():
        if re.match(r"  (ok|note|warn|FAIL) ", text):
            findings.append(text.split(maxsplit=1)[1])
        elif text.startswith(" " * 8) and findings:
            findings[-1] += " " + text.strip()
    found = next((finding for finding in findings if finding.startswith(start)), None)
    assert found is not None, f"no finding starting {start!r} in:\n{report}"
    return found


@pytest.mark.parametrize(
    ("env", "coding"),
    [
        ({"GLM_API_KEY": GENERAL_KEY}, False),
        ({"ZHIPUAI_API_KEY": GENERAL_KEY, "GLM_AUTH_MODE": "jwt"}, False),
        ({"GLM_API_KEY": CODING_KEY}, True),
    ],
    ids=["general", "jwt-from-sdk-variable", "coding-plan"],
)
def test_a_good_set_up_is_ready(emulator: Emulator, env: dict[str, str], coding: bool) -> None:
    status, report = doctor(GLM_BASE_URL=emulator.coding_base_url if coding else emulator.base_url, **env)
    assert status == 0, report
    source = next(iter(env))
    assert f"ok    API key from {source}: id emulator, shape <id>.<secret>" in report
    assert f"GET /models: the GLM API is reached and takes the key; {len(DEFAULT_MODELS)} models" in report
    assert "glm-4.6 (GLM_MODEL) answered a 1-token chat" in report
    assert report.rstrip().endswith("Ready: the server can work with this set-up.")
    (probe,) = upstream_calls(emulator, "/chat/completions")
    assert probe.body["max_tokens"] == 1


def test_no_key_fails_without_calling_the_platform(emulator: Emulator) -> None:
    status, report = doctor(GLM_BASE_URL=emulator.base_url)
    assert status == 1
    assert "Set GLM_API_KEY (or ZAI_API_KEY / ZHIPUAI_API_KEY)" in line(report, "API key: none")
    assert upstream_calls(emulator) == []
    assert "Not ready: 1 problem above" in report


def test_a_wrong_key_is_refused_with_the_endpoint_in_the_fix_not_an_overridden_region(emulator: Emulator) -> None:
    status, report = doctor(
        GLM_API_KEY="emulator.not-a-real-key", GLM_BASE_URL=emulator.base_url, GLM_REGION="international"
    )
    assert status == 1
    finding = line(report, "GET /models")
    assert "(HTTP 401, code 1000)" in finding
    assert "The API key from GLM_API_KEY was refused" in finding
    assert f"the platform at GLM_BASE_URL ({emulator.base_url})" in finding
    assert "GLM_REGION" not in finding, "GLM_BASE_URL overrides the region: advice about it misleads"


def test_without_an_override_a_refused_key_is_told_about_its_region() -> None:
    refused = GLMAPIError("Authentication failed", status_code=401, code="1001")
    hint = describe_failure(refused, Settings.from_env({"GLM_REGION": "mainland"})).hint or ""
    assert "GLM_REGION is mainland" in hint and "GLM_BASE_URL" not in hint


def test_a_coding_key_on_the_general_endpoint_is_told_which_endpoint_takes_it(emulator: Emulator) -> None:
    status, report = doctor(GLM_API_KEY=CODING_KEY, GLM_BASE_URL=emulator.base_url)
    assert status == 1
    finding = line(report, "GET /models")
    assert "code 1113" in finding
    assert (
        f"This key belongs to the coding plan: its endpoint accepts it. Set GLM_BASE_URL={emulator.coding_base_url}."
        in finding
    )


def test_a_general_key_on_the_coding_endpoint_likewise(emulator: Emulator) -> None:
    status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.coding_base_url)
    assert status == 1
    assert f"general plan: its endpoint accepts it. Set GLM_BASE_URL={emulator.base_url}." in line(
        report, "GET /models"
    )


def test_an_unreachable_endpoint_points_at_the_base_url_and_proxy() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/api/paas/v4"
    status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=base_url, GLM_MAX_RETRIES="0")
    assert status == 1
    finding = line(report, "GET /models")
    assert "could not reach the GLM API" in finding
    assert "HTTPS_PROXY" in finding and f"GLM_BASE_URL (now {base_url})" in finding


def test_a_base_url_without_the_api_path_is_flagged_and_the_404_says_which_path(emulator: Emulator) -> None:
    status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.origin)
    assert status == 1
    assert "Give the full base URL" in line(report, "GLM_BASE_URL does not end with a GLM API path")
    finding = line(report, "GET /models")
    assert "(HTTP 404" in finding  # the platform's JSON 404 adds its code
    fix = finding.partition(" fix: ")[2]
    assert f"GLM_BASE_URL ({emulator.origin}) lacks the API path: it must end with /api/paas/v4" in fix
    assert f"e.g. {emulator.base_url}." in fix


@pytest.mark.parametrize("piece", ["/v4", "/api/paas", "/paas/v4/"])
def test_a_base_url_ending_in_a_piece_of_the_api_path_is_told_to_drop_it(emulator: Emulator, piece: str) -> None:
    """`http://host/v4` needs `/v4` dropped, not `/api/paas/v4` added after it."""
    status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.origin + piece)
    assert status == 1
    assert f"such as {emulator.base_url}." in line(report, "GLM_BASE_URL does not end with a GLM API path")
    fix = line(report, "GET /models").partition(" fix: ")[2]
    assert f"GLM_BASE_URL ({emulator.origin}{piece.rstrip('/')}) lacks the API path" in fix
    assert f"e.g. {emulator.base_url}." in fix
    assert piece.rstrip("/") + "/api/" not in report


def test_a_proxys_own_prefix_is_kept_in_the_suggested_base_url(emulator: Emulator) -> None:
    status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.origin + "/glm/v4")
    assert status == 1
    assert f"e.g. {emulator.origin}/glm/api/paas/v4." in line(report, "GET /models")


def test_a_404_from_a_server_that_is_not_the_glm_api_says_the_host_is_wrong() -> None:
    """The path ends with /api/paas/v4 as it should; what answers is a web server's page, not the API's error."""
    page = b"<html><head><title>404 Not Found</title></head><body><center>nginx</center></body></html>"
    with HostileUpstream() as other:
        other.reply = lambda request: Reply(404, "Not Found", {"Content-Type": "text/html"}, page)
        status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=other.base_url, GLM_MAX_RETRIES="0")
    assert status == 1
    finding = line(report, "GET /models")
    assert "(HTTP 404)" in finding
    fix = finding.partition(" fix: ")[2]
    assert f"The server at GLM_BASE_URL ({other.base_url}) is not the GLM API" in fix
    assert "the host or port is wrong" in fix and "lacks the API path" not in fix


def test_a_404_in_the_apis_own_shape_is_not_blamed_on_the_host() -> None:
    """The GLM API's own 404 (its JSON error body) comes from the right host."""
    body = json.dumps({"error": {"code": "404", "message": "Not Found"}}).encode()
    with HostileUpstream() as api:
        api.reply = lambda request: Reply(404, "Not Found", {"Content-Type": "application/json"}, body)
        status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=api.base_url, GLM_MAX_RETRIES="0")
    assert status == 1
    finding = line(report, "GET /models")
    assert "code 404" in finding and "is not the GLM API" not in finding
    assert f"The GLM API has no such endpoint at {api.base_url}" in finding


def test_an_unknown_default_model_fails_the_chat_and_lists_the_keys_models(emulator: Emulator) -> None:
    status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MODEL="glm-9000")
    assert status == 1
    finding = line(report, "a 1-token chat with glm-9000")
    assert "code 1211" in finding and "change GLM_MODEL" in finding and "glm-4.5-air" in finding


def test_no_chat_calls_only_the_free_endpoint(emulator: Emulator) -> None:
    status, report = doctor_on({"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": emulator.base_url}, chat=False)
    assert status == 0
    assert "not tried (--no-chat)" in report
    assert [call.path.rsplit("/", 1)[-1] for call in upstream_calls(emulator)] == ["models"]


def test_a_bad_setting_stops_everything_as_it_stops_the_server() -> None:
    status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_REGION="europe")
    assert status == 1
    assert "GLM_REGION: Input should be 'international' or 'mainland'; got 'europe'" in line(report, "configuration")


def test_doubts_about_the_key_and_endpoint_are_warnings(emulator: Emulator) -> None:
    status, report = doctor(
        GLM_API_KEY=GENERAL_KEY, ZAI_API_KEY="other.key-entirely", GLM_BASE_URL=emulator.base_url, GLM_PLAN="coding"
    )
    assert status == 0, report
    assert "which is not used: GLM_API_KEY comes first" in line(report, "ZAI_API_KEY also holds a key")
    assert "Unset GLM_BASE_URL" in line(report, "GLM_PLAN is set but not used")
    assert "(2 warnings above)" in report


def test_a_key_of_the_wrong_shape_is_flagged_before_the_platform_refuses_it(emulator: Emulator) -> None:
    status, report = doctor(GLM_API_KEY='"emulator.key-general"', GLM_BASE_URL=emulator.base_url)
    assert status == 1
    assert "without quotes or spaces" in line(report, "API key from GLM_API_KEY: not of the shape")


PROXY = "http://proxy.corp:3128"
API = "https://api.z.ai/api/paas/v4"


def proxy_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """This process's environment, where httpx2 reads proxies, with exactly the proxy variables in `env`."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "proxy: none (HTTPS_PROXY and ALL_PROXY are not set); connects directly"),
        (
            {"HTTPS_PROXY": "http://me:s3cr3t@proxy.corp:3128"},
            "proxy: http://me:***@proxy.corp:3128 (HTTPS_PROXY) for api.z.ai",
        ),
        (
            {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1"},
            "proxy: http://lower:1 (HTTPS_PROXY) for api.z.ai",
        ),
        ({"ALL_PROXY": "socks5://proxy.corp:1080"}, "proxy: socks5://proxy.corp:1080 (ALL_PROXY) for api.z.ai"),
        (
            {"HTTPS_PROXY": PROXY, "NO_PROXY": "localhost,.z.ai"},
            "proxy: none for api.z.ai (HTTPS_PROXY is set, but NO_PROXY exempts this host)",
        ),
        ({"HTTP_PROXY": PROXY}, "proxy: none (HTTPS_PROXY and ALL_PROXY are not set); connects directly"),
        # Where the doctor's own copy of the rules had drifted from httpx2's:
        (
            {"HTTPS_PROXY": PROXY, "NO_PROXY": "*.z.ai"},
            "proxy: none for api.z.ai (HTTPS_PROXY is set, but NO_PROXY exempts this host)",
        ),
        (
            {"HTTP_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8", "GLM_BASE_URL": "http://10.1.2.3:8080/api/paas/v4"},
            "proxy: none for 10.1.2.3 (HTTP_PROXY is set, but NO_PROXY exempts this host)",
        ),
        (
            {"https_proxy": "", "HTTPS_PROXY": "http://upper:1"},
            "proxy: none (HTTPS_PROXY and ALL_PROXY are not set); connects directly",
        ),
        ({"HTTPS_PROXY": "proxy.corp:3128"}, "proxy: http://proxy.corp:3128 (HTTPS_PROXY) for api.z.ai"),
    ],
    ids=[
        "none",
        "https-password-hidden",
        "lower-case-first",
        "all",
        "no-proxy",
        "http-only",
        "no-proxy-wildcard-suffix",
        "no-proxy-ip-range",
        "empty-lower-case-unsets",
        "no-scheme-is-http",
    ],
)
def test_the_proxy_that_applies_is_named(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    proxy_environment(monkeypatch, env)
    _, report = doctor(**env)  # no key: nothing is sent anywhere
    assert line(report, "proxy:") == expected
    assert "s3cr3t" not in report


def test_the_proxy_named_is_the_one_the_calls_go_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loopback proxy in HTTP_PROXY: the doctor names it, and its `GET /models` reaches the platform through it."""
    with HostileUpstream() as proxy:
        proxy.reply = honest
        origin = f"http://127.0.0.1:{proxy.port}"
        proxy_environment(monkeypatch, {"HTTP_PROXY": origin, "NO_PROXY": "localhost"})
        status, report = doctor_on(
            {"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": "http://glm.test/api/paas/v4"}, chat=False
        )
    assert status == 0, report
    assert line(report, "proxy:") == f"proxy: {origin} (HTTP_PROXY) for glm.test"
    assert [record.request.path for record in proxy.records] == ["http://glm.test/api/paas/v4/models"]


PROXY_RULES: list[tuple[dict[str, str], str, ProxyRoute | None]] = [
    ({}, API, None),
    ({"HTTPS_PROXY": PROXY}, API, ProxyRoute(PROXY, "HTTPS_PROXY")),
    ({"HTTPS_PROXY": "proxy.corp:3128"}, API, ProxyRoute(PROXY, "HTTPS_PROXY")),
    ({"HTTP_PROXY": PROXY}, API, None),
    ({"HTTP_PROXY": PROXY}, "http://glm.internal/api/paas/v4", ProxyRoute(PROXY, "HTTP_PROXY")),
    ({"ALL_PROXY": "http://all:1"}, API, ProxyRoute("http://all:1", "ALL_PROXY")),
    ({"ALL_PROXY": "http://all:1", "HTTPS_PROXY": "http://https:1"}, API, ProxyRoute("http://https:1", "HTTPS_PROXY")),
    (
        {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:1"},
        API,
        ProxyRoute("http://lower:1", "HTTPS_PROXY"),
    ),
    ({"https_proxy": "", "HTTPS_PROXY": "http://upper:1"}, API, None),
    ({"HTTP_PROXY": PROXY, "REQUEST_METHOD": "GET"}, "http://glm.internal/api/paas/v4", None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "api.z.ai"}, API, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "API.Z.AI"}, API, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "z.ai"}, API, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "pi.z.ai"}, API, ProxyRoute(PROXY, "HTTPS_PROXY")),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": ".z.ai"}, API, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": ".z.ai"}, "https://z.ai/api/paas/v4", ProxyRoute(PROXY, "HTTPS_PROXY")),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "*.z.ai"}, API, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, API, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "example.com, *"}, API, None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "api.z.ai:8443"}, "https://api.z.ai:8443/api/paas/v4", None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "api.z.ai:8443"}, API, ProxyRoute(PROXY, "HTTPS_PROXY")),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "api.z.ai:443"}, API, ProxyRoute(PROXY, "HTTPS_PROXY")),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8"}, "http://10.1.2.3:8080/api/paas/v4", None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8"}, "http://11.1.2.3/api/paas/v4", ProxyRoute(PROXY, "HTTP_PROXY")),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "127.0.0.1"}, "http://127.0.0.1:8000/api/paas/v4", None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "::1"}, "http://[::1]:8000/api/paas/v4", None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "fd00::/8"}, "http://[fd12::1]:8000/api/paas/v4", None),
    ({"HTTP_PROXY": PROXY, "NO_PROXY": "localhost"}, "http://localhost:8000/api/paas/v4", None),
]
PROXY_RULE_IDS = [
    "none",
    "https",
    "https-without-scheme",
    "http-proxy-not-for-https",
    "http-proxy-for-http",
    "all",
    "https-before-all",
    "lower-case-first",
    "empty-lower-case-unsets",
    "cgi-ignores-HTTP_PROXY",
    "no-proxy-host",
    "no-proxy-any-case",
    "no-proxy-domain-and-subdomains",
    "no-proxy-not-mid-label",
    "no-proxy-dot-subdomain",
    "no-proxy-dot-not-the-domain",
    "no-proxy-star-dot",
    "no-proxy-star",
    "no-proxy-star-in-list",
    "no-proxy-port",
    "no-proxy-port-other-port",
    "no-proxy-default-port-not-implied",
    "no-proxy-ipv4-range",
    "no-proxy-ipv4-range-outside",
    "no-proxy-ipv4",
    "no-proxy-ipv6",
    "no-proxy-ipv6-range",
    "no-proxy-localhost",
]


@pytest.mark.anyio
@pytest.mark.parametrize(("env", "url", "expected"), PROXY_RULES, ids=PROXY_RULE_IDS)
async def test_the_proxy_route_is_the_one_a_real_httpx2_client_takes(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: ProxyRoute | None
) -> None:
    """Pins `proxy_route` (httpx2's private resolution) to what an `AsyncClient(trust_env=True)` does."""
    proxy_environment(monkeypatch, env)
    assert proxy_route(url) == expected
    async with httpx2.AsyncClient(trust_env=True) as client:
        transport = client._transport_for_url(httpx2.URL(url))
        if expected is None:
            assert transport is client._transport
            return
        assert isinstance(transport, httpx2.AsyncHTTPTransport)
        pool = transport._pool
        assert isinstance(pool, httpcore2.AsyncHTTPProxy)
        proxy = httpx2.URL(expected.proxy)
        assert (pool._proxy_url.scheme, pool._proxy_url.host, pool._proxy_url.port) == (
            proxy.raw_scheme,
            proxy.raw_host,
            proxy.port,
        )


def installed_package(target: Path) -> Path:
    """glm-mcp as a released package installs it (a wheel of this checkout, no source tree beside it) in `target`,
    for `PYTHONPATH`; its dependencies come from this environment."""
    subprocess.run(
        [*PIP_INSTALL, "--no-deps", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert not (target / "pyproject.toml").exists()
    return target


def doctor_command(cwd: Path, **env: str) -> str:
    """`python -m glm_mcp doctor --no-chat` run in `cwd` with no key: its report."""
    run = subprocess.run(
        [*COMMAND, "doctor", "--no-chat"], env=server_env(**env), cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stdout + run.stderr
    return run.stdout


def test_uvx_is_shown_with_its_full_path_to_users_of_the_released_package(tmp_path: Path) -> None:
    site = installed_package(tmp_path / "site")
    (tmp_path / "bin").mkdir()
    uvx = tmp_path / "bin" / "uvx"
    uvx.write_text("#!/bin/sh\n")
    uvx.chmod(0o755)
    python = str(Path(sys.executable).parent)
    # the test's uvx first: the checkout's .venv has a uvx of its own (uv builds the bundles)
    found = doctor_command(tmp_path, PYTHONPATH=str(site), PATH=f"{tmp_path / 'bin'}{os.pathsep}{python}")
    assert line(found, "uvx:").startswith(f"uvx: {uvx}; if a desktop client says it cannot")
    (tmp_path / "no-uvx").mkdir()  # not the interpreter's own directory: the checkout's .venv/bin has a uvx
    missing = doctor_command(tmp_path, PYTHONPATH=str(site), PATH=str(tmp_path / "no-uvx"))
    assert line(missing, "uvx:").startswith("uvx: not on PATH")


def test_a_checkout_says_nothing_of_uvx(tmp_path: Path) -> None:
    """Run from a checkout (scripts/serve installs it so), clients start its .venv/bin/glm-mcp: uvx is not theirs."""
    report = doctor_command(tmp_path, PATH=str(Path(sys.executable).parent))
    assert "API key: none" in report  # the report was written
    assert "uvx" not in report


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("error:1305", "(HTTP 429, code 1305) fix: The model is overloaded right now"),
        ("http:503", "(HTTP 503) fix: The platform had a temporary problem; try again."),
        ("drop", "could not reach the GLM API"),
    ],
)
def test_platform_faults_the_server_would_not_survive_fail(emulator: Emulator, fault: str, expected: str) -> None:
    emulator.inject(fault, path="/models")
    status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MAX_RETRIES="0")
    assert status == 1
    assert expected in line(report, "GET /models")


def test_a_fault_a_retry_gets_past_does_not_fail_the_set_up(emulator: Emulator) -> None:
    emulator.inject("error:1305", path="/models")
    status, report = doctor(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    assert status == 0, report
    assert len(upstream_calls(emulator, "/models")) == 2


def test_the_command_reports_and_exits_by_the_verdict(emulator: Emulator) -> None:
    """`glm-mcp doctor` as a user runs it: a subprocess reading its own environment."""
    good = subprocess.run(
        [*COMMAND, "doctor"],
        env=server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Ready: the server can work with this set-up." in good.stdout
    bad = subprocess.run(
        [*COMMAND, "doctor", "--no-chat"],
        env=server_env(ZAI_API_KEY=CODING_KEY, GLM_BASE_URL=emulator.base_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert line(bad.stdout, "API key from ZAI_API_KEY")
    assert f"Set GLM_BASE_URL={emulator.coding_base_url}." in line(bad.stdout, "GET /models")
    for output in (good.stdout + good.stderr, bad.stdout + bad.stderr):
        assert "key-general" not in output and "key-coding" not in output
