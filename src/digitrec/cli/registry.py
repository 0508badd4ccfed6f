"""`digitrec models`: the model registry from the command line (list, promote, roll back)."""

from __future__ import annotations

import getpass
from typing import Any

import click

from digitrec.config import get_settings


def _engine() -> Any:
    from digitrec.storage import create_engine_from_url, upgrade

    url = get_settings().resolved_database_url
    upgrade(url)
    return create_engine_from_url(url)


def _operator() -> str:
    try:
        return f"{getpass.getuser()} (digitrec models)"
    except (KeyError, OSError):
        return "digitrec models"


def _mnist_accuracy(metrics: dict[str, Any]) -> str:
    from digitrec.evaluation import MNIST_TEST
    from digitrec.insights import accuracies

    value = accuracies(metrics).get(MNIST_TEST)
    return f"{value:.2%}" if isinstance(value, int | float) else "-"


@click.group()
def models() -> None:
    """The model registry: every version, which one serves, promotion and rollback."""


@models.command("list")
@click.argument("name", required=False)
def list_models(name: str | None) -> None:
    """Every version (of NAME), newest first, with its standing and MNIST test accuracy.

    \b
    Example:
      digitrec models list default
    """
    from digitrec.storage.registry import list_versions

    engine = _engine()
    try:
        rows = list_versions(engine, name)
    finally:
        engine.dispose()
    if not rows:
        raise click.ClickException("no versions registered yet (the service registers its models)")
    click.echo(f"{'model':10} {'ver':>3} {'parent':>6} {'status':9} {'MNIST':>7}  changed, by, why")
    for row in rows:
        parent = "-" if row.parent_version is None else str(row.parent_version)
        changed = row.status_changed_at.strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"{row.name:10} {row.version:>3} {parent:>6} {row.status:9} "
            f"{_mnist_accuracy(row.metrics):>7}  {changed}, {row.status_by}: "
            f"{row.status_reason}"
        )


@models.command()
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", default="promoted by hand", show_default=True)
def promote(name: str, version: int, reason: str) -> None:
    """Serve VERSION of NAME from now on (every replica within a few seconds).

    The version's ONNX bytes are checked against their digest and loaded first: a file that
    does not load is never promoted.

    \b
    Example:
      digitrec models promote default 3 --reason "gates held; checked by hand"
    """
    from digitrec.contract import UnknownModelError
    from digitrec.inference import Predictor
    from digitrec.storage.registry import fetch_onnx
    from digitrec.storage.registry import promote as promote_version

    engine = _engine()
    try:
        Predictor(fetch_onnx(engine, name, version), name, version=version)
        promote_version(engine, name, version, by=_operator(), reason=reason)
    except UnknownModelError as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:  # a corrupt or unloadable file: the champion stays
        raise click.ClickException(f"{name} version {version} cannot be served: {exc}") from exc
    finally:
        engine.dispose()
    click.echo(f"{name} version {version} is the champion")


@models.command()
@click.argument("name")
@click.option("--reason", default="rolled back by hand", show_default=True)
def rollback(name: str, reason: str) -> None:
    """Serve the previous champion of NAME again; the current one is marked rejected.

    \b
    Example:
      digitrec models rollback default --reason "worse on the page than in the gates"
    """
    from digitrec.contract import UnknownModelError
    from digitrec.storage.registry import rollback as rollback_version

    engine = _engine()
    try:
        version = rollback_version(engine, name, by=_operator(), reason=reason)
    except UnknownModelError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    click.echo(f"{name} version {version} is the champion again")
