"""`digitrec train`, `detector`, `export` and `evaluate`: make a model and measure it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from digitrec.cli import options
from digitrec.config import get_settings
from digitrec.inference import shipped_model_dir


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


@click.command()
@options.model_option
@click.option("--epochs", type=int, default=None, help="Override the recipe's epochs.")
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None, help="Learning rate (peak, for one-cycle).")
@click.option("--seed", type=int, default=None)
@click.option("--dry-run", is_flag=True, help="Train on a few batches only: checks the pipeline.")
@options.out_dir_option
@options.into_package_option
@options.cache_option
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
    from digitrec.export import export_onnx, parity_gap
    from digitrec.training import RECIPES, fit

    if name not in RECIPES:
        raise click.BadParameter(f"choose from {', '.join(RECIPES)}", param_hint="--model")
    checkpoint_dir, onnx_dir = _model_dirs(out_dir, into_package)
    overrides: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
    config = replace(
        RECIPES[name], dry_run=dry_run, **{k: v for k, v in overrides.items() if v is not None}
    )
    cache = options.mnist_cache(cache_dir)
    mnist = options.mnist(cache_dir)
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


@click.command()
@options.model_option
@click.option(
    "--letters",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Pen-drawn letters (JSON lines with strokes and writer) to learn from, split by writer.",
)
@click.option(
    "--dry-run", is_flag=True, help="A few hundred images of each kind: checks the pipeline."
)
@options.out_dir_option
@options.into_package_option
@options.cache_option
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
    cache = options.mnist_cache(cache_dir)
    mnist = options.mnist(cache_dir)
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


@click.command()
@options.model_option
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Default: NAME.pt in --out-dir (models/NAME.pt with --into-package).",
)
@options.out_dir_option
@options.into_package_option
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


@click.command()
@options.model_option
@options.model_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@options.cache_option
def evaluate(name: str, model_dir: Path | None, as_json: bool, cache_dir: Path | None) -> None:
    """Measure a shipped model on the MNIST test set: accuracy, confusion, ECE, latency.

    \b
    Example:
      digitrec evaluate --model default
    """
    from digitrec.evaluation import evaluate_predictor

    test_x, test_y = options.mnist(cache_dir).split("test")
    metrics = evaluate_predictor(options.predictor(name, model_dir), test_x, test_y)
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
