"""`glm-mcp doctor`: check a set-up the way the server will see it, and say what to fix.

Most trouble with an MCP server is in its set-up rather than its code: a key in a variable the
client never passed, a key of the other plan, a base URL or proxy that cannot be reached, a
default model the key cannot use. The doctor reads the configuration with the server's own
`Settings`, calls the platform with the server's own client, and gives the advice a failed tool
call would give (`glm_mcp.server.failures`), so the doctor and the server can never disagree.

The upstream is checked with the cheapest calls there are: `GET /models` (free) shows that the
endpoint can be reached and takes the key; then, only if it did, one chat of at most one token
with the default model, because a free call cannot show the two remaining traps: a default model
the key cannot use, and an account without balance (1113). That chat costs a handful of tokens;
`--no-chat` skips it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO, get_args
from urllib.parse import urlsplit, urlunsplit

from glm_mcp import __version__
from glm_mcp.config import API_KEY_VARS, ConfigError, Plan, Settings

if TYPE_CHECKING:
    from glm_mcp.errors import Advice
    from glm_mcp.glm import GLMClient, GLMError
    from glm_mcp.glm.types import ChatRequest
    from glm_mcp.server.failures import ToolFailure

Status = Literal["ok", "note", "warn", "fail"]

_LABELS: dict[Status, str] = {"ok": "ok", "note": "note", "warn": "warn", "fail": "FAIL"}
_KEY_SHAPE = re.compile(r"[^.\s\"']+\.[^.\s\"']+")
_PROBE_TIMEOUT_S = 30.0  # a one-token answer needs no more; the server's own GLM_TIMEOUT may be minutes


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: what was found and, when something is wrong, what to do."""

    status: Status
    text: str
    fix: str = ""


def run_doctor(env: Mapping[str, str] | None = None, out: TextIO | None = None, *, chat: bool = True) -> int:
    """Check the set-up in `env` (default: this process's), print the report; 0 when the server can work."""
    import anyio

    findings = anyio.run(diagnose, os.environ if env is None else env, chat)
    write_report(findings, sys.stdout if out is None else out)
    return 1 if any(finding.status == "fail" for finding in findings) else 0


async def diagnose(env: Mapping[str, str], chat: bool = True) -> list[Finding]:
    """Every finding, in the order a person would check them: settings, key, endpoint, network, upstream.

    The HTTP client reads proxies from the process environment, as the server's does (and so does the
    proxy finding), so `env` should be that environment whenever proxies matter.
    """
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        return [
            Finding(
                "fail",
                f"configuration: {exc}",
                "Correct that variable where your client starts the server; the server refuses to start until then.",
            )
        ]
    findings = [
        *_key_findings(settings, env),
        *_endpoint_findings(settings, env),
        _proxy_finding(settings.upstream.base_url),
        *([] if _from_checkout() else [_uvx_finding(env)]),
    ]
    if settings.upstream.credentials is not None:
        findings += await _upstream_findings(settings, chat=chat)
    return findings


def write_report(findings: list[Finding], out: TextIO) -> None:
    """The plain report: one line per finding, its fix below it, and the verdict last."""
    out.write(
        f"glm-mcp doctor {__version__}: the set-up as the server sees it in this environment.\n"
        'A desktop client passes the server only its config\'s "env" block: run the doctor with those.\n\n'
    )
    for finding in findings:
        out.write(_wrap(f"{_LABELS[finding.status]:<5} {finding.text}", indent="  ", hang=8))
        if finding.fix:
            out.write(_wrap(f"fix: {finding.fix}", indent=" " * 8, hang=13))
    problems = sum(finding.status == "fail" for finding in findings)
    warnings = sum(finding.status == "warn" for finding in findings)
    if problems:
        out.write(
            f"\nNot ready: {problems} problem{'s' if problems > 1 else ''} above; "
            "the server cannot answer tool calls until fixed.\n"
        )
    else:
        aside = f" ({warnings} warning{'s' if warnings > 1 else ''} above)" if warnings else ""
        out.write(f"\nReady: the server can work with this set-up{aside}.\n")


def _wrap(text: str, *, indent: str, hang: int) -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=" " * hang) + "\n"


# --- configuration ------------------------------------------------------------------------


