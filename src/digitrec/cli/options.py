"""Options and helpers that several `digitrec` commands share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from digitrec.config import get_settings
from digitrec.inference import MODEL_NAMES, Predictor, UnknownModelError, load_predictor

if TYPE_CHECKING:
    from digitrec.data import Mnist

cache_option = click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where MNIST is cached (default: DIGITREC_DATA_DIR/mnist).",
)
model_option = click.option(
    "--model",
    "name",
    default="default",
    show_default=True,
    help=f"One of {', '.join(MODEL_NAMES)}.",
)
model_dir_option = click.option(
    "--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None
)
out_dir_option = click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The folder of NAME.pt and NAME.onnx (default: DIGITREC_DATA_DIR/models).",
)
into_package_option = click.option(
    "--into-package",
    is_flag=True,
    help="Developers, in a source checkout: the shipped models/NAME.pt and packaged NAME.onnx.",
)


def mnist_cache(cache_dir: Path | None) -> Path:
    """Where MNIST is cached: `--cache-dir`, else DIGITREC_DATA_DIR/mnist."""
    return cache_dir or get_settings().data_dir / "mnist"


def mnist(cache_dir: Path | None) -> Mnist:
    """MNIST from its cache; no cache yet is a usage error that says what to run, not a
    traceback."""
    from digitrec.data import DataUnavailableError, load_mnist

    try:
        return load_mnist(mnist_cache(cache_dir))
    except DataUnavailableError as exc:
        raise click.ClickException(str(exc)) from exc


def predictor(name: str, model_dir: Path | None) -> Predictor:
    """The named model's predictor; an unknown name is a usage error, not a traceback."""
    try:
        return load_predictor(name, model_dir)
    except UnknownModelError as exc:
        raise click.ClickException(str(exc)) from exc
