"""`digitrec learn`: fine-tune a model on what people told the page, promote it only if every
gate holds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from digitrec.cli import options
from digitrec.config import get_settings

DEFAULT_CHECKPOINT_DIR = Path("models")  # the checkout's trained files: models/NAME.pt


@click.command()
@click.option("--model", "name", default="default", show_default=True)
@click.option("--min-feedback", default=50, show_default=True, help="Labelled rows needed.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the verdict, its reasons and both models' metrics here as JSON.",
)
@click.option("--dry-run", is_flag=True, help="A few batches; checks the run, registers nothing.")
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The champion's weights when the registry holds none (default: models/NAME.pt).",
)
@click.option(
    "--drawn",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A pen-drawn set (JSON lines of strokes): both models are measured on it too.",
)
@click.option("--max-steps", type=int, default=None, help="Fine-tune steps per member at most.")
def learn(
    name: str,
    min_feedback: int,
    report: Path | None,
    dry_run: bool,
    checkpoint: Path | None,
    drawn: Path | None,
    max_steps: int | None,
) -> None:
    """Fine-tune NAME's champion on the labelled predictions; promote only if every gate holds.

    Sessions are split, never rows: a fifth of them (by a hash of the session id) are held out
    to judge the candidate. Gates: MNIST test drops by at most 0.1 point; accuracy on the
    held-out sessions does not fall; their calibration error rises by at most 0.5 point; at
    least --min-feedback labelled rows. A model that says "not a digit" has its detector tuned
    too, on the candidate's features, from the training sessions' digits and the drawings they
    said are not a digit; it adds gates: MNIST test refused rises by at most 0.1 point; 1,000
    made-up not-digits refused fall by at most 2 points; the held-out sessions' digits are
    refused no more, and their "not a digit" drawings no less. Exits 0 whether or not it
    promoted.

    \b
    Example:
      digitrec learn --model default --report learn.json
    """
    from digitrec.finetuning import FineTuneConfig
    from digitrec.gating import DRAWN_DEV, comparison_table
    from digitrec.learner import run_learning
    from digitrec.rendering import drawn_digits
    from digitrec.storage import create_engine_from_url, upgrade

    mnist = options.mnist(None)
    settings = get_settings()
    url = settings.resolved_database_url
    upgrade(url)
    engine = create_engine_from_url(url)
    config = FineTuneConfig(dry_run=dry_run)
    if max_steps is not None:
        config = replace(config, max_steps=max_steps)
    extra = {DRAWN_DEV: drawn_digits(drawn)} if drawn else None
    try:
        outcome = run_learning(
            engine,
            name,
            mnist,
            config=config,
            min_feedback=min_feedback,
            checkpoint=checkpoint or DEFAULT_CHECKPOINT_DIR / f"{name}.pt",
            extra=extra,
        )
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    if outcome["metrics"]:
        click.echo(
            comparison_table(outcome["metrics"]["champion"], outcome["metrics"]["candidate"])
        )
    for reason in outcome["reasons"]:
        click.echo(f"  {reason}")
    verdict = "promoted" if outcome["promoted"] else "not promoted"
    click.echo(
        f"{name}: candidate version {outcome['candidate_version'] or '-'} {verdict} "
        f"(champion was version {outcome['champion_version']})"
        + (" [dry run: nothing registered]" if dry_run else "")
    )
    if report is not None:
        report.write_text(json.dumps(outcome, indent=2, default=str))
