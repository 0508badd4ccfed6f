"""docker-compose.yaml, .env.example and deploy/: valid, and keeping the deployment rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from digitrec.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
REQUIRED_SECRETS = ("POSTGRES_PASSWORD", "PGADMIN_EMAIL", "PGADMIN_PASSWORD")
FILLED = {"POSTGRES_PASSWORD": "s3cret", "PGADMIN_EMAIL": "a@example.com", "PGADMIN_PASSWORD": "x"}


def _compose_command() -> list[str]:
    """Debian's docker-compose (v1) or the docker compose plugin (v2), whichever is here."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    pytest.fail("neither docker-compose nor `docker compose` is installed")


def _env_file(tmp_path: Path, values: dict[str, str]) -> Path:
    """.env.example with `values` filled in, as a deployer's .env."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={values[name]}" if name in values else line)
    path = tmp_path / "env"
    path.write_text("\n".join(lines) + "\n")
    return path


def _compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    # A bare environment: nothing from the developer's shell fills a variable in.
    env = {"PATH": os.environ["PATH"], "HOME": str(env_file.parent)}
    command = [*_compose_command(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE)]
    return subprocess.run(
        [*command, "config"], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def test_compose_config_is_valid_with_a_filled_env(tmp_path: Path) -> None:
    result = _compose_config(_env_file(tmp_path, FILLED))

    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    url = resolved["services"]["api"]["environment"]["DIGITREC_DATABASE_URL"]
    assert url == "postgresql+psycopg://digitrec:s3cret@db:5432/digitrec"


@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_compose_refuses_to_start_without_a_secret(tmp_path: Path, missing: str) -> None:
    values = {name: value for name, value in FILLED.items() if name != missing}

    result = _compose_config(_env_file(tmp_path, values))

    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stdout + result.stderr


def test_compose_has_the_five_services_started_in_health_order(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert set(services) == {"app", "api", "db", "pgadmin", "proxy"}
    order = {"api": "db", "proxy": "api", "app": "proxy", "pgadmin": "db"}
    for service, dependency in order.items():
        assert services[service]["depends_on"] == {dependency: {"condition": "service_healthy"}}
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
    # api and app have theirs in the Dockerfile.
    assert "healthcheck" in services["db"] and "healthcheck" in services["proxy"]


def test_compose_database_is_not_published_and_checked_with_its_own_user(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]

    assert "ports" not in db
    assert db["image"].startswith("postgres:16")
    assert "pgdata:/var/lib/postgresql/data" in db["volumes"]
    assert "./db:/docker-entrypoint-initdb.d:ro" in db["volumes"]
    check = " ".join(db["healthcheck"]["test"])
    assert "pg_isready" in check and "$${POSTGRES_USER}" in check and "$${POSTGRES_DB}" in check
    assert (ROOT / "db").is_dir()


def test_compose_pgadmin_listens_on_loopback_only_with_a_login(compose: dict[str, Any]) -> None:
    pgadmin = compose["services"]["pgadmin"]

    assert all(str(port).startswith("127.0.0.1:") for port in pgadmin["ports"])
    assert pgadmin["environment"]["PGADMIN_CONFIG_SERVER_MODE"] == "True"
    assert "pgadmin-data:/var/lib/pgadmin" in pgadmin["volumes"]
    servers = json.loads((ROOT / "deploy/pgadmin/servers.json").read_text())["Servers"]
    assert [server["Host"] for server in servers.values()] == ["db"]


def test_compose_passwords_have_no_default(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text()

    for secret in REQUIRED_SECRETS:
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses, secret
        assert all(use.startswith(":?") for use in uses), (secret, uses)


def test_compose_api_can_scale_behind_the_proxy(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]

    assert "container_name" not in api and "ports" not in api
    assert compose["services"]["app"]["environment"]["DIGITREC_API_URL"] == "http://proxy:8000"
    proxy_conf = (ROOT / "deploy/nginx/api.conf").read_text()
    assert re.search(r"server api:8000 resolve;", proxy_conf)


def test_env_example_documents_every_variable_once(compose: dict[str, Any]) -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    documented = [
        re.sub(r"^# ", "", line).split("=", 1)[0]
        for line in lines
        if re.match(r"^(# )?[A-Z][A-Z0-9_]*=", line)
    ]
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    settings = {f"DIGITREC_{name.upper()}" for name in Settings.model_fields}

    assert len(documented) == len(set(documented))
    assert used <= set(documented)
    assert settings <= set(documented)
    variable = re.compile(r"^(# )?[A-Z][A-Z0-9_]*=")
    for index, line in enumerate(lines):  # each variable has its one line of explanation
        if variable.match(line):
            assert lines[index - 1].startswith("# ") and not variable.match(lines[index - 1])
    for secret in REQUIRED_SECRETS:  # shipped empty: a copied .env fails until filled in
        assert f"{secret}=" in lines


def test_kubernetes_manifest_has_deployment_service_and_autoscaler() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy/k8s/api.yaml").read_text()))

    assert [d["kind"] for d in documents] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    container = documents[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"


def test_dockerfile_runs_as_non_root_without_torch() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert re.search(
        r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M
    )
    assert {"api", "app"} <= set(re.findall(r"^FROM \S+ AS (\w+)", dockerfile, re.M))
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert dockerfile.count("HEALTHCHECK") == 2
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs == ["RUN /opt/venv/bin/pip install ."]  # no [train] extra, no torch
