"""Settings come from the environment, are validated once, and name the variable at fault."""

from __future__ import annotations

import pytest

from glm_mcp.config import ENV_VARS, ConfigError, Settings


def test_defaults_are_the_international_general_endpoint() -> None:
    settings = Settings.from_env({})
    assert settings.credentials is None
    assert settings.base_url == "https://api.z.ai/api/paas/v4"
    assert settings.default_model == "glm-4.6"
    assert settings.request_headers == {"Accept-Language": "en-US,en"}


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
    assert Settings.from_env({"GLM_REGION": region, "GLM_PLAN": plan}).base_url == url


def test_base_url_wins_over_region_and_plan() -> None:
    settings = Settings.from_env({"GLM_BASE_URL": "http://127.0.0.1:8765/api/paas/v4/", "GLM_REGION": "mainland"})
    assert settings.base_url == "http://127.0.0.1:8765/api/paas/v4"
    assert settings.base_url_from_env


def test_key_variables_in_order_of_precedence() -> None:
    both = Settings.from_env({"ZHIPUAI_API_KEY": "b.zhipu", "ZAI_API_KEY": "a.zai"})
    assert both.credentials is not None and both.credentials.source == "ZAI_API_KEY"
    ours = Settings.from_env({"GLM_API_KEY": "c.ours", "ZAI_API_KEY": "a.zai"})
    assert ours.credentials is not None and ours.credentials.source == "GLM_API_KEY"
    blank = Settings.from_env({"GLM_API_KEY": "  ", "ZHIPUAI_API_KEY": "b.zhipu"})
    assert blank.credentials is not None and blank.credentials.source == "ZHIPUAI_API_KEY"


def test_the_key_never_shows_in_a_repr() -> None:
    settings = Settings.from_env({"GLM_API_KEY": "myid.supersecretvalue"})
    assert "supersecretvalue" not in repr(settings) and "supersecretvalue" not in str(settings.credentials)


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
        ({"GLM_AUTH_MODE": "jwt", "GLM_API_KEY": "nodot"}, "GLM_AUTH_MODE"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_every_variable_the_code_reads_is_in_the_documented_list() -> None:
    import pathlib
    import re

    package = pathlib.Path(__file__).resolve().parents[1] / "glm_mcp"
    source = "".join(p.read_text() for p in package.rglob("*.py") if "emulator" not in p.parts)
    read = set(re.findall(r'"((?:GLM|ZAI|ZHIPUAI)_[A-Z_]+)"', source))
    documented = {v.name for v in ENV_VARS} | {"ZAI_API_KEY", "ZHIPUAI_API_KEY"}
    assert read <= documented, read - documented


def test_the_readme_documents_every_variable_with_its_default() -> None:
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    for variable in ENV_VARS:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{variable.name}` |")), None)
        assert row is not None, f"{variable.name} is missing from the README's table"
        assert variable.default.strip("()") in row, f"the README gives {variable.name} another default"
