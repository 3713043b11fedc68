"""Every setting, read from the environment once at start-up and validated there.

`ENV_VARS` is the single list of variables: the README table, the manifests and `doctor` are
checked against it by the tests, so a variable cannot be added without being documented.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from glm_mcp.glm.auth import AuthMode, Credentials

_T = TypeVar("_T", bound=str)

Region = Literal["international", "mainland"]
Plan = Literal["general", "coding"]

_HOSTS: dict[Region, str] = {"international": "https://api.z.ai", "mainland": "https://open.bigmodel.cn"}
_PATHS: dict[Plan, str] = {"general": "/api/paas/v4", "coding": "/api/coding/paas/v4"}
API_PATHS: Mapping[Plan, str] = _PATHS
"""The path every GLM base URL ends with, by plan: what a GLM_BASE_URL must end with too."""
_REGIONS: tuple[Region, ...] = ("international", "mainland")
_PLANS: tuple[Plan, ...] = ("general", "coding")
_AUTH_MODES: tuple[AuthMode, ...] = ("bearer", "jwt")

API_KEY_VARS = ("GLM_API_KEY", "ZAI_API_KEY", "ZHIPUAI_API_KEY")
"""Where the key is looked for, first match wins: ours, then the names the official SDKs read."""


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    default: str
    meaning: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "GLM_API_KEY",
        "(none)",
        "Your API key (`<id>.<secret>`). `ZAI_API_KEY` and `ZHIPUAI_API_KEY`, the "
        "names the official SDKs read, are accepted too, in that order. Without a key the server still "
        "starts and lists its tools; each call then says which variable to set.",
    ),
    EnvVar(
        "GLM_AUTH_MODE",
        "bearer",
        "`bearer` sends the key as it is (what the official SDKs do); `jwt` "
        "sends a short-lived signed token made from it instead.",
    ),
    EnvVar(
        "GLM_REGION",
        "international",
        "`international` (api.z.ai) or `mainland` (open.bigmodel.cn): the platform your key belongs to.",
    ),
    EnvVar(
        "GLM_PLAN",
        "general",
        "`general` (pay-as-you-go) or `coding` (GLM Coding Plan subscription): a "
        "key works only on the endpoint of its plan.",
    ),
    EnvVar(
        "GLM_BASE_URL",
        "(from region and plan)",
        "Full API base URL, e.g. `https://api.z.ai/api/paas/v4`; when set, region and plan are not used.",
    ),
    EnvVar("GLM_MODEL", "glm-4.6", "Model used when a tool call names none."),
    EnvVar(
        "GLM_WAIT_SECONDS",
        "45",
        "How long `chat` and `web_search_chat` wait for an answer before handing back a `job_id` (the "
        "generation goes on; `get_result` fetches it). Below the 60 s after which many clients give up. "
        "A call's own `wait_seconds` overrides it.",
    ),
    EnvVar("GLM_TIMEOUT", "300", "Seconds to wait for the next bytes from the API before giving up."),
    EnvVar("GLM_CONNECT_TIMEOUT", "10", "Seconds to wait for a connection to the API."),
    EnvVar(
        "GLM_CALL_DEADLINE",
        "1800",
        "Seconds one upstream call may take in all (waiting its turn, retries, the whole streamed answer, also "
        "in a handed-off job); past it the call fails and its slot is freed, even if the API keeps sending.",
    ),
    EnvVar(
        "GLM_MAX_RESPONSE_BYTES",
        "16777216",
        "Largest JSON answer read from the API, in bytes after decompression (16 MiB); a larger one fails the "
        "call and its connection is closed.",
    ),
    EnvVar(
        "GLM_MAX_ANSWER_CHARS",
        "2000000",
        "Largest streamed answer, in characters of text, reasoning and tool-call arguments together; past it the "
        "stream is stopped and the call fails (with the text so far).",
    ),
    EnvVar(
        "GLM_MAX_RETRIES",
        "3",
        "Times a failed request is sent again, for failures a retry can fix (rate limits 1302/1303, overload "
        "1305, server errors, timeouts); billing, key, quota and bad-request errors are never retried. 0 turns "
        "retries off.",
    ),
    EnvVar(
        "GLM_RETRY_BUDGET",
        "60",
        "Seconds all attempts of one call may take together, waits included; no retry starts past it.",
    ),
    EnvVar(
        "GLM_MAX_CONCURRENCY",
        "32",
        "Upstream requests in flight at once (a streamed answer counts until it ends); more calls wait their "
        "turn instead of tripping the platform's concurrency limit. Set it to your account's limit.",
    ),
    EnvVar(
        "GLM_MAX_PROMPT_CHARS",
        "1000000",
        "Largest input a call may send, in characters of all its messages together (about 4 per token); larger "
        "ones are refused before anything is sent.",
    ),
    EnvVar(
        "GLM_DATA_DIR",
        "(the user data directory)",
        "Where the job registry (`jobs.sqlite3`) is kept, shared by every glm-mcp process of the user. By default "
        "`$XDG_DATA_HOME/glm-mcp` (`~/.local/share/glm-mcp`) on Linux, `~/Library/Application Support/glm-mcp` on "
        "macOS, `%LOCALAPPDATA%\\glm-mcp` on Windows. An absolute path.",
    ),
    EnvVar(
        "GLM_JOB_RETENTION_DAYS",
        "7",
        "Days a finished job stays in the registry (and `list_jobs`, `get_result`) after it ended; older ones "
        "are deleted.",
    ),
    EnvVar("GLM_LOG_LEVEL", "WARNING", "Log level of the server's log on stderr (DEBUG, INFO, WARNING, ERROR)."),
    EnvVar(
        "GLM_MCP_HTTP_TOKEN",
        "(none)",
        "The token HTTP clients must send as `Authorization: Bearer <token>`, at least 16 characters "
        "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'` makes one). Without one the HTTP "
        "server binds only a loopback address. Not used over stdio.",
    ),
    EnvVar(
        "GLM_MCP_HTTP_TOKEN_FILE",
        "(none)",
        "A file holding the token (a mounted Kubernetes or Docker secret), instead of `GLM_MCP_HTTP_TOKEN`.",
    ),
    EnvVar(
        "GLM_MCP_ALLOWED_HOSTS",
        "(loopback names only)",
        "Comma-separated `Host` header values the HTTP server answers besides `127.0.0.1`, `localhost` and "
        "`[::1]`: the names clients reach it by (`mcp.example.com`, `glm-mcp.team.svc`). A name without a port "
        "is allowed on any port. Any other host gets 421 (DNS-rebinding protection, always on).",
    ),
    EnvVar(
        "GLM_MCP_ALLOWED_ORIGINS",
        "(loopback origins only)",
        "Comma-separated browser origins (`https://app.example.com`; `:*` for any port) allowed besides "
        "`http://127.0.0.1`, `http://localhost` and `http://[::1]` on any port. A request from any other "
        "`Origin` gets 403; requests without one (clients that are not browsers) are not affected.",
    ),
    EnvVar(
        "GLM_MCP_STATELESS",
        "true",
        "`true`: every HTTP request stands alone, so replicas behind a load balancer need no sticky sessions. "
        "`false` (or `--sessionful`): each client gets an MCP session (`Mcp-Session-Id`) kept by one process.",
    ),
    EnvVar(
        "GLM_MCP_ALLOW_INSECURE",
        "false",
        "`true` (or `--allow-insecure`) lets the HTTP server bind a non-loopback address without a token: "
        "anyone who can reach it then spends your GLM key.",
    ),
    EnvVar(
        "GLM_MCP_ALLOW_CLIENT_KEYS",
        "false",
        "`true` lets HTTP callers send their own GLM key in an `X-GLM-API-Key` header, used for that request "
        "instead of the server's key, never stored or logged. When `false` a request with that header gets 400.",
    ),
    EnvVar(
        "GLM_MCP_MAX_BODY_BYTES",
        "4194304",
        "Largest HTTP request body accepted, in bytes (4 MiB); a larger one gets 413.",
    ),
    EnvVar(
        "GLM_MCP_SHUTDOWN_GRACE",
        "60",
        "Seconds the HTTP server gives calls in flight to finish after SIGTERM (it stops accepting new "
        "connections at once) before it cancels them and exits.",
    ),
    EnvVar(
        "GLM_MCP_HEADER_TIMEOUT",
        "10",
        "Seconds an HTTP client has to send a request's headers, after connecting or between two requests on "
        "one connection; a socket that sends nothing or trickles its headers is closed then.",
    ),
    EnvVar(
        "GLM_MCP_MAX_CONNECTIONS",
        "4096",
        "HTTP connections open at once (idle ones included) past which requests are answered 503. At start the "
        "open-files limit is raised as far as the system allows; the cap is lowered to what then fits.",
    ),
)

DEFAULT_MODEL = "glm-4.6"
MIN_HTTP_TOKEN_CHARS = 16


def user_data_dir() -> Path:
    """The platform's place for this user's application data, with a `glm-mcp` directory in it."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "glm-mcp"


