"""The deployment files in manifests/deploy/ against the server itself.

Docker and Kubernetes do not run here, so the files are read: the container must run the real
command with arguments the real parser accepts, listen on the port it exposes, be probed on the
real health paths, and name only variables the server reads, with the secrets from a Secret.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from glm_mcp.cli import DEFAULT_HTTP_PORT, _parser
from glm_mcp.config import ENV_VARS, Settings
from glm_mcp.server.http import HEALTH_PATH, READY_PATH

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "manifests" / "deploy"
COMMAND = next(
    name
    for name, target in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"].items()
    if target == "glm_mcp.cli:main"
)
VARIABLES = {variable.name for variable in ENV_VARS}
SECRET_VARIABLES = {"GLM_API_KEY", "GLM_MCP_HTTP_TOKEN", "GLM_MCP_DATABASE_URL"}


def _check_serve_arguments(arguments: list[str]) -> None:
    """The arguments, as the real parser reads them: stateless Streamable HTTP on every interface."""
    args = _parser().parse_args(arguments)
    assert (args.transport, args.host, args.port, args.stateless) == ("http", "0.0.0.0", DEFAULT_HTTP_PORT, True)


# --- the container image --------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _one(instruction: str) -> str:
    (value,) = [value for name, value in _instructions() if name == instruction]
    return value


def test_the_image_runs_the_real_command_stateless_on_the_exposed_port() -> None:
    assert json.loads(_one("ENTRYPOINT")) == [COMMAND]
    _check_serve_arguments(json.loads(_one("CMD")))
    assert _one("EXPOSE") == str(DEFAULT_HTTP_PORT)


def test_the_image_checks_its_health_on_the_real_path_and_port() -> None:
    assert f"127.0.0.1:{DEFAULT_HTTP_PORT}{HEALTH_PATH}" in _one("HEALTHCHECK")


def test_the_image_runs_as_an_unprivileged_user() -> None:
    assert _one("USER") not in ("root", "0")


def test_the_image_installs_the_checkout_with_pip() -> None:
    copied = [value.split()[:-1] for name, value in _instructions() if name == "COPY"]
    for sources in copied:
        for source in sources:
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the checkout"
    assert any(name == "RUN" and "pip install ." in value for name, value in _instructions())
    assert any(name == "RUN" and "pip install .[postgres]" in value for name, value in _instructions())


def test_the_image_sets_only_variables_the_server_reads() -> None:
    env = " ".join(value for name, value in _instructions() if name == "ENV")
    named = set(re.findall(r"\b(GLM_[A-Z_]+)=", env))
    assert named and named <= VARIABLES, named - VARIABLES
    assert Settings.from_env(dict(re.findall(r"\b(GLM_[A-Z_]+)=(\S+)", env))).http.stateless


# --- Kubernetes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kinds() -> dict[str, dict[str, Any]]:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()))
    return {document["kind"]: document for document in documents}


@pytest.fixture(scope="module")
def container(kinds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_the_deployment_runs_stateless_replicas_of_the_real_command(
    kinds: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    assert kinds["Deployment"]["spec"]["replicas"] == 3  # one service on a shared registry (GLM_MCP_DATABASE_URL)
    _check_serve_arguments(container["args"])
    assert [port["containerPort"] for port in container["ports"]] == [DEFAULT_HTTP_PORT]


def test_the_probes_ask_the_real_paths_on_the_served_port(container: dict[str, Any]) -> None:
    (port_name,) = [port["name"] for port in container["ports"]]
    assert container["readinessProbe"]["httpGet"] == {"path": READY_PATH, "port": port_name}
    assert container["livenessProbe"]["httpGet"] == {"path": HEALTH_PATH, "port": port_name}


def test_the_key_and_the_token_come_from_a_secret_and_every_variable_is_real(container: dict[str, Any]) -> None:
    env = {item["name"]: item for item in container["env"]}
    assert set(env) <= VARIABLES, set(env) - VARIABLES
    for name in SECRET_VARIABLES:
        assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["key"], name
    plain = {name: item["value"] for name, item in env.items() if "value" in item}
    Settings.from_env(plain)  # the plain values are ones the server accepts


def test_the_pod_outlives_the_shutdown_grace(kinds: dict[str, dict[str, Any]], container: dict[str, Any]) -> None:
    plain = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    grace = Settings.from_env(plain).http.shutdown_grace
    pause = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert kinds["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > pause + grace


def test_the_service_reaches_the_pods_on_the_served_port(
    kinds: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    service = kinds["Service"]["spec"]
    labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert kinds["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (port,) = service["ports"]
    assert port["port"] == DEFAULT_HTTP_PORT and port["targetPort"] in {p["name"] for p in container["ports"]}


def test_the_commented_provider_settings_are_real_and_go_together() -> None:
    text = (DEPLOY / "kubernetes.yaml").read_text()
    names = re.findall(r"#\s+- name: (GLM_[A-Z_]+)\n\s+#\s+value: \"([^\"]+)\"", text)
    assert {name for name, _ in names} == {"GLM_MCP_OAUTH_ISSUER", "GLM_MCP_OAUTH_AUDIENCE", "GLM_MCP_OAUTH_SCOPE"}
    assert {name for name, _ in names} <= VARIABLES
    assert Settings.from_env(dict(names)).signin.issuer  # uncommented, the server accepts them
