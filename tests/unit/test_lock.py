"""requirements/*.txt lock every dependency of pyproject.toml, with hashes (`make lock`).

serve.txt is the api and app images' (no torch), learn.txt the learner image's (serving plus the
train extra), dev.txt make's and CI's (everything).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
SERVE_LOCK = ROOT / "requirements" / "serve.txt"
LEARN_LOCK = ROOT / "requirements" / "learn.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def _pins(lock: Path) -> dict[str, tuple[Version, int]]:
    """Package name -> (pinned version, number of hashes), for every pin in a lock file."""
    pins: dict[str, tuple[Version, int]] = {}
    # One entry per unindented line: the pin, then its hashes and `# via` notes indented.
    for entry in re.split(r"\n(?=\S)", lock.read_text()):
        found = PIN.match(entry)
        if found:
            name, version = found.groups()
            pins[canonicalize_name(name)] = (Version(version), len(HASH.findall(entry)))
    return pins


def _hashes(lock: Path) -> dict[str, set[str]]:
    """Package name -> its hashes, for every pin in a lock file."""
    entries = re.split(r"\n(?=\S)", lock.read_text())
    return {
        canonicalize_name(found.group(1)): set(HASH.findall(entry))
        for entry in entries
        if (found := PIN.match(entry))
    }


def _requirements(*groups: str) -> list[Requirement]:
    """pyproject.toml's requirements: `dependencies`, or the named optional groups."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"]) if not groups else []
    for group in groups:
        texts += project["optional-dependencies"][group]
    requirements = [Requirement(text) for text in texts]
    # The dev extra names the project itself (`digitrec[train]`): not a dependency to lock.
    return [r for r in requirements if canonicalize_name(r.name) != project["name"]]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        (SERVE_LOCK, _requirements()),
        (LEARN_LOCK, _requirements() + _requirements("train")),
        (DEV_LOCK, _requirements() + _requirements("train", "dev")),
    ],
    ids=["serve", "learn", "dev"],
)
def test_lock_pins_every_pyproject_dependency(lock: Path, requirements: list[Requirement]) -> None:
    pins = _pins(lock)

    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from {lock.name}: run `make lock`"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock.name} pins {name}=={version}, outside {requirement}: run `make lock`"
        )


@pytest.mark.parametrize("lock", [SERVE_LOCK, LEARN_LOCK, DEV_LOCK], ids=["serve", "learn", "dev"])
def test_lock_has_a_hash_for_every_pin(lock: Path) -> None:
    pins = _pins(lock)

    assert pins
    assert [name for name, (_, hashes) in pins.items() if hashes == 0] == []


def test_lock_serving_pins_agree_with_dev_and_leave_torch_out() -> None:
    serve, dev = _pins(SERVE_LOCK), _pins(DEV_LOCK)

    assert {name: serve[name][0] for name in serve} == {name: dev[name][0] for name in serve}
    assert "torch" not in serve


def test_lock_learning_pins_are_serving_plus_train_as_in_dev() -> None:
    serve, learn, dev = _pins(SERVE_LOCK), _pins(LEARN_LOCK), _pins(DEV_LOCK)
    learn_hashes, dev_hashes = _hashes(LEARN_LOCK), _hashes(DEV_LOCK)

    # Everything the api serves with, at the same versions: the learner's candidate is
    # exported and checked by the same ONNX Runtime the api will load it with.
    assert set(serve) <= set(learn)
    assert {name: learn[name][0] for name in serve} == {name: serve[name][0] for name in serve}
    # The same versions and files as make and CI install, hash for hash.
    pinned = {name: (learn[name][0], learn_hashes[name]) for name in learn}
    assert pinned == {
        name: (dev[name][0], dev_hashes[name]) if name in dev else None for name in learn
    }
    # None of the developers' tools that serving and training don't pull in themselves.
    dev_only = {canonicalize_name(r.name) for r in _requirements("dev")} - set(serve)
    assert dev_only and not dev_only & set(learn)


@pytest.mark.parametrize("lock", [LEARN_LOCK, DEV_LOCK], ids=["learn", "dev"])
def test_lock_pins_torch_as_its_cpu_build(lock: Path) -> None:
    pins = _pins(lock)

    assert pins["torch"][0] == Version("2.13.0+cpu")
    # A CUDA build would drag these in, several GB of them.
    assert not [name for name in pins if name.startswith(("nvidia-", "triton"))]


def test_lock_is_what_the_image_the_makefile_and_ci_install() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()

    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()

    assert "pip install --require-hashes -r requirements/serve.txt" in dockerfile
    assert "pip install --require-hashes -r requirements/learn.txt" in dockerfile
    assert {"!requirements/serve.txt", "!requirements/learn.txt"} <= set(dockerignore)
    assert "pip install --quiet -r requirements/dev.txt" in makefile
    assert "pip install --quiet -r requirements/serve.txt" in makefile
    assert re.search(r"^lock:", makefile, re.M)
    # CI installs through the Makefile; its pip cache follows the lock files.
    assert "make lint" in ci and "make test" in ci
    assert "cache-dependency-path: requirements/*.txt" in ci