def _key_findings(settings: Settings, env: Mapping[str, str]) -> list[Finding]:
    credentials = settings.upstream.credentials
    if credentials is None:
        from glm_mcp.glm import MissingAPIKeyError

        advice = _advice(MissingAPIKeyError("no GLM API key is configured"), settings)
        return [Finding("fail", f"API key: none in {', '.join(API_KEY_VARS)}", advice.hint or "")]
    key = env[credentials.source].strip()
    if _KEY_SHAPE.fullmatch(key):
        findings = [
            Finding(
                "ok",
                f"API key from {credentials.source}: id {credentials.key_id}, shape <id>.<secret>, "
                f"sent as {credentials.mode} (GLM_AUTH_MODE)",
            )
        ]
    else:
        findings = [
            Finding(
                "warn",
                f"API key from {credentials.source}: not of the shape <id>.<secret> ({len(key)} characters)",
                "Copy the whole key from the platform's API keys page, without quotes or spaces.",
            )
        ]
    unused = [
        name for name in API_KEY_VARS if name != credentials.source and env.get(name, "").strip() not in ("", key)
    ]
    if unused:
        findings.append(
            Finding(
                "warn",
                f"{' and '.join(unused)} also hold{'s' if len(unused) == 1 else ''} a key, another one, "
                f"which is not used: {credentials.source} comes first",
                "Leave only the key you mean, so there is no doubt which one the server sends.",
            )
        )
    return findings


def _endpoint_findings(settings: Settings, env: Mapping[str, str]) -> list[Finding]:
    upstream = settings.upstream
    if not upstream.base_url_from_env:
        return [Finding("ok", f"endpoint {upstream.base_url} (GLM_REGION={upstream.region}, GLM_PLAN={upstream.plan})")]
    findings = [Finding("ok", f"endpoint {upstream.base_url} (GLM_BASE_URL)")]
    if _plan_of(upstream.base_url) is None:
        paths = " or ".join(_plan_paths().values())
        findings.append(
            Finding(
                "warn",
                f"GLM_BASE_URL does not end with a GLM API path ({paths})",
                f"Give the full base URL, such as {_facts(settings).base_url_with_api_path()}.",
            )
        )
    ignored = [name for name in ("GLM_REGION", "GLM_PLAN") if env.get(name, "").strip()]
    if ignored:
        findings.append(
            Finding(
                "warn",
                f"{' and '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} set but not used: GLM_BASE_URL wins",
                "Unset GLM_BASE_URL to choose the endpoint by region and plan, or unset "
                f"{' and '.join(ignored)} to avoid the doubt.",
            )
        )
    return findings


def _proxy_finding(base_url: str) -> Finding:
    """The proxy the server's HTTP client will go through for `base_url`, as httpx2 itself decides it.

    httpx2 reads this process's environment (never the `env` given to `diagnose`), as the server's client does.
    """
    from urllib.request import getproxies

    from glm_mcp.glm.proxy import proxy_route

    url = urlsplit(base_url)
    host = url.hostname or ""
    route = proxy_route(base_url)
    if route is not None:
        return Finding("note", f"proxy: {_without_password(route.proxy)} ({route.variable}) for {host}")
    configured = getproxies()  # where httpx2 reads the variables from
    name = next((name for name in (url.scheme, "all") if configured.get(name)), None)
    if name is not None:
        return Finding("ok", f"proxy: none for {host} ({name.upper()}_PROXY is set, but NO_PROXY exempts this host)")
    return Finding("ok", f"proxy: none ({url.scheme.upper()}_PROXY and ALL_PROXY are not set); connects directly")


def _from_checkout() -> bool:
    """Whether this glm-mcp runs from a checkout (its source tree, as scripts/serve installs it) rather than from
    a released package: a checkout's clients start its .venv/bin/glm-mcp, so where uvx is does not matter."""
    project = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        return 'name = "glm-mcp-server"' in project.read_text(encoding="utf-8")
    except OSError:
        return False


def _uvx_finding(env: Mapping[str, str]) -> Finding:
    """Where `uvx` is: desktop clients start servers with a shorter PATH than a shell's."""
    uvx = shutil.which("uvx", path=env.get("PATH"))
    if uvx:
        return Finding(
            "note", f'uvx: {uvx}; if a desktop client says it cannot find uvx, give this full path as its "command"'
        )
    return Finding(
        "note",
        "uvx: not on PATH; only the after-release client configs need it (uvx --from glm-mcp-server): until "
        'then, give the full path of glm-mcp (<checkout>/.venv/bin/glm-mcp) as the client\'s "command"',
    )


def _without_password(proxy: str) -> str:
    url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if url.password is None:
        return proxy
    netloc = f"{url.username}:***@{url.hostname}" + (f":{url.port}" if url.port else "")
    return urlunsplit(url._replace(netloc=netloc))


