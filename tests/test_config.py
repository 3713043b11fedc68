"""Settings come from the environment, are validated once, and name the variable at fault."""

from __future__ import annotations

import importlib.util
import pathlib
from importlib.machinery import SourceFileLoader
from types import ModuleType

import pytest
from pydantic import ValidationError

from glm_mcp import config
from glm_mcp.config import ENV_VARS, ConfigError, Http, Settings, Variables

ROOT = pathlib.Path(__file__).resolve().parents[1]


def sync_manifests() -> ModuleType:
    """scripts/sync-manifests, which writes the settings tables of docs/configuration.md, as a module."""
    loader = SourceFileLoader("sync_manifests", str(ROOT / "scripts" / "sync-manifests"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_defaults_are_the_international_general_endpoint() -> None:
    settings = Settings.from_env({})
    assert settings.upstream.credentials is None
    assert settings.upstream.base_url == "https://api.z.ai/api/paas/v4"
    assert settings.models.default == "glm-4.6"
    assert settings.upstream.request_headers == {"Accept-Language": "en-US,en"}


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"GLM_API_KEY": "key.secret", "GLM_DATA_DIR": "/srv/glm-mcp"},
        {"ZAI_API_KEY": "a.zai", "GLM_MCP_TOOLSETS": "all", "GLM_WAIT_SECONDS": "3", "GLM_MCP_OAUTH_SCOPE": ""},
        {"GLM_MCP_OAUTH_ISSUER": "https://id.example.com", "GLM_MCP_OAUTH_AUDIENCE": "https://mcp.example.com/mcp"},
    ],
)
def test_from_env_is_every_group_validated_from_the_variables(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`from_env` validates only the groups it has variables for and takes the others' defaults as they are (their
    validators are not built at start): the same settings as validating the whole from what `Variables` found."""
    monkeypatch.setattr(config, "user_data_dir", lambda: pathlib.Path("/home/user/.local/share/glm-mcp"))
    whole = Settings.model_validate(Variables(env)())
    settings = Settings.from_env(env)
    assert settings == whole and settings.model_fields_set == whole.model_fields_set
    assert all(type(getattr(settings, name)) is type(getattr(whole, name)) for name in Settings.model_fields)


def test_the_first_variable_at_fault_is_named_as_whole_validation_finds_it() -> None:
    with pytest.raises(ValidationError) as whole:
        Settings.model_validate(Variables(env := {"GLM_WAIT_SECONDS": "soon", "GLM_TIMEOUT": "0"})())
    assert whole.value.errors()[0]["loc"] == ("upstream", "GLM_TIMEOUT")
    with pytest.raises(ConfigError, match=r"^GLM_TIMEOUT: Input should be greater than 0; got '0'$"):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match=r"^set GLM_MCP_OAUTH_ISSUER and GLM_MCP_OAUTH_AUDIENCE together$"):
        Settings.from_env({"GLM_MCP_OAUTH_ISSUER": "https://id.example.com"})


@pytest.mark.parametrize(
    ("region", "plan", "url"),
    [
        ("international", "general", "https://api.z.ai/api/paas/v4"),
        ("international", "coding", "https://api.z.ai/api/coding/paas/v4"),
        ("mainland", "general", "https://open.bigmodel.cn/api/paas/v4"),
        ("MAINLAND", "Coding", "https://open.bigmodel.cn/api/coding/paas/v4"),
    ],
)
def test_region_and_plan_pick_the_documented_base_url(region: str, plan: str, url: str) -> None:
    assert Settings.from_env({"GLM_REGION": region, "GLM_PLAN": plan}).upstream.base_url == url


def test_base_url_wins_over_region_and_plan() -> None:
    settings = Settings.from_env({"GLM_BASE_URL": "http://127.0.0.1:8765/api/paas/v4/", "GLM_REGION": "mainland"})
    assert settings.upstream.base_url == "http://127.0.0.1:8765/api/paas/v4"
    assert settings.upstream.base_url_from_env


def test_key_variables_in_order_of_precedence() -> None:
    both = Settings.from_env({"ZHIPUAI_API_KEY": "b.zhipu", "ZAI_API_KEY": "a.zai"})
    assert both.upstream.credentials is not None and both.upstream.credentials.source == "ZAI_API_KEY"
    ours = Settings.from_env({"GLM_API_KEY": "c.ours", "ZAI_API_KEY": "a.zai"})
    assert ours.upstream.credentials is not None and ours.upstream.credentials.source == "GLM_API_KEY"
    blank = Settings.from_env({"GLM_API_KEY": "  ", "ZHIPUAI_API_KEY": "b.zhipu"})
    assert blank.upstream.credentials is not None and blank.upstream.credentials.source == "ZHIPUAI_API_KEY"


def test_the_key_never_shows_in_a_repr() -> None:
    settings = Settings.from_env({"GLM_API_KEY": "myid.supersecretvalue"})
    assert "supersecretvalue" not in repr(settings) and "supersecretvalue" not in str(settings.upstream.credentials)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GLM_REGION": "moon"}, "GLM_REGION"),
        ({"GLM_PLAN": "gold"}, "GLM_PLAN"),
        ({"GLM_AUTH_MODE": "basic"}, "GLM_AUTH_MODE"),
        ({"GLM_TIMEOUT": "soon"}, "GLM_TIMEOUT"),
        ({"GLM_CONNECT_TIMEOUT": "-1"}, "GLM_CONNECT_TIMEOUT"),
        ({"GLM_BASE_URL": "api.z.ai"}, "GLM_BASE_URL"),
        ({"GLM_LOG_LEVEL": "LOUD"}, "GLM_LOG_LEVEL"),
        ({"GLM_WAIT_SECONDS": "inf"}, "GLM_WAIT_SECONDS"),
        ({"GLM_MAX_CONCURRENCY": "0"}, "GLM_MAX_CONCURRENCY"),
        ({"GLM_MCP_STATELESS": "maybe"}, "GLM_MCP_STATELESS"),
        ({"GLM_MCP_ALLOWED_ORIGINS": "app.example.com"}, "GLM_MCP_ALLOWED_ORIGINS"),
        ({"GLM_DATA_DIR": "relative/dir"}, "GLM_DATA_DIR"),
        ({"GLM_AUTH_MODE": "jwt", "GLM_API_KEY": "nodot"}, "GLM_AUTH_MODE"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_every_variable_the_code_reads_is_in_the_documented_list() -> None:
    import re

    package = ROOT / "glm_mcp"
    source = "".join(p.read_text() for p in package.rglob("*.py") if "emulator" not in p.parts)
    read = set(re.findall(r'"((?:GLM|ZAI|ZHIPUAI)_[A-Z_]+)"', source))
    documented = {v.name for v in ENV_VARS} | {"ZAI_API_KEY", "ZHIPUAI_API_KEY"}
    assert read <= documented, read - documented


def test_the_configuration_page_table_is_the_declared_settings() -> None:
    """The table is written from the declarations (scripts/sync-manifests); a default or a meaning changed in
    code and not in docs/configuration.md, or the other way round, fails here."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    table = sync_manifests().settings_table()
    assert table in page, "the settings table of docs/configuration.md is stale: run `python scripts/sync-manifests`"
    for variable in ENV_VARS:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{variable.name}` |"))
        assert variable.default.strip("()") in row


def test_each_documented_default_is_the_default_the_server_uses() -> None:
    """What `from_env({})` yields is what ENV_VARS (and so docs/configuration.md and the manifests) shows."""
    settings = Settings.from_env({})
    for variable in ENV_VARS:
        if variable.default.startswith("("):
            continue
        group, name = variable.setting.split(".")
        value = getattr(getattr(settings, group), name)
        shown = ("true" if value else "false") if isinstance(value, bool) else str(value).removesuffix(".0")
        assert shown == variable.default, name


def test_an_empty_variable_counts_as_unset() -> None:
    settings = Settings.from_env({"GLM_WAIT_SECONDS": "", "GLM_MODEL": "  ", "GLM_REGION": ""})
    assert (settings.results.wait_seconds, settings.upstream.region) == (45.0, "international")


def test_values_are_read_as_people_write_them() -> None:
    settings = Settings.from_env(
        {
            "GLM_MAX_PROMPT_CHARS": "1_000",
            "GLM_MCP_ALLOWED_HOSTS": " a.example.com, ,b.example.com:8443 ",
            "GLM_MCP_STATELESS": "off",
            "GLM_LOG_LEVEL": "debug",
            "GLM_AUTH_MODE": "JWT",
        }
    )
    assert settings.upstream.max_prompt_chars == 1000
    assert settings.http.allowed_hosts == ("a.example.com", "b.example.com:8443")
    assert (settings.http.stateless, settings.server.log_level, settings.upstream.auth_mode) == (False, "DEBUG", "jwt")


def test_the_developers_own_environment_never_reaches_settings_built_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLM_API_KEY", "dev.ownkey")
    monkeypatch.setenv("GLM_WAIT_SECONDS", "3")
    assert Settings().upstream.credentials is None and Settings().results.wait_seconds == 45.0
    assert Settings.from_env().results.wait_seconds == 3.0


def test_replace_validates_again() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        Settings().replace(upstream={"timeout": 0})
    assert Settings().replace(http={"allow_insecure": True}).http.allow_insecure


def test_a_secret_is_never_quoted_in_a_configuration_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"GLM_MCP_HTTP_TOKEN": "tooshort-secret"})
    assert "tooshort-secret" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://glm:s3cret-pw@db:port/glm_mcp",
        "postgresql://glm:s3cret-pw@db:99999/glm_mcp",
        "postgresql://glm:s3cret-pw@[::1/glm_mcp",
        "postgresql://glm:s3cret-pw@/glm_mcp",
    ],
)
def test_a_malformed_database_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"GLM_MCP_DATABASE_URL": url})
    assert str(caught.value).startswith("GLM_MCP_DATABASE_URL: ") and "s3cret-pw" not in str(caught.value)


def test_replace_refuses_a_group_or_a_field_that_does_not_exist() -> None:
    with pytest.raises(ValueError, match="no group 'htp'"):
        Settings().replace(htp={"stateless": False})
    with pytest.raises(ValidationError, match="stateles"):
        Settings().replace(http={"stateles": False})


def test_settings_and_their_groups_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.http = Http()  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        settings.http.stateless = False  # type: ignore[misc]


def test_validation_reads_no_file(tmp_path: pathlib.Path) -> None:
    """The token file is read where the variables are read (`from_env`), never while validating: settings built
    from values alone touch no disk, and the token comes only from what the variables name."""
    missing = tmp_path / "not-there"
    assert Settings(http=Http(token_file=missing)).http.token is None
    with pytest.raises(ConfigError, match="GLM_MCP_HTTP_TOKEN_FILE names a file that cannot be read"):
        Settings.from_env({"GLM_MCP_HTTP_TOKEN_FILE": str(missing)})


def test_the_settings_are_listed_group_by_group() -> None:
    """One table a group, under the group's title, each variable in the table of the group that holds it."""
    listed: dict[str, list[str]] = {}
    title = "(no title)"
    for line in sync_manifests().settings_table().splitlines():
        if line.startswith("**"):
            title = line.strip("*")
        elif line.startswith("| `"):
            listed.setdefault(title, []).append(line.split("`")[1])
    declared: dict[str, list[str]] = {}
    for variable in ENV_VARS:
        declared.setdefault(variable.group, []).append(variable.name)
    assert listed == declared and len(listed) == len(Settings.model_fields)


def test_an_empty_scope_is_a_value_not_unset() -> None:
    """GLM_MCP_OAUTH_SCOPE set empty means no scope required, unlike every other variable set empty."""
    assert Settings.from_env({"GLM_MCP_OAUTH_SCOPE": ""}).signin.scope == ""
    assert Settings.from_env({}).signin.scope == "glm-mcp"
