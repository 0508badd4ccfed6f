"""The GitHub Actions workflows pass actionlint, and deploy only what CI passed on main."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _tool(name: str) -> str:
    """A linter installed by the dev dependencies, beside this Python or on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it comes with the dev dependencies)")
    return found


def _workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return loaded


def test_workflows_pass_actionlint() -> None:
    # shellcheck (also a dev dependency) lets actionlint check the `run:` scripts too.
    env = {
        **os.environ,
        "PATH": f"{Path(_tool('shellcheck')).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        [_tool("actionlint"), "-no-color"], cwd=ROOT, capture_output=True, text=True, env=env
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_script_passes_shellcheck() -> None:
    result = subprocess.run(
        [_tool("shellcheck"), "deploy/deploy.sh"], cwd=ROOT, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout


def test_workflows_pin_every_action_to_a_commit() -> None:
    # A tag can be moved to other code; a commit cannot. The comment keeps the version legible
    # (and lets Dependabot update both).
    for path in sorted(WORKFLOWS.glob("*.yml")):
        uses = re.findall(r"^\s*-?\s*uses:\s*(.+)$", path.read_text(), re.M)
        assert uses, path.name
        for use in uses:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*", use), (
                f"{path.name}: {use}"
            )


def test_ci_runs_the_makefile_targets_with_postgres() -> None:
    jobs = _workflow("ci.yml")["jobs"]
    commands = [step.get("run", "") for job in jobs.values() for step in job["steps"]]

    assert "make lint" in commands and "make test" in commands
    test_job = jobs["test"]
    assert test_job["services"]["postgres"]["image"] == "postgres:16"
    assert test_job["env"]["DIGITREC_TEST_POSTGRES_URL"].startswith("postgresql+psycopg://")
    assert any("apt-get install -y chromium" in command for command in commands)


def test_deploy_runs_only_after_ci_succeeded_on_main() -> None:
    workflow = _workflow("deploy.yml")
    trigger = workflow[True]["workflow_run"]  # YAML 1.1 reads the key `on` as True

    assert trigger == {"workflows": ["CI"], "types": ["completed"], "branches": ["main"]}
    job = workflow["jobs"]["deploy"]
    assert "github.event.workflow_run.conclusion == 'success'" in job["if"]
    script = " ".join(step.get("run", "") for step in job["steps"])
    assert "deploy/deploy.sh" in script
    for secret in ("VPS_HOST", "VPS_USER", "VPS_SSH_KEY"):
        assert f"secrets.{secret}" in (WORKFLOWS / "deploy.yml").read_text()