def _plan_paths() -> dict[Plan, str]:
    """The API path of each plan, as the configuration builds it (/api/paas/v4, /api/coding/paas/v4)."""
    return {plan: urlsplit(Settings.from_env({"GLM_PLAN": plan}).upstream.base_url).path for plan in get_args(Plan)}


def _plan_of(base_url: str) -> Plan | None:
    path = urlsplit(base_url).path.rstrip("/")
    return next((plan for plan, plan_path in _plan_paths().items() if path.endswith(plan_path)), None)


# --- upstream -----------------------------------------------------------------------------


async def _upstream_findings(settings: Settings, *, chat: bool) -> list[Finding]:
    from glm_mcp.glm import GLMError

    async with _client(settings, settings.upstream.base_url) as glm:
        try:
            models = [model.id for model in await glm.list_models()]
        except GLMError as exc:
            return [await _refused(exc, settings)]
        findings = [Finding("ok", f"GET /models: the GLM API is reached and takes the key; {len(models)} models")]
        if not chat:
            return [
                *findings,
                Finding(
                    "note",
                    f"not tried (--no-chat): a chat with {settings.models.default}, which shows an "
                    "unknown GLM_MODEL or an account without balance",
                ),
            ]
        try:
            await glm.chat(_probe(settings.models.default))
        except GLMError as exc:
            advice = _advice(exc, settings, models=models)
            findings.append(
                Finding("fail", f"a 1-token chat with {settings.models.default}: {_summary(advice)}", advice.hint or "")
            )
        else:
            findings.append(Finding("ok", f"{settings.models.default} (GLM_MODEL) answered a 1-token chat"))
    return findings


async def _refused(exc: GLMError, settings: Settings) -> Finding:
    """The finding for a failed `GET /models`; a key of the other plan is found out by asking that plan."""
    from glm_mcp.glm import GLMAPIError

    advice = _advice(exc, settings)
    fix = advice.hint or ""
    if isinstance(exc, GLMAPIError) and exc.code == "1113":
        fix = await _other_plan_fix(settings) or fix
    return Finding("fail", f"GET /models: {_summary(advice)}", fix)


async def _other_plan_fix(settings: Settings) -> str | None:
    """How to switch plans, when the key is refused here but accepted by the other plan's endpoint."""
    from glm_mcp.glm import GLMError

    plan = _plan_of(settings.upstream.base_url)
    if plan is None:
        return None
    paths = _plan_paths()
    (other,) = (p for p in paths if p != plan)
    base = settings.upstream.base_url.rstrip("/")
    other_url = base[: len(base) - len(paths[plan])] + paths[other]
    try:
        async with _client(settings, other_url) as glm:
            await glm.list_models()
    except GLMError:
        return None
    if settings.upstream.base_url_from_env:
        return f"This key belongs to the {other} plan: its endpoint accepts it. Set GLM_BASE_URL={other_url}."
    return f"This key belongs to the {other} plan: its endpoint accepts it. Set GLM_PLAN={other}."


def _client(settings: Settings, base_url: str) -> AbstractAsyncContextManager[GLMClient]:
    """The server's own client (retries included: what a retry would fix does not stop the server),
    with a short read time limit."""
    from glm_mcp.upstream import open_glm_client

    return open_glm_client(settings, base_url=base_url, timeout=min(settings.upstream.timeout, _PROBE_TIMEOUT_S))


def _probe(model: str) -> ChatRequest:
    from glm_mcp.glm.types import ChatRequest, Message
    from glm_mcp.tools.arguments import new_request_id

    return ChatRequest(
        model=model, messages=[Message(role="user", content="Say OK.")], max_tokens=1, request_id=new_request_id()
    )


def _facts(settings: Settings) -> Advice:
    """What advice may say about `settings`: the same facts a failed tool call's advice is given."""
    from glm_mcp.server.failures import advice_facts

    return advice_facts(settings)


def _advice(exc: BaseException, settings: Settings, *, models: list[str] | None = None) -> ToolFailure:
    """What a tool call failing with `exc` would tell its caller: the same words, from the same place."""
    from glm_mcp.server.failures import describe_failure

    return describe_failure(exc, settings, models=models)


def _summary(advice: ToolFailure) -> str:
    details = ", ".join(
        f"{name} {value}" for name, value in (("HTTP", advice.http_status), ("code", advice.glm_code)) if value
    )
    return advice.message + (f" ({details})" if details else "")
