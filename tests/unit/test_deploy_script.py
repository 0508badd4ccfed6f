"""deploy/deploy.sh keeps a healthy release through a database outage, rolls back a broken one.

The script runs for real under bash; `git`, `docker` and `curl` are stand-ins on PATH that
record their calls and answer as the scenario says (no Docker, no network).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_SCRIPT = ROOT / "deploy" / "deploy.sh"
PREVIOUS_COMMIT = "1" * 40
NEW_COMMIT = "2" * 40

FAKE_GIT = f"""#!/usr/bin/env bash
printf 'git %s\\n' "$*" >> "$CALLS"
if [[ $1 == rev-parse ]]; then echo {PREVIOUS_COMMIT}; fi
"""

FAKE_DOCKER = """#!/usr/bin/env bash
printf 'docker %s\\n' "$*" >> "$CALLS"
if [[ $1 == compose && $2 == up && " $* " == *" --build "* ]]; then exit "$FAKE_COMPOSE_UP_RC"; fi
if [[ $1 == compose && " $* " == *" build learner "* ]]; then exit "$FAKE_LEARNER_BUILD_RC"; fi
"""
LEARNER_BUILD = "docker compose --profile learn build learner"

# `curl ... URL`: /health and /ready as the scenario says; --fail turns a status >= 400 into
# exit 22, as curl does; a release that is down refuses the connection (exit 7).
FAKE_CURL = """#!/usr/bin/env bash
printf 'curl %s\\n' "$*" >> "$CALLS"
url="${*: -1}"
[[ $FAKE_UP == 1 ]] || exit 7
case "$url" in
    */health) status=200; body='{"status":"ok"}' ;;
    */ready) status="$FAKE_READY_STATUS"; body="$FAKE_READY_BODY" ;;
    *) exit 99 ;;
esac
if [[ " $* " == *" --fail "* ]] && ((status >= 400)); then exit 22; fi
printf '%s' "$body"
"""


@dataclass(frozen=True)
class Release:
    """How the new release answers once `docker compose up` has run."""

    up: bool = True
    ready_status: int = 200
    ready_body: str = '{"model":true,"database":true}'
    compose_up_rc: int = 0
    learner_build_rc: int = 0


@dataclass(frozen=True)
class Deployment:
    returncode: int
    output: str
    calls: list[str]


def _deploy(tmp_path: Path, release: Release, env_file: str | None = None) -> Deployment:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"git": FAKE_GIT, "docker": FAKE_DOCKER, "curl": FAKE_CURL}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    if env_file is not None:
        (app_dir / ".env").write_text(env_file)
    calls = tmp_path / "calls"
    calls.touch()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(calls),
        "HEALTHY_TIMEOUT_S": "1",
        "POLL_INTERVAL_S": "0.1",
        "FAKE_UP": "1" if release.up else "0",
        "FAKE_READY_STATUS": str(release.ready_status),
        "FAKE_READY_BODY": release.ready_body,
        "FAKE_COMPOSE_UP_RC": str(release.compose_up_rc),
        "FAKE_LEARNER_BUILD_RC": str(release.learner_build_rc),
    }
    result = subprocess.run(
        ["bash", str(DEPLOY_SCRIPT), str(app_dir), NEW_COMMIT],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    output = result.stdout + result.stderr
    return Deployment(result.returncode, output, calls.read_text().splitlines())


def _rolled_back(deployment: Deployment) -> bool:
    return f"git reset --hard {PREVIOUS_COMMIT}" in deployment.calls


@pytest.mark.parametrize(
    "release",
    [
        # The outbox has room: /ready says so with 200.
        Release(ready_body='{"model":true,"database":false,"outbox":{"pending":3}}'),
        # The outbox is full too: /ready is 503, but the release itself is fine.
        Release(ready_status=503, ready_body='{"model": true, "database": false}'),
    ],
    ids=["outbox-has-room", "outbox-full"],
)
def test_deploy_keeps_a_healthy_release_while_the_database_is_down(
    tmp_path: Path, release: Release
) -> None:
    deployment = _deploy(tmp_path, release)

    assert deployment.returncode == 0, deployment.output
    assert not _rolled_back(deployment)
    assert f"git merge --ff-only {NEW_COMMIT}" in deployment.calls
    assert "the database does not answer" in deployment.output


def test_deploy_keeps_a_healthy_release_quietly_when_the_database_answers(tmp_path: Path) -> None:
    deployment = _deploy(tmp_path, Release())

    assert deployment.returncode == 0, deployment.output
    assert not _rolled_back(deployment)
    assert "the database does not answer" not in deployment.output
    assert "docker tag digitrec-api:latest digitrec-api:rollback" in deployment.calls
    # `up` leaves the learner (profile `learn`) alone: its image is built from the same commit.
    assert LEARNER_BUILD in deployment.calls


def test_deploy_keeps_a_healthy_release_when_the_learner_does_not_build(tmp_path: Path) -> None:
    deployment = _deploy(tmp_path, Release(learner_build_rc=1))

    assert deployment.returncode == 0, deployment.output
    assert not _rolled_back(deployment)
    assert "the learner image did not build" in deployment.output


@pytest.mark.parametrize(
    "release",
    [
        Release(ready_status=503, ready_body='{"model":false,"database":true}'),
        Release(up=False),
        Release(compose_up_rc=1),
    ],
    ids=["model-not-loaded", "not-answering", "compose-failed"],
)
def test_deploy_rolls_back_a_release_that_is_not_healthy(tmp_path: Path, release: Release) -> None:
    deployment = _deploy(tmp_path, release)

    assert deployment.returncode == 1, deployment.output
    assert _rolled_back(deployment)
    for image in ("digitrec-api", "digitrec-app"):
        assert f"docker tag {image}:rollback {image}:latest" in deployment.calls
    assert "docker compose up -d --no-build --remove-orphans" in deployment.calls
    assert LEARNER_BUILD not in deployment.calls  # the learner keeps the image that works


def test_deploy_asks_the_port_and_address_that_env_publishes(tmp_path: Path) -> None:
    env_file = "DIGITREC_API_BIND=0.0.0.0\nAPI_PORT=8123\nDIGITREC_IMAGE_TAG=v7\n"

    deployment = _deploy(tmp_path, Release(), env_file)

    assert deployment.returncode == 0, deployment.output
    assert any(call.endswith(" http://127.0.0.1:8123/health") for call in deployment.calls)
    assert "docker tag digitrec-api:v7 digitrec-api:rollback" in deployment.calls