class ConfigError(ValueError):
    """A setting has a value the server cannot use; the message names the variable and the fix."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated configuration. Build it with `Settings.from_env()`."""

    credentials: Credentials | None = None
    region: Region = "international"
    plan: Plan = "general"
    base_url: str = field(default_factory=lambda: _HOSTS["international"] + _PATHS["general"])
    base_url_from_env: bool = False
    default_model: str = DEFAULT_MODEL
    wait_seconds: float = 45.0
    timeout: float = 300.0
    connect_timeout: float = 10.0
    call_deadline: float = 1800.0
    max_response_bytes: int = 16 * 1024 * 1024
    max_answer_chars: int = 2_000_000
    max_retries: int = 3
    retry_budget: float = 60.0
    max_concurrency: int = 32
    max_prompt_chars: int = 1_000_000
    data_dir: Path = field(default_factory=user_data_dir)
    job_retention_days: int = 7
    log_level: str = "WARNING"
    auth_mode: AuthMode = "bearer"
    http_token: str | None = field(default=None, repr=False)
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    stateless: bool = True
    allow_insecure: bool = False
    allow_client_keys: bool = False
    max_body_bytes: int = 4 * 1024 * 1024
    shutdown_grace: float = 60.0
    header_timeout: float = 10.0
    max_connections: int = 4096

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        reader = _Reader(env)
        auth_mode = reader.choice("GLM_AUTH_MODE", _AUTH_MODES, "bearer")
        region = reader.choice("GLM_REGION", _REGIONS, "international")
        plan = reader.choice("GLM_PLAN", _PLANS, "general")
        base_url = reader.text("GLM_BASE_URL")
        if base_url and not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"GLM_BASE_URL must start with http:// or https://, got {base_url!r}")
        return cls(
            credentials=_credentials(env, auth_mode),
            region=region,
            plan=plan,
            base_url=(base_url or _HOSTS[region] + _PATHS[plan]).rstrip("/"),
            base_url_from_env=bool(base_url),
            default_model=reader.text("GLM_MODEL") or DEFAULT_MODEL,
            wait_seconds=reader.seconds("GLM_WAIT_SECONDS", 45.0, allow_zero=True),
            timeout=reader.seconds("GLM_TIMEOUT", 300.0),
            connect_timeout=reader.seconds("GLM_CONNECT_TIMEOUT", 10.0),
            call_deadline=reader.seconds("GLM_CALL_DEADLINE", 1800.0),
            max_response_bytes=reader.count("GLM_MAX_RESPONSE_BYTES", 16 * 1024 * 1024, minimum=1024),
            max_answer_chars=reader.count("GLM_MAX_ANSWER_CHARS", 2_000_000, minimum=1),
            max_retries=reader.count("GLM_MAX_RETRIES", 3, minimum=0),
            retry_budget=reader.seconds("GLM_RETRY_BUDGET", 60.0),
            max_concurrency=reader.count("GLM_MAX_CONCURRENCY", 32, minimum=1),
            max_prompt_chars=reader.count("GLM_MAX_PROMPT_CHARS", 1_000_000, minimum=1),
            data_dir=_data_dir(reader.text("GLM_DATA_DIR")),
            job_retention_days=reader.count("GLM_JOB_RETENTION_DAYS", 7, minimum=1),
            log_level=reader.choice("GLM_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "WARNING", upper=True),
            auth_mode=auth_mode,
            http_token=_http_token(reader),
            allowed_hosts=reader.names("GLM_MCP_ALLOWED_HOSTS", _check_host),
            allowed_origins=reader.names("GLM_MCP_ALLOWED_ORIGINS", _check_origin),
            stateless=reader.flag("GLM_MCP_STATELESS", True),
            allow_insecure=reader.flag("GLM_MCP_ALLOW_INSECURE", False),
            allow_client_keys=reader.flag("GLM_MCP_ALLOW_CLIENT_KEYS", False),
            max_body_bytes=reader.count("GLM_MCP_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024),
            shutdown_grace=reader.seconds("GLM_MCP_SHUTDOWN_GRACE", 60.0, allow_zero=True),
            header_timeout=reader.seconds("GLM_MCP_HEADER_TIMEOUT", 10.0),
            max_connections=reader.count("GLM_MCP_MAX_CONNECTIONS", 4096, minimum=1),
        )

    @property
    def request_headers(self) -> dict[str, str]:
        """Headers sent with every request: the international platform answers errors in English."""
        return {"Accept-Language": "en-US,en"} if "bigmodel.cn" not in self.base_url else {}


def _credentials(env: Mapping[str, str], mode: AuthMode) -> Credentials | None:
    for name in API_KEY_VARS:
        key = env.get(name, "").strip()
        if key:
            if mode == "jwt" and "." not in key:
                raise ConfigError(
                    f"GLM_AUTH_MODE=jwt needs a key of the form <id>.<secret>; the key in {name} has no '.'"
                )
            return Credentials(key, mode=mode, source=name)
    return None


def _data_dir(raw: str) -> Path:
    if not raw:
        return user_data_dir()
    path = Path(raw).expanduser()
    if not path.is_absolute():  # clients start servers in a directory of their choosing
        raise ConfigError(f"GLM_DATA_DIR must be an absolute path, got {raw!r}")
    return path


def _http_token(reader: _Reader) -> str | None:
    """The HTTP bearer token, from the variable or from the file it names (a mounted secret)."""
    token, path = reader.text("GLM_MCP_HTTP_TOKEN"), reader.text("GLM_MCP_HTTP_TOKEN_FILE")
    source = "GLM_MCP_HTTP_TOKEN_FILE" if path else "GLM_MCP_HTTP_TOKEN"
    if token and path:
        raise ConfigError("set GLM_MCP_HTTP_TOKEN or GLM_MCP_HTTP_TOKEN_FILE, not both")
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"GLM_MCP_HTTP_TOKEN_FILE names a file that cannot be read: {path!r} ({exc})") from None
        if not token:
            raise ConfigError(f"GLM_MCP_HTTP_TOKEN_FILE names an empty file: {path!r}")
    if not token:
        return None
    if len(token) < MIN_HTTP_TOKEN_CHARS or not (token.isascii() and token.isprintable()) or " " in token:
        raise ConfigError(
            f"the token in {source} must be at least {MIN_HTTP_TOKEN_CHARS} ASCII characters without spaces; "
            "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token


def _check_host(entry: str) -> bool:
    return "/" not in entry and not any(c.isspace() for c in entry)


def _check_origin(entry: str) -> bool:
    return entry.startswith(("http://", "https://")) and "/" not in entry.split("://", 1)[1]


class _Reader:
    """Reads variables with messages that name the variable and what it accepts."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str:
        return self._env.get(name, "").strip()

    def choice(self, name: str, allowed: tuple[_T, ...], default: _T, *, upper: bool = False) -> _T:
        raw = self.text(name)
        value = (raw.upper() if upper else raw.lower()) or default
        for option in allowed:
            if option == value:
                return option
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {raw!r}")

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def names(self, name: str, valid: Callable[[str], bool]) -> tuple[str, ...]:
        """A comma-separated list; each entry must pass `valid`."""
        entries = tuple(entry.strip() for entry in self.text(name).split(",") if entry.strip())
        for entry in entries:
            if not valid(entry):
                raise ConfigError(f"{name} has an entry that is not a host or origin: {entry!r}")
        return entries

    def count(self, name: str, default: int, *, minimum: int) -> int:
        raw = self.text(name).replace("_", "")
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
        return value

    def seconds(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
        if not (value >= 0 if allow_zero else value > 0) or value == float("inf"):
            raise ConfigError(f"{name} must be a number of seconds {'from' if allow_zero else 'above'} 0, got {raw!r}")
        return value
