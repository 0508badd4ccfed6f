"""Learn from corrections: split the labelled rows by session, weight them, fine-tune, gate.

`learn` is the whole of `digitrec learn` but the storage: it takes the rows and the champion
and returns the candidate, both models' metrics on the same data, and the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.data import Mnist
from digitrec.feedback import (
    EVAL_FRACTION,
    LabelledRow,
    capped,
    not_a_digit_images,
    rows_to_arrays,
    split_by_session,
    training_weights,
)
from digitrec.finetuning import DRY_RUN_DIGITS, FineTuneConfig, fine_tune
from digitrec.gating import (
    HELD_OUT,
    MIN_FEEDBACK,
    MNIST_TEST,
    NOT_A_DIGIT_HELD_OUT,
    NOT_A_DIGIT_LABEL,
    Datasets,
    Metrics,
    Verdict,
    measure,
    probabilities,
    verdict,
)
from digitrec.training import TrainResult


@dataclass(frozen=True)
class LearnOutcome:
    """A candidate, both models' metrics on the same data, and the verdict."""

    candidate: TrainResult
    verdict: Verdict
    champion_metrics: Metrics
    candidate_metrics: Metrics
    n_labelled: int  # rows with a digit label, in all sessions
    n_train: int  # of them, rows of the training sessions
    session_weights: dict[str, float]  # training session -> its rows' total weight


def learn(
    champion: TrainResult,
    rows: Sequence[LabelledRow],
    mnist: Mnist,
    config: FineTuneConfig | None = None,
    extra: Datasets | None = None,
    min_feedback: int = MIN_FEEDBACK,
    eval_fraction: float = EVAL_FRACTION,
    cache_dir: Path | None = None,
) -> LearnOutcome:
    """Split by session, weight, fine-tune, measure both models on the same data, decide."""
    config = config or FineTuneConfig()
    train_rows, eval_rows = split_by_session(rows, eval_fraction)
    train, held_out = rows_to_arrays(train_rows), rows_to_arrays(eval_rows)
    if not len(train):
        raise ValueError(f"no labelled rows in the training sessions ({len(held_out)} held out)")
    champion_probs = probabilities(champion, train.as_dataset()[0])  # (N, 10)
    weights = training_weights(train, champion_probs)
    candidate = fine_tune(champion, train.images, train.labels, weights, mnist, config, cache_dir)
    test_x, test_y = mnist.split("test")
    datasets = {
        MNIST_TEST: (test_x.astype(np.float32) / 255, test_y),
        HELD_OUT: capped(held_out).as_dataset(),  # no one session decides a gate
        **(extra or {}),
    }
    not_digits = not_a_digit_images(eval_rows)
    if len(not_digits):  # the held-out sessions' "not a digit" labels: refusals measured only
        datasets[NOT_A_DIGIT_HELD_OUT] = (
            not_digits.astype(np.float32) / 255,
            np.full(len(not_digits), NOT_A_DIGIT_LABEL),
        )
    if config.dry_run:
        datasets = {k: (x[:DRY_RUN_DIGITS], y[:DRY_RUN_DIGITS]) for k, (x, y) in datasets.items()}
    champion_metrics, candidate_metrics = measure(champion, datasets), measure(candidate, datasets)
    n_labelled = len(train) + len(held_out)
    return LearnOutcome(
        candidate=candidate,
        verdict=verdict(champion_metrics, candidate_metrics, n_labelled, min_feedback),
        champion_metrics=champion_metrics,
        candidate_metrics=candidate_metrics,
        n_labelled=n_labelled,
        n_train=len(train),
        session_weights={
            str(s): float(weights[train.sessions == s].sum()) for s in np.unique(train.sessions)
        },
    )
