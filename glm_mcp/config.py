"""Every setting, read from the environment once at start-up and validated there.

`ENV_VARS` is the single list of variables: the README table, the manifests and `doctor` are
checked against it by the tests, so a variable cannot be added without being documented.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from glm_mcp.glm.auth import AuthMode, Credentials

_T = TypeVar("_T", bound=str)

Region = Literal["international", "mainland"]
Plan = Literal["general", "coding"]

_HOSTS: dict[Region, str] = {"international": "https://api.z.ai", "mainland": "https://open.bigmodel.cn"}
_PATHS: dict[Plan, str] = {"general": "/api/paas/v4", "coding": "/api/coding/paas/v4"}
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
    EnvVar("GLM_LOG_LEVEL", "WARNING", "Log level of the server's log on stderr (DEBUG, INFO, WARNING, ERROR)."),
)

DEFAULT_MODEL = "glm-4.6"


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
    log_level: str = "WARNING"

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
            log_level=reader.choice("GLM_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "WARNING", upper=True),
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
