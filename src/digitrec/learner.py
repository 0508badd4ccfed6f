"""One learning run against the shared database: the labelled rows and the champion go in; a
candidate comes out, registered, and promoted only if every gate held.

The torch side (split, weights, fine-tune, gates) is `learning.learn`; this module reads the
log and the registry, exports the candidate to ONNX and records the verdict.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from digitrec.checkpoints import checkpoint_bytes, load_checkpoint
from digitrec.contract import UnknownModelError
from digitrec.data import Mnist
from digitrec.export import export_onnx, parity_gap
from digitrec.feedback import NO_DIGIT, LabelledRow
from digitrec.finetuning import FineTuneConfig
from digitrec.gating import Datasets, learning_report
from digitrec.learning import LearnOutcome, learn
from digitrec.storage.registry import (
    CANDIDATE,
    REJECTED,
    champions,
    fetch_checkpoint,
    fetch_onnx,
    promote,
    register_version,
    set_status,
)
from digitrec.storage.reports import labelled_predictions
from digitrec.training import TrainResult

logger = logging.getLogger(__name__)

LEARNER = "digitrec learn"
# Torch and ONNX Runtime logits of the same weights differ by float noise only.
MAX_PARITY_GAP = 1e-3
PARITY_DIGITS = 256


@dataclass(frozen=True)
class Champion:
    """The serving version of a model and its trainable weights."""

    version: int
    result: TrainResult


def labelled_rows(engine: Engine) -> list[LabelledRow]:
    """Every labelled prediction in the log."""
    return [
        LabelledRow(
            session_id=row.session_id,
            image_png=bytes(row.image_png),
            predicted=NO_DIGIT if row.prediction is None else int(row.prediction),
            actual=None if row.actual is None else int(row.actual),
            feedback_at=row.feedback_at,
            refused=row.is_digit is False,
        )
        for row in labelled_predictions(engine)
    ]


def load_champion(engine: Engine, name: str, mnist: Mnist, checkpoint: Path | None) -> Champion:
    """The champion's weights: from the registry, or from `checkpoint` if it holds none, as
    long as that file computes what the served champion computes."""
    ref = champions(engine).get(name)
    if ref is None:
        raise UnknownModelError(f"{name} has no champion in the registry")
    weights: bytes | Path | None = fetch_checkpoint(engine, name, ref.version)
    if weights is None and checkpoint is not None and checkpoint.is_file():
        weights = checkpoint
    if weights is None:
        raise UnknownModelError(
            f"{name} version {ref.version} has no weights to fine-tune: pass --checkpoint"
        )
    result = load_checkpoint(weights)
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = Path(folder) / f"{name}.onnx"
        onnx_path.write_bytes(fetch_onnx(engine, name, ref.version))
        images = mnist.split("test")[0][:PARITY_DIGITS].astype(np.float32) / 255
        gap = parity_gap(result, onnx_path, images)
    if gap > MAX_PARITY_GAP:
        raise ValueError(
            f"the checkpoint is not {name} version {ref.version} (logits differ by {gap:.3g})"
        )
    return Champion(ref.version, result)


def run_learning(
    engine: Engine,
    name: str,
    mnist: Mnist,
    *,
    config: FineTuneConfig,
    min_feedback: int,
    checkpoint: Path | None = None,
    extra: Datasets | None = None,
) -> dict[str, Any]:
    """Fine-tune `name`'s champion on the labelled rows, gate it, and (unless a dry run)
    register the candidate and promote or reject it. Returns the report."""
    rows = labelled_rows(engine)
    champion = load_champion(engine, name, mnist, checkpoint)
    labelled = sum(row.actual is not None for row in rows)  # with a digit
    if labelled < min_feedback:
        return {
            "promoted": False,
            "champion_version": champion.version,
            "candidate_version": None,
            "metrics": {},
            "reasons": [f"labelled rows: {labelled}, fewer than {min_feedback}: fail"],
        }
    outcome = learn(champion.result, rows, mnist, config, extra, min_feedback)
    candidate_version = None if config.dry_run else _record(engine, name, champion, outcome, rows)
    report = learning_report(
        outcome.verdict,
        outcome.champion_metrics,
        outcome.candidate_metrics,
        str(champion.version),
        None if candidate_version is None else str(candidate_version),
    )
    return {**report, "champion_version": champion.version, "candidate_version": candidate_version}


def _record(
    engine: Engine, name: str, champion: Champion, outcome: LearnOutcome, rows: list[LabelledRow]
) -> int:
    """Register the candidate, then promote it or mark it rejected, with the gates' reasons."""
    onnx = _onnx_bytes(outcome.candidate, name)
    newest = max((r.feedback_at for r in rows if r.feedback_at is not None), default=None)
    version = register_version(
        engine,
        name,
        onnx,
        temperature=outcome.candidate.temperature,
        metrics={
            **outcome.candidate_metrics,
            "champion": outcome.champion_metrics,
            "gates": asdict(outcome.verdict),
        },
        trained_on={
            "rows": outcome.n_train,
            "labelled_rows": outcome.n_labelled,
            "not_a_digit_rows": outcome.n_not_a_digit,
            "sessions": len(outcome.session_weights),
            "newest_feedback_at": None if newest is None else newest.isoformat(),
        },
        status=CANDIDATE,
        by=LEARNER,
        reason=f"fine-tuned from version {champion.version} on {outcome.n_train} labelled rows",
        parent_version=champion.version,
        checkpoint=checkpoint_bytes(outcome.candidate, f"labelled rows and MNIST ({LEARNER})"),
    )
    failed = [reason for reason in outcome.verdict.reasons if reason.endswith(": fail")]
    if outcome.verdict.promoted:
        promote(engine, name, version, by=LEARNER, reason="every gate held")
    else:
        set_status(engine, name, version, REJECTED, by=LEARNER, reason="; ".join(failed))
    return version


def _onnx_bytes(result: TrainResult, name: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(result, name, Path(folder) / f"{name}.onnx")
        return path.read_bytes()
