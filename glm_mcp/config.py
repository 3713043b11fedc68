"""Every setting, declared once: variable, type, default, bounds and meaning in one field of a settings group.

`Settings` is made of frozen groups (`upstream`, `models`, `server`, `results`, `files`, `registry`, `http`,
`signin`); each field of a group names its environment variable in its `validation_alias`. One reader,
`Variables`, takes them from the environment (or a mapping) for `Settings.from_env`, which validates what
it found; `Settings(...)` alone reads nothing. (A plain pydantic model: pydantic-settings, which read them
through the same `Variables` as a source, cost every start ~15 ms of imports for none of its features.)
`ENV_VARS` lists every variable with its default, meaning and group, from which `scripts/sync-manifests`
writes the tables of docs/configuration.md (one a group) and against which the tests check the manifests,
so a default changed here and nowhere else fails the suite.

An empty variable counts as unset, except for a field marked `BLANK_IS_A_VALUE` (`GLM_MCP_OAUTH_SCOPE`:
no scope required). Validators only check values: files are read by `Variables`, before validation.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from glm_mcp.glm.auth import AuthMode, Credentials

__all__ = [
    "API_KEY_VARS",
    "API_PATHS",
    "APP_NAME",
    "BLANK_IS_A_VALUE",
    "DEFAULT_MODEL",
    "ENV_VARS",
    "FILE_HOLDS",
    "MIN_HTTP_TOKEN_CHARS",
    "TOOLSETS",
    "ConfigError",
    "EnvVar",
    "Files",
    "Group",
    "Http",
    "LogLevel",
    "MediaInline",
    "Models",
    "Plan",
    "Region",
    "Registry",
    "Results",
    "Server",
    "Settings",
    "SignIn",
    "Upstream",
    "Variables",
    "user_data_dir",
]

Region = Literal["international", "mainland"]
Plan = Literal["general", "coding"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
MediaInline = Literal["auto", "always", "never"]

_HOSTS: dict[Region, str] = {"international": "https://api.z.ai", "mainland": "https://open.bigmodel.cn"}
_PATHS: dict[Plan, str] = {"general": "/api/paas/v4", "coding": "/api/coding/paas/v4"}
API_PATHS: Mapping[Plan, str] = _PATHS
"""The path every GLM base URL ends with, by plan: what a GLM_BASE_URL must end with too."""

API_KEY_VARS = ("GLM_API_KEY", "ZAI_API_KEY", "ZHIPUAI_API_KEY")
"""Where the key is looked for, first match wins: ours, then the names the official SDKs read."""
DEFAULT_MODEL = "glm-4.6"
MIN_HTTP_TOKEN_CHARS = 16
APP_NAME = "glm-mcp"
TOOLSETS = ("core", "search", "images", "video", "models", "usage", "batch")
"""The groups of tools GLM_MCP_TOOLSETS chooses from (each tool's `ToolSpec.toolset`)."""

BLANK_IS_A_VALUE = "blank_is_a_value"
"""Marks a field (in its `json_schema_extra`) whose variable set empty means empty, not unset."""
FILE_HOLDS = "file_holds"
"""Marks a field (in its `json_schema_extra`) whose variable names a file holding the value of another field of
its group, named here (a mounted secret); `Variables` reads it."""
_SHOWN_DEFAULT = "shown_default"


def user_data_dir() -> Path:
    """The platform's place for this user's application data, with a `glm-mcp` directory in it."""
    import platformdirs  # deferred: only a process that records a job needs it

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class ConfigError(ValueError):
    """A setting has a value the server cannot use; the message names the variable and the fix."""

    def __init__(self, message: str, *, variable: str = "", problem: str = "") -> None:
        super().__init__(message)
        self.variable = variable
        """The variable at fault, when the error is about one."""
        self.problem = problem or message
        """What is wrong, without the variable's name: for a command-line flag that gave the value to say."""


# --- how values are written -------------------------------------------------------------------------


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _whole_number(value: object) -> object:
    """`1_000_000` as well as `1000000`, as Python writes numbers."""
    return value.strip().replace("_", "") if isinstance(value, str) else value


def _names(value: object) -> object:
    """A comma-separated list, blanks dropped."""
    if isinstance(value, str):
        return tuple(entry.strip() for entry in value.split(",") if entry.strip())
    return value


def _paths(value: object) -> object:
    """A list of directories separated by `os.pathsep`, blanks dropped."""
    if isinstance(value, str):
        return tuple(Path(entry.strip()) for entry in value.split(os.pathsep) if entry.strip())
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number of seconds")
    return value


def _off(value: object) -> object:
    """`off` (or `none`) as unset."""
    return None if isinstance(value, str) and value.strip().lower() in ("off", "none") else _stripped(value)


def _finite_amount(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite amount")
    return value


def _absolute(value: Path) -> Path:
    value = value.expanduser()
    if not value.is_absolute():  # clients start servers in a directory of their choosing
        raise ValueError("must be an absolute path")
    return value


def _text(secret: SecretStr | None) -> str:
    return secret.get_secret_value().strip() if secret else ""


def _shown(text: str) -> dict[str, Any]:
    """How the documentation shows a default that is not a plain value."""
    return {_SHOWN_DEFAULT: text}


Seconds = Annotated[float, BeforeValidator(_stripped), AfterValidator(_finite)]
Count = Annotated[int, BeforeValidator(_whole_number)]
Names = Annotated[tuple[str, ...], BeforeValidator(_names)]
Paths = Annotated[tuple[Path, ...], BeforeValidator(_paths)]
AbsolutePath = Annotated[Path, AfterValidator(_absolute)]


# --- the groups -------------------------------------------------------------------------------------


class Group(BaseModel):
    """A frozen group of settings. Each field is read from the variable its `validation_alias` names, and can
    be given by its name too (`Http(stateless=False)`); its `title` heads its table in docs/configuration.md.

    Built on first use (`defer_build`): a start validates only the groups it has variables for and takes the others'
    defaults as they are (`Settings.from_env`), so it builds no validator for them (~0.4 ms a group). Defaults are
    never validated (no field says `validate_default`), so `Group.model_construct()` is `Group()`."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, defer_build=True
    )

    def replace(self, **changes: Any) -> Self:
        """This group with `changes` (by field name), validated again."""
        return self.model_validate({**{name: getattr(self, name) for name in type(self).model_fields}, **changes})


class Upstream(Group, title="The GLM API"):
    """The GLM API: the key, the endpoint, and the bounds on every call to it."""

    api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(*API_KEY_VARS),
        repr=False,
        description="Your API key (`<id>.<secret>`). `ZAI_API_KEY` and `ZHIPUAI_API_KEY`, the names the official "
        "SDKs read, are accepted too, in that order. Without a key the server still starts and lists its tools; "
        "each call then says which variable to set.",
    )
    key_source: str = Field(API_KEY_VARS[0], exclude=True, repr=False)
    """Where `api_key` came from, for messages ("the key in ZAI_API_KEY …"); not a variable."""
    auth_mode: Annotated[AuthMode, BeforeValidator(_lower)] = Field(
        "bearer",
        validation_alias="GLM_AUTH_MODE",
        description="`bearer` sends the key as it is (what the official SDKs do); `jwt` sends a short-lived signed "
        "token made from it instead.",
    )
    region: Annotated[Region, BeforeValidator(_lower)] = Field(
        "international",
        validation_alias="GLM_REGION",
        description="`international` (api.z.ai) or `mainland` (open.bigmodel.cn): the platform your key belongs to.",
    )
    plan: Annotated[Plan, BeforeValidator(_lower)] = Field(
        "general",
        validation_alias="GLM_PLAN",
        description="`general` (pay-as-you-go) or `coding` (GLM Coding Plan subscription): a key works only on the "
        "endpoint of its plan.",
    )
    base_url_override: str = Field(
        "",
        validation_alias="GLM_BASE_URL",
        description="Full API base URL, e.g. `https://api.z.ai/api/paas/v4`; when set, region and plan are not used.",
        json_schema_extra=_shown("(from region and plan)"),
    )
    timeout: Seconds = Field(
        300.0,
        validation_alias="GLM_TIMEOUT",
        gt=0,
        description="Seconds to wait for the next bytes from the API, and for any of a streamed answer (keep-alives "
        "do not count), before giving up.",
    )
    connect_timeout: Seconds = Field(
        10.0, validation_alias="GLM_CONNECT_TIMEOUT", gt=0, description="Seconds to wait for a connection to the API."
    )
    call_deadline: Seconds = Field(
        1800.0,
        validation_alias="GLM_CALL_DEADLINE",
        gt=0,
        description="Seconds one upstream call may take in all (waiting its turn, retries, the whole streamed answer, "
        "also in a handed-off job); past it the call fails and its slot is freed, even if the API keeps sending.",
    )
    max_response_bytes: Count = Field(
        16 * 1024 * 1024,
        validation_alias="GLM_MAX_RESPONSE_BYTES",
        ge=1024,
        description="Largest JSON answer read from the API, in bytes after decompression (16 MiB); a larger one fails "
        "the call and its connection is closed.",
    )
    max_answer_chars: Count = Field(
        2_000_000,
        validation_alias="GLM_MAX_ANSWER_CHARS",
        ge=1,
        description="Largest streamed answer, in characters of text, reasoning and tool-call arguments together; past "
        "it the stream is stopped and the call fails (with the text so far).",
    )
    max_retries: Count = Field(
        3,
        validation_alias="GLM_MAX_RETRIES",
        ge=0,
        description="Times a failed request is sent again, for failures a retry can fix (rate limits 1302/1303, "
        "overload 1305, server errors, timeouts); billing, key, quota and bad-request errors are never retried. "
        "0 turns retries off.",
    )
    retry_budget: Seconds = Field(
        60.0,
        validation_alias="GLM_RETRY_BUDGET",
        gt=0,
        description="Seconds all attempts of one call may take together, waits included; no retry starts past it.",
    )
    max_concurrency: Count = Field(
        32,
        validation_alias="GLM_MAX_CONCURRENCY",
        ge=1,
        description="Upstream requests in flight at once (a streamed answer counts until it ends); more calls wait "
        "their turn instead of tripping the platform's concurrency limit. Set it to your account's limit.",
    )
    max_prompt_chars: Count = Field(
        1_000_000,
        validation_alias="GLM_MAX_PROMPT_CHARS",
        ge=1,
        description="Largest input a call may send, in characters of all its messages together (about 4 per "
        "token); larger ones are refused before anything is sent.",
    )

    @model_validator(mode="before")
    @classmethod
    def _name_the_key_variable(cls, data: Any) -> Any:
        """Read from variables, the key came from the first of `API_KEY_VARS` given, as `AliasChoices` takes it
        (`Variables` gives none blank)."""
        if isinstance(data, dict) and "key_source" not in data:
            variable = next((name for name in API_KEY_VARS if name in data), None)
            if variable is not None:
                return {**data, "key_source": variable}
        return data

    @field_validator("base_url_override")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _check_key_for_mode(self) -> Self:
        key = _text(self.api_key)
        if self.auth_mode == "jwt" and key and "." not in key:
            raise ConfigError(
                f"GLM_AUTH_MODE=jwt needs a key of the form <id>.<secret>; the key in {self.key_source} has no '.'"
            )
        return self

    @functools.cached_property
    def credentials(self) -> Credentials | None:
        """The server's GLM key, ready to sign requests; one object for the process (it caches its JWT)."""
        key = _text(self.api_key)
        return Credentials(key, mode=self.auth_mode, source=self.key_source) if key else None

    @property
    def base_url(self) -> str:
        """The API base URL: GLM_BASE_URL, or the endpoint of the region and plan."""
        return self.base_url_override or _HOSTS[self.region] + _PATHS[self.plan]

    @property
    def base_url_from_env(self) -> bool:
        return bool(self.base_url_override)

    @property
    def request_headers(self) -> dict[str, str]:
        """Headers sent with every request: the international platform answers errors in English."""
        return {"Accept-Language": "en-US,en"} if "bigmodel.cn" not in self.base_url else {}


class Models(Group, title="Models"):
    """Models: the ones used when a call names none, the prices `usage` estimates cost with, and the estimated cost
    above which a call asks the user first."""

    default: str = Field(
        DEFAULT_MODEL, validation_alias="GLM_MODEL", min_length=1, description="Model used when a tool call names none."
    )
    vision: str = Field(
        "glm-4.6v",
        validation_alias="GLM_VISION_MODEL",
        min_length=1,
        description="The vision model an image sent to a model that cannot see is refused in favour of (the refusal "
        "names it).",
    )
    image: str = Field(
        "cogview-4",
        validation_alias="GLM_IMAGE_MODEL",
        min_length=1,
        description="Model `generate_image` uses when a call names none (`cogview-4`, `cogview-3-flash`, `glm-image`).",
    )
    video: str = Field(
        "cogvideox-flash",
        validation_alias="GLM_VIDEO_MODEL",
        min_length=1,
        description="Model `generate_video` uses when a call names none (`cogvideox-3`, `cogvideox-flash`, "
        "`viduq1-text`, …).",
    )
    prices: str = Field(
        "",
        validation_alias="GLM_PRICES",
        description="Prices `usage` estimates cost with, overriding the built-in table (docs/usage.md): "
        "`model=input/output` per million tokens, or `model=price` per call (searches, images, videos), "
        "comma-separated, e.g. `glm-4.6=0.6/2.2,cogview-4=0.01`; a model code or family prefix. In the currency you "
        "write them in (the built-in table is USD).",
    )

    confirm_above: Annotated[float | None, BeforeValidator(_off), AfterValidator(_finite_amount)] = Field(
        None,
        validation_alias="GLM_CONFIRM_ABOVE",
        ge=0,
        description="Ask the user before a call whose estimated cost is above this amount, in the price table's "
        "currency (USD for the built-in table; GLM_PRICES's own): a video, an image, a large prompt. The question "
        "names the estimate and what it is based on; the call goes ahead only on yes, and a client that cannot be "
        "asked (no elicitation) gets a refusal saying so. Unset or `off`: nothing is asked. Unpriced models "
        "(docs/usage.md) are never asked about.",
        json_schema_extra=_shown("(off)"),
    )

    @field_validator("prices")
    @classmethod
    def _check_prices(cls, value: str) -> str:
        from glm_mcp.glm.models import parse_prices  # the model table, imported only to check GLM_PRICES

        parse_prices(value)
        return value


class Server(Group, title="The server"):
    """The server: the tools it offers and what it logs."""

    toolsets: Names = Field(
        ("core", "search"),
        validation_alias="GLM_MCP_TOOLSETS",
        description="The toolsets the server offers, comma-separated, or `all`: `core` (chat, web_search_chat, "
        "submit_async, get_result, list_jobs, list_conversations), `search` (web_search, read_url), `images` "
        "(generate_image), `video` (generate_video), `models` (list_models), `usage` (usage), `batch` (batch). Every "
        "tool costs the agent context: offer the ones it needs.",
        json_schema_extra=_shown("(core,search)"),
    )
    log_level: Annotated[LogLevel, BeforeValidator(_upper)] = Field(
        "WARNING",
        validation_alias="GLM_LOG_LEVEL",
        description="Log level of the server's log on stderr (DEBUG, INFO, WARNING, ERROR).",
    )

    @field_validator("toolsets")
    @classmethod
    def _check_toolsets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(name.lower() for name in value)
        if "all" in names:
            return TOOLSETS
        unknown = [name for name in names if name not in TOOLSETS]
        if unknown:
            raise ValueError(f"has unknown toolsets {', '.join(unknown)}; the toolsets are {', '.join(TOOLSETS)}, all")
        return names


class Results(Group, title="Results"):
    """Results: how long a call waits for its answer, and how much of it one result carries."""

    wait_seconds: Seconds = Field(
        45.0,
        validation_alias="GLM_WAIT_SECONDS",
        ge=0,
        description="How long `chat` and `web_search_chat` wait for an answer before handing back a `job_id` (the "
        "generation goes on; `get_result` fetches it). Below the 60 s after which many clients give up. A call's "
        "own `wait_seconds` overrides it.",
    )
    task_threshold_seconds: Seconds = Field(
        5.0,
        validation_alias="GLM_TASK_THRESHOLD_SECONDS",
        ge=0,
        description="For a client that declares the MCP tasks extension on its call: how long `chat`, "
        "`web_search_chat` and `get_result` wait before answering with a task the client polls (the "
        "`tasks/get` result is the tool's own result). Other clients keep `GLM_WAIT_SECONDS`.",
    )
    max_chars: Count = Field(
        20_000,
        validation_alias="GLM_MAX_RESULT_CHARS",
        ge=1000,
        description="Longest answer text one tool result carries (clients cap results: Claude Code at 25,000 tokens); "
        "a longer answer comes as its beginning with a note, and `get_result` with `offset` reads the rest.",
    )
    media_inline: MediaInline = Field(
        "auto",
        validation_alias="GLM_MEDIA_INLINE",
        description="Whether `generate_image` also puts the image itself (base64 image content) in its result. Every "
        "result has the image's URL and a `glm-media://` resource link the client reads when it wants the bytes. "
        "`auto`: only for clients whose protocol has no resource links (before 2025-06-18); `always`: for every "
        "client (the images then stay in the conversation); `never`.",
    )


class Files(Group, title="Files a call sends"):
    """Files: where the `files` argument may read, and how much one call may send."""

    roots: Paths = Field(
        (),
        validation_alias="GLM_FILES_ROOTS",
        description="Directories (absolute, separated by the system's path separator, `:` or `;`) that the `files` "
        "argument may read from. Over stdio they are used when the client declares no roots of its own "
        "(`roots/list`), and without them the server's working directory is; over HTTP `files` is off unless this "
        "is set, since the server's disk is not the caller's.",
        json_schema_extra=_shown("(client roots, else the working directory; none over HTTP)"),
    )
    max_chars: Count = Field(
        200_000,
        validation_alias="GLM_FILES_MAX_CHARS",
        ge=1,
        description="Most characters of text files one call may send through `files`, all files together; more is "
        "refused before anything is sent, naming the file that passed it.",
    )
    max_image_bytes: Count = Field(
        20 * 1024 * 1024,
        validation_alias="GLM_FILES_MAX_IMAGE_BYTES",
        ge=1,
        description="Most bytes of images one call may send through `files`, all images together (20 MiB); each "
        "image must also be within the platform's 5 MB.",
    )

    @field_validator("roots")
    @classmethod
    def _check_roots(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        roots = tuple(root.expanduser() for root in value)
        for root in roots:
            if not root.is_absolute():
                raise ValueError(f"has a directory that is not an absolute path: {str(root)!r}")
        return roots


class Registry(Group, title="Jobs, conversations and saved images"):
    """What is kept: the job registry (jobs, conversations), where it is, and the copies of generated images."""

    data_dir: AbsolutePath = Field(
        default_factory=lambda: user_data_dir(),  # looked up when used, so tests can point it elsewhere
        validation_alias="GLM_DATA_DIR",
        description="Where the job registry (`jobs.sqlite3`) is kept, shared by every glm-mcp process of the user. "
        "By default `$XDG_DATA_HOME/glm-mcp` (`~/.local/share/glm-mcp`) on Linux, `~/Library/Application "
        "Support/glm-mcp` on macOS, `%LOCALAPPDATA%\\glm-mcp` on Windows. An absolute path.",
        json_schema_extra=_shown("(the user data directory)"),
    )
    job_retention_days: Count = Field(
        7,
        validation_alias="GLM_JOB_RETENTION_DAYS",
        ge=1,
        description="Days a finished job stays in the registry (and `list_jobs`, `get_result`) after it ended; "
        "older ones are deleted.",
    )
    conversation_retention_days: Count = Field(
        30,
        validation_alias="GLM_CONVERSATION_RETENTION_DAYS",
        ge=1,
        description="Days a conversation stays in the registry after its last turn; older ones are deleted with "
        "their turns.",
    )
    database_url: str | None = Field(
        None,
        validation_alias="GLM_MCP_DATABASE_URL",
        repr=False,
        description="A PostgreSQL URL (`postgresql://user:password@host:5432/glm_mcp`) for a job registry shared by "
        "several replicas, instead of the SQLite file in `GLM_DATA_DIR`; the schema is created and migrated at start. "
        "Needs `glm-mcp-server[postgres]`.",
        json_schema_extra=_shown("(SQLite in GLM_DATA_DIR)"),
    )
    lease_seconds: Seconds = Field(
        15.0,
        validation_alias="GLM_MCP_LEASE_SECONDS",
        ge=1,
        le=3600,
        description="With `GLM_MCP_DATABASE_URL`: how long a replica's claim on the chats it generates lasts "
        "without renewal (renewed every third of it). The running jobs of a replica silent that long read as "
        "interrupted on every replica.",
    )
    image_dir: AbsolutePath | None = Field(
        None,
        validation_alias="GLM_IMAGE_DIR",
        description="Where `generate_image` saves a copy of each image over stdio (the platform's URLs expire); "
        "by default `images/` in GLM_DATA_DIR. An absolute path. Over HTTP no copy is saved (the server's disk is "
        "not the caller's).",
        json_schema_extra=_shown("(GLM_DATA_DIR/images)"),
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        try:  # what psycopg would trip on later, said now (the value is a secret: never quoted)
            parts = urlsplit(value)
            parts.port  # noqa: B018 - reading it checks it
        except ValueError as exc:
            raise ValueError(f"is not a valid URL ({_without_value(exc)})") from None
        if not parts.hostname and "host=" not in parts.query:
            raise ValueError("names no host (postgresql://user:password@host:5432/database)")
        return value

    @property
    def images_dir(self) -> Path:
        """Where generate_image saves its copies over stdio."""
        return self.image_dir or self.data_dir / "images"


class Http(Group, title="The HTTP server"):
    """The HTTP server: who may call it, from where, and the bounds on its connections."""

    token: str | None = Field(
        None,
        validation_alias="GLM_MCP_HTTP_TOKEN",
        repr=False,
        description="The token HTTP clients must send as `Authorization: Bearer <token>`, at least 16 characters "
        "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'` makes one). Without one the HTTP server "
        "binds only a loopback address. Not used over stdio.",
    )
    token_file: Path | None = Field(
        None,
        validation_alias="GLM_MCP_HTTP_TOKEN_FILE",
        description="A file holding the token (a mounted Kubernetes or Docker secret), instead of "
        "`GLM_MCP_HTTP_TOKEN`.",
        json_schema_extra={FILE_HOLDS: "token"},
    )
    allowed_hosts: Names = Field(
        (),
        validation_alias="GLM_MCP_ALLOWED_HOSTS",
        description="Comma-separated `Host` header values the HTTP server answers besides `127.0.0.1`, `localhost` "
        "and `[::1]`: the names clients reach it by (`mcp.example.com`, `glm-mcp.team.svc`). A name without a port "
        "is allowed on any port. Any other host gets 421 (DNS-rebinding protection, always on).",
        json_schema_extra=_shown("(loopback names only)"),
    )
    allowed_origins: Names = Field(
        (),
        validation_alias="GLM_MCP_ALLOWED_ORIGINS",
        description="Comma-separated browser origins (`https://app.example.com`; `:*` for any port) allowed besides "
        "`http://127.0.0.1`, `http://localhost` and `http://[::1]` on any port. A request from any other `Origin` "
        "gets 403; requests without one (clients that are not browsers) are not affected.",
        json_schema_extra=_shown("(loopback origins only)"),
    )
    stateless: bool = Field(
        True,
        validation_alias="GLM_MCP_STATELESS",
        description="`true`: every HTTP request stands alone, so replicas behind a load balancer need no sticky "
        "sessions. `false` (or `--sessionful`): each client gets an MCP session (`Mcp-Session-Id`) kept by one "
        "process.",
    )
    allow_insecure: bool = Field(
        False,
        validation_alias="GLM_MCP_ALLOW_INSECURE",
        description="`true` (or `--allow-insecure`) lets the HTTP server bind a non-loopback address without a "
        "token: anyone who can reach it then spends your GLM key.",
    )
    allow_client_keys: bool = Field(
        False,
        validation_alias="GLM_MCP_ALLOW_CLIENT_KEYS",
        description="`true` lets HTTP callers send their own GLM key in an `X-GLM-API-Key` header, used for that "
        "request instead of the server's key, never stored or logged. When `false` a request with that header "
        "gets 400.",
    )
    max_body_bytes: Count = Field(
        4 * 1024 * 1024,
        validation_alias="GLM_MCP_MAX_BODY_BYTES",
        ge=1024,
        description="Largest HTTP request body accepted, in bytes (4 MiB); a larger one gets 413.",
    )
    shutdown_grace: Seconds = Field(
        60.0,
        validation_alias="GLM_MCP_SHUTDOWN_GRACE",
        ge=0,
        description="Seconds the HTTP server gives calls in flight to finish after SIGTERM (it stops accepting new "
        "connections at once) before it cancels them and exits.",
    )
    header_timeout: Seconds = Field(
        10.0,
        validation_alias="GLM_MCP_HEADER_TIMEOUT",
        gt=0,
        description="Seconds an HTTP client has to send a request's headers, after connecting or between two requests "
        "on one connection; a socket that sends nothing or trickles its headers is closed then.",
    )
    max_connections: Count = Field(
        4096,
        validation_alias="GLM_MCP_MAX_CONNECTIONS",
        ge=1,
        description="HTTP connections open at once (idle ones included) past which requests other than /healthz and "
        "/readyz are answered 503. At start the open-files limit is raised as far as the system allows; the cap is "
        "lowered to what then fits beside a reserve of a quarter of the limit (at most 256) for the server's own "
        "files.",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if "/" in entry or any(c.isspace() for c in entry):
                raise ValueError(f"has an entry that is not a host: {entry!r}")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if not entry.startswith(("http://", "https://")) or "/" in entry.split("://", 1)[1]:
                raise ValueError(f"has an entry that is not an origin: {entry!r}")
        return value

    @model_validator(mode="after")
    def _check_token(self) -> Self:
        token = self.token
        if token is not None and (
            len(token) < MIN_HTTP_TOKEN_CHARS or not (token.isascii() and token.isprintable()) or " " in token
        ):
            source = "GLM_MCP_HTTP_TOKEN_FILE" if self.token_file else "GLM_MCP_HTTP_TOKEN"
            raise ConfigError(
                f"the token in {source} must be at least {MIN_HTTP_TOKEN_CHARS} ASCII characters without spaces; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self


class SignIn(Group, title="Sign-in"):
    """Sign-in: the OpenID / OAuth 2.1 provider whose access tokens the HTTP server accepts."""

    issuer: str | None = Field(
        None,
        validation_alias="GLM_MCP_OAUTH_ISSUER",
        description="The issuer URL of the organisation's OpenID / OAuth 2.1 provider: the HTTP server then accepts "
        "its access tokens (signature from its JWKS, issuer, audience, expiry, scope), names it in its "
        "protected-resource metadata, and each caller's jobs belong to the token's subject. Needs "
        "`GLM_MCP_OAUTH_AUDIENCE`.",
    )
    audience: str | None = Field(
        None,
        validation_alias="GLM_MCP_OAUTH_AUDIENCE",
        description="The resource URL clients reach the MCP endpoint by (`https://mcp.example.com/mcp`): the `aud` "
        "access tokens must carry, and the `resource` of the protected-resource metadata.",
    )
    scope: str = Field(
        "glm-mcp",
        validation_alias="GLM_MCP_OAUTH_SCOPE",
        description="The scope an access token must grant; a token without it gets 403 `insufficient_scope`. Empty: "
        "none required.",
        json_schema_extra={BLANK_IS_A_VALUE: True},
    )
    jwks_url: str | None = Field(
        None,
        validation_alias="GLM_MCP_OAUTH_JWKS_URL",
        description="Where the provider's signing keys are, when not at the `jwks_uri` of its "
        "`/.well-known/openid-configuration`.",
        json_schema_extra=_shown("(from the issuer's discovery document)"),
    )

    @model_validator(mode="after")
    def _check_pair(self) -> Self:
        if bool(self.issuer) != bool(self.audience):
            raise ConfigError("set GLM_MCP_OAUTH_ISSUER and GLM_MCP_OAUTH_AUDIENCE together")
        return self


# --- the whole ---------------------------------------------------------------------------------------


class Settings(BaseModel):
    """The validated configuration, in groups. `Settings.from_env()` reads it from the environment;
    `Settings(http=Http(...), ...)` builds one from what it is given alone (tests, `replace`), reading nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, defer_build=True)

    upstream: Upstream = Field(default_factory=Upstream)
    models: Models = Field(default_factory=Models)
    server: Server = Field(default_factory=Server)
    results: Results = Field(default_factory=Results)
    files: Files = Field(default_factory=Files)
    registry: Registry = Field(default_factory=Registry)
    http: Http = Field(default_factory=Http)
    signin: SignIn = Field(default_factory=SignIn)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings in `env` (the process environment by default); `ConfigError` names the variable at fault.

        What `Settings.model_validate` of the variables found would make, group by group in the same order (the
        first problem is the same one): a group with none of its variables set is its defaults, unvalidated as
        validation would leave them, so that its validator is not built at start."""
        found = Variables(os.environ if env is None else env)()
        groups: dict[str, Any] = {}
        for name, group in _groups():
            try:
                groups[name] = group.model_validate(found[name]) if name in found else group.model_construct()
            except ValidationError as exc:
                raise _config_error(exc, name) from None
        return cls.model_construct(set(found), **groups)

    def replace(self, **changes: Mapping[str, Any]) -> Self:
        """These settings with `changes` to fields of groups (`replace(http={"stateless": False})`), validated
        again."""
        groups: dict[str, Group] = {name: getattr(self, name) for name in type(self).model_fields}
        for name, fields in changes.items():
            if name not in groups:
                raise ValueError(f"settings have no group {name!r}; the groups are {', '.join(groups)}")
            groups[name] = groups[name].replace(**fields)
        return self.model_validate(groups)  # the groups as they are: no variable is read again


def _groups() -> Iterator[tuple[str, type[Group]]]:
    for name, info in Settings.model_fields.items():
        assert isinstance(info.annotation, type) and issubclass(info.annotation, Group)
        yield name, info.annotation


class Variables:
    """The settings in a mapping of environment variables: each field of each group from the variable(s) its
    `validation_alias` names, stripped. A blank variable counts as unset (but for a field marked
    `BLANK_IS_A_VALUE`); a variable of a field marked `FILE_HOLDS` names a file, read here, whose content is
    the value of the field it names."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def group_values(self, group: type[Group]) -> dict[str, str]:
        """The variables of `group` that are set, by variable name (a group validates by alias)."""
        values: dict[str, str] = {}
        for info in group.model_fields.values():
            variable = next((name for name in _variables(info) if self._is_set(name, info)), None)
            if variable is not None:  # of several (`AliasChoices`), the first one set
                values[variable] = self._environ[variable].strip()
        for info in group.model_fields.values():
            target, variables = _extra(info, FILE_HOLDS), _variables(info)
            if isinstance(target, str) and variables and variables[0] in values:
                file_variable, variable = variables[0], _variables(group.model_fields[target])[0]
                if variable in values:
                    raise ConfigError(f"set {variable} or {file_variable}, not both")
                values[variable] = _read_value_file(file_variable, Path(values[file_variable]))
        return values

    def _is_set(self, variable: str, info: FieldInfo) -> bool:
        value = self._environ.get(variable)
        return value is not None and bool(value.strip() or _extra(info, BLANK_IS_A_VALUE))

    def __call__(self) -> dict[str, Any]:
        """The groups that have a variable set, each as its variables: what `Settings` validates."""
        found: dict[str, Any] = {}
        for name, group in _groups():
            values = self.group_values(group)
            if values:
                found[name] = values
        return found


def _read_value_file(variable: str, path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"names a file that cannot be read: {str(path)!r} ({exc})"
        raise ConfigError(f"{variable} {problem}", variable=variable, problem=problem) from None
    if not value:
        problem = f"names an empty file: {str(path)!r}"
        raise ConfigError(f"{variable} {problem}", variable=variable, problem=problem)
    return value


def _without_value(exc: ValueError) -> str:
    """What urllib found wrong, without the part of the URL it quotes."""
    message = str(exc)
    return message.split(" as ", 1)[0] if " as " in message else message


def _config_error(exc: ValidationError, group_name: str) -> ConfigError:
    """The first problem of `exc`, raised by the group `group_name`, as a `ConfigError` naming the variable; a
    secret's value (a field with `repr=False`) is never quoted."""
    error = exc.errors(include_url=False)[0]
    if isinstance(error.get("ctx", {}).get("error"), ConfigError):
        return error["ctx"]["error"]  # type: ignore[no-any-return]
    location = str(error["loc"][0]) if error["loc"] else ""
    fields = dict(_groups())[group_name].model_fields
    info = next((info for name, info in fields.items() if location in (name, *_variables(info))), None)
    if info is None:
        return ConfigError(f"{location or group_name}: {error['msg']}")
    variable = location if location in _variables(info) else next(iter(_variables(info)), location)
    message = str(error["msg"]).removeprefix("Value error, ")
    problem = message if not info.repr else f"{message}; got {error.get('input')!r}"
    return ConfigError(f"{variable}: {problem}", variable=variable, problem=problem)


def _variables(info: FieldInfo) -> tuple[str, ...]:
    alias = info.validation_alias
    if isinstance(alias, str):
        return (alias,)
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return ()


def _extra(info: FieldInfo, key: str) -> object:
    return info.json_schema_extra.get(key) if isinstance(info.json_schema_extra, dict) else None


# --- the documentation's facts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One documented variable: its name, its default as the docs show it, what it means, the group it belongs to
    (the title of its table) and where `Settings` holds its value (`"http.stateless"`)."""

    name: str
    default: str
    meaning: str
    group: str
    setting: str


def _shown_default(info: FieldInfo) -> str:
    shown = _extra(info, _SHOWN_DEFAULT)
    if isinstance(shown, str):
        return shown
    value = info.default
    if value is None or value == ():
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


ENV_VARS: tuple[EnvVar, ...] = tuple(
    EnvVar(
        _variables(info)[0],
        _shown_default(info),
        info.description or "",
        group.model_config.get("title") or group_name,
        f"{group_name}.{field_name}",
    )
    for group_name, group in _groups()
    for field_name, info in group.model_fields.items()
    if _variables(info)
)
"""Every variable the server reads, group by group, in the order docs/configuration.md lists them."""
