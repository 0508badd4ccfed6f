"""docker-compose.yaml, .env.example, the Dockerfile and deploy/: valid, and keeping the
deployment rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from digitrec.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
REQUIRED_SECRETS = ("POSTGRES_PASSWORD", "PGADMIN_EMAIL", "PGADMIN_PASSWORD")
# Started by `docker compose up`; the learner (profile `learn`) only runs when asked.
LONG_RUNNING = {"app", "api", "db", "pgadmin", "proxy"}
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


def _env_file_without(tmp_path: Path, names: set[str]) -> Path:
    """A filled-in .env that doesn't set `names` at all (one written before they existed)."""
    path = _env_file(tmp_path, FILLED)
    kept = [line for line in path.read_text().splitlines() if line.split("=", 1)[0] not in names]
    path.write_text("\n".join(kept) + "\n")
    return path


def _published_addresses(resolved: dict[str, Any]) -> dict[str, set[str]]:
    """Host addresses of every published port, by service, from a resolved compose file."""
    addresses: dict[str, set[str]] = {}
    for name, service in resolved["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):  # compose v2: the long form
                address = port.get("host_ip", "0.0.0.0")
            else:  # compose v1: "127.0.0.1:8000:8000/tcp"; no address means every one
                parts = str(port).split(":")
                address = parts[0] if len(parts) == 3 else "0.0.0.0"
            addresses.setdefault(name, set()).add(address)
    return addresses


def _compose_config(env_file: Path, *options: str) -> subprocess.CompletedProcess[str]:
    # A bare environment: nothing from the developer's shell fills a variable in.
    env = {"PATH": os.environ["PATH"], "HOME": str(env_file.parent)}
    command = [*_compose_command(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE)]
    command += options
    return subprocess.run(
        [*command, "config"], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def test_compose_config_is_valid_with_a_filled_env(tmp_path: Path) -> None:
    result = _compose_config(_env_file(tmp_path, FILLED), "--profile", "learn")

    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == LONG_RUNNING | {"learner"}
    # The learner learns from the database the api logs to.
    for name in ("api", "learner"):
        url = services[name]["environment"]["DIGITREC_DATABASE_URL"]
        assert url == "postgresql+psycopg://digitrec:s3cret@db:5432/digitrec", name


@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_compose_refuses_to_start_without_a_secret(tmp_path: Path, missing: str) -> None:
    values = {name: value for name, value in FILLED.items() if name != missing}

    result = _compose_config(_env_file(tmp_path, values))

    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stdout + result.stderr


def test_compose_has_the_five_services_started_in_health_order(compose: dict[str, Any]) -> None:
    services = {
        name: service for name, service in compose["services"].items() if "profiles" not in service
    }

    assert set(services) == LONG_RUNNING
    order = {"proxy": "api", "app": "proxy", "pgadmin": "db"}
    for service, dependency in order.items():
        assert services[service]["depends_on"] == {dependency: {"condition": "service_healthy"}}
    # The api starts while the database is down (its writes wait in the outbox), so neither
    # an outage nor a deployment during one is held up by the database's health.
    assert services["api"]["depends_on"] == {"db": {"condition": "service_started"}}
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
    # The page uses the proxy's internal listener, the one without per-address limits.
    assert compose["services"]["app"]["environment"]["DIGITREC_API_URL"] == "http://proxy:8080"
    proxy_conf = (ROOT / "deploy/nginx/api.conf").read_text()
    assert re.search(r"server api:8000 resolve;", proxy_conf)


def test_compose_publishes_on_loopback_unless_told(tmp_path: Path) -> None:
    unset = _compose_config(_env_file_without(tmp_path, {"DIGITREC_API_BIND", "DIGITREC_APP_BIND"}))
    (tmp_path / "told").mkdir()
    told = _compose_config(_env_file(tmp_path / "told", {**FILLED, "DIGITREC_API_BIND": "0.0.0.0"}))

    assert unset.returncode == 0, unset.stderr
    assert _published_addresses(yaml.safe_load(unset.stdout)) == {
        "proxy": {"127.0.0.1"},
        "app": {"127.0.0.1"},
        "pgadmin": {"127.0.0.1"},
    }
    assert told.returncode == 0, told.stderr
    assert _published_addresses(yaml.safe_load(told.stdout))["proxy"] == {"0.0.0.0"}


def test_compose_proxy_publishes_only_its_rate_limited_listener(compose: dict[str, Any]) -> None:
    ports = compose["services"]["proxy"]["ports"]

    assert [str(port).rsplit(":", 1)[-1] for port in ports] == ["8000"]


def test_compose_runs_the_servers_under_an_init(compose: dict[str, Any]) -> None:
    # `digitrec serve`, `digitrec app` and `digitrec learn` are not written to be PID 1: tini
    # forwards SIGTERM and reaps the exited uvicorn workers.
    for name in ("api", "app", "learner"):
        assert compose["services"][name]["init"] is True, name


def test_compose_learner_runs_only_when_asked_from_its_own_image(compose: dict[str, Any]) -> None:
    learner, api = compose["services"]["learner"], compose["services"]["api"]

    # Not started by `docker compose up`: `docker compose --profile learn run --rm learner`.
    assert learner["profiles"] == ["learn"]
    assert learner["build"] == {"context": ".", "target": "learner"}
    assert learner["image"].startswith("digitrec-learner:")
    assert learner.get("restart", "no") == "no"
    # A batch job: nothing listens, nothing is published.
    assert "ports" not in learner and "expose" not in learner
    environment = learner["environment"]
    assert environment["DIGITREC_DATABASE_URL"] == api["environment"]["DIGITREC_DATABASE_URL"]
    # No database, nothing to learn from: it waits for the database's health, not its start.
    assert learner["depends_on"] == {"db": {"condition": "service_healthy"}}
    # MNIST, fetched once into the image's DIGITREC_DATA_DIR and kept between runs.
    assert "learner-data:/data" in learner["volumes"]
    assert "learner-data" in compose["volumes"]


def test_proxy_limits_requests_per_client_and_says_when_to_retry() -> None:
    conf = (ROOT / "deploy/nginx/api.conf").read_text()
    zones = dict(
        re.findall(r"limit_req_zone \$binary_remote_addr zone=(\w+):\d+m rate=(\d+r/s);", conf)
    )
    edge, internal = re.split(r"^server \{$", conf, flags=re.M)[1:]

    assert zones == {"predict": "10r/s", "reads": "30r/s"}
    assert "limit_req_status 429;" in conf
    assert re.search(r"location = /predict \{[^}]*limit_req zone=predict burst=20 nodelay;", edge)
    compare = r"location = /predict/compare \{[^}]*limit_req zone=predict burst=20 nodelay;"
    assert re.search(compare, edge)
    assert re.search(r"location / \{[^}]*limit_req zone=reads burst=60 nodelay;", edge)
    assert "error_page 429 @rate_limited;" in edge
    handler = edge.split("location @rate_limited {", 1)[1].split("}", 1)[0]
    assert "add_header Retry-After 1 always;" in handler
    assert "return 429" in handler
    # The page's listener is not limited: all its visitors share the app container's address.
    assert "listen 8000;" in edge and "listen 8080;" in internal
    assert "limit_req" not in internal


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


def test_kubernetes_probes_ask_liveness_and_readiness_apart() -> None:
    deployment = next(yaml.safe_load_all((ROOT / "deploy/k8s/api.yaml").read_text()))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    startup, liveness, readiness = (
        container[probe] for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    )

    # Liveness only asks whether the process answers: a database outage restarts nothing.
    assert liveness["httpGet"]["path"] == "/health"
    assert startup["httpGet"]["path"] == "/health"
    # Readiness asks whether the pod can take predictions (200 while the outbox has room).
    assert readiness["httpGet"]["path"] == "/ready"
    # /ready answers within 1 s; the probes leave it twice that.
    assert readiness["timeoutSeconds"] >= 2 and liveness["timeoutSeconds"] >= 2
    # Liveness gives up later than readiness: a slow pod leaves the Service before a restart.
    assert (
        liveness["periodSeconds"] * liveness["failureThreshold"]
        > readiness["periodSeconds"] * readiness["failureThreshold"]
    )


@dataclass(frozen=True)
class Stage:
    """One `FROM parent AS name` stage of the Dockerfile."""

    parent: str  # an image, or an earlier stage's name
    instructions: list[str]  # one a line, continuations joined, comments left out


def _dockerfile_stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name."""
    text = re.sub(r"\s*\\\n\s*", " ", DOCKERFILE.read_text())
    stages: dict[str, Stage] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if found := re.fullmatch(r"FROM (\S+) AS (\S+)", line):
            stages[found[2]] = Stage(found[1], [])
        elif stages:
            stages[list(stages)[-1]].instructions.append(line)
    return stages


def _lineage(stages: dict[str, Stage], target: str) -> list[Stage]:
    """`target` and the stages it is built FROM, the first one first."""
    chain = [stages[target]]
    while chain[0].parent in stages:
        chain.insert(0, stages[chain[0].parent])
    return chain


def _pip_installs(stages: dict[str, Stage], target: str) -> list[str]:
    """Every `pip install` whose result is in `target`: its own, and those of stages it copies."""
    installs = []
    for stage in _lineage(stages, target):
        for instruction in stage.instructions:
            if copied := re.match(r"COPY --from=(\S+) ", instruction):
                installs += _pip_installs(stages, copied[1])
            elif "pip install" in instruction:
                installs.append(instruction)
    return installs


def test_dockerfile_images_run_as_non_root_from_python_slim() -> None:
    dockerfile = DOCKERFILE.read_text()
    stages = _dockerfile_stages()

    assert re.search(
        r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M
    )
    assert {"api", "app", "learner"} <= set(stages)
    for target in ("api", "app", "learner"):
        instructions = [line for stage in _lineage(stages, target) for line in stage.instructions]
        users = [line for line in instructions if line.startswith("USER ")]
        assert users[-1] == "USER 10001:10001", target
    assert dockerfile.count("HEALTHCHECK") == 2  # api and app; the learner is a batch job


def test_dockerfile_serving_images_get_no_torch_and_the_learner_its_cpu_build() -> None:
    stages = _dockerfile_stages()
    package = "RUN /opt/venv/bin/pip install --no-deps ."

    # The serving lock (no torch: tests/unit/test_lock.py), then the package without extras.
    for target in ("api", "app"):
        assert _pip_installs(stages, target) == [
            "RUN /opt/venv/bin/pip install --require-hashes -r requirements/serve.txt",
            package,
        ], target
    # The learning lock (serving + train, torch==2.13.0+cpu), from PyTorch's CPU index too.
    assert _pip_installs(stages, "learner") == [
        "RUN /opt/venv/bin/pip install --require-hashes -r requirements/learn.txt"
        " --extra-index-url https://download.pytorch.org/whl/cpu",
        package,
    ]


def test_dockerfile_learner_runs_digitrec_learn_by_default() -> None:
    stages = _dockerfile_stages()
    learner = stages["learner"].instructions

    assert 'ENTRYPOINT ["digitrec"]' in learner
    assert 'CMD ["learn", "--model", "default"]' in learner
    assert not [instruction for instruction in learner if instruction.startswith("EXPOSE")]
    # MNIST goes into DIGITREC_DATA_DIR/mnist: the folder compose and Kubernetes mount.
    base = _lineage(stages, "learner")[0].instructions
    assert any("DIGITREC_DATA_DIR=/data" in instruction for instruction in base)
    # The shipped champions' weights, in models/ of the working directory (where `learn`
    # looks): the registry's first versions have only their ONNX files to start from.
    assert "COPY models/*.pt ./models/" in learner
    lines = [line for stage in _lineage(stages, "learner") for line in stage.instructions]
    assert [line for line in lines if line.startswith("WORKDIR ")][-1] == "WORKDIR /home/digitrec"
    assert "!models/*.pt" in (ROOT / ".dockerignore").read_text().splitlines()
    assert (ROOT / "models" / "default.pt").is_file()


def _kubernetes(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / name).read_text()))


def _env(container: dict[str, Any], name: str) -> dict[str, Any]:
    return next(variable for variable in container["env"] if variable["name"] == name)


def test_kubernetes_learner_is_a_nightly_cronjob_one_run_at_a_time() -> None:
    claim, cronjob = _kubernetes("learner.yaml")
    spec = cronjob["spec"]
    job = spec["jobTemplate"]["spec"]
    pod = job["template"]["spec"]

    assert (claim["kind"], cronjob["kind"]) == ("PersistentVolumeClaim", "CronJob")
    minute, hour, *every_day = spec["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and every_day == ["*", "*", "*"]
    assert spec["concurrencyPolicy"] == "Forbid"
    # A failed run is retried once at most, then waits; finished Jobs are cleaned up.
    assert 0 <= job["backoffLimit"] <= 2
    assert job["ttlSecondsAfterFinished"] > 0 and job["activeDeadlineSeconds"] > 0
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    (init,), (learner,) = pod["initContainers"], pod["containers"]
    assert init["args"] == ["data"]  # MNIST onto the volume, a no-op once there
    assert learner["args"] == ["learn", "--model", "default"]
    for container in (init, learner):
        assert container["image"].endswith("/digitrec-learner:latest")
        assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    claim_name = volumes["data"]["persistentVolumeClaim"]["claimName"]
    assert claim_name == claim["metadata"]["name"]


def test_kubernetes_learner_uses_the_api_secret_two_cpus_and_3_gib() -> None:
    api = _kubernetes("api.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    cronjob = _kubernetes("learner.yaml")[1]
    (learner,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]

    assert _env(learner, "DIGITREC_DATABASE_URL") == _env(api, "DIGITREC_DATABASE_URL")
    two_cpus = {"cpu": "2", "memory": "3Gi"}  # bench/learn_time.py: 1.9 GiB at its peak
    assert learner["resources"] == {"requests": two_cpus, "limits": two_cpus}
    # torch would size its thread pool by the node's cores; the limit decides instead.
    threads = _env(learner, "OMP_NUM_THREADS")["valueFrom"]["resourceFieldRef"]
    assert threads["resource"] == "limits.cpu"
