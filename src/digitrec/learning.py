"""Learn from corrections: split the labelled rows by session, weight them, fine-tune, gate.

`learn` is the whole of `digitrec learn` but the storage: it takes the rows and the champion
and returns the candidate, both models' metrics on the same data, and the verdict. A champion
that says "not a digit" has its detector fine-tuned too, on the candidate's features, from the
training sessions' digits and the drawings they said are not a digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.data import Mnist
from digitrec.detector_examples import made_up
from digitrec.detector_tuning import DetectorTuneConfig, tune_detector
from digitrec.feedback import (
    EVAL_FRACTION,
    FeedbackSet,
    LabelledRow,
    capped,
    not_a_digit_rows,
    rows_to_arrays,
    split_by_session,
    training_weights,
)
from digitrec.finetuning import DRY_RUN_DIGITS, FineTuneConfig, fine_tune
from digitrec.gating import (
    HELD_OUT,
    MADE_UP_NOT_DIGITS,
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

# Of each made-up kind of not-a-digit the gates measure (1,000 in all: a point is 10), drawn
# with a seed of their own, from MNIST test digits: nothing a fine-tune learnt from.
MADE_UP_EACH = 250
MADE_UP_SEED = 1


@dataclass(frozen=True)
class LearnOutcome:
    """A candidate, both models' metrics on the same data, and the verdict."""

    candidate: TrainResult
    verdict: Verdict
    champion_metrics: Metrics
    candidate_metrics: Metrics
    n_labelled: int  # rows with a digit label, in all sessions
    n_train: int  # of them, rows of the training sessions
    n_not_a_digit: int  # training sessions' rows said not to be a digit (the detector's)
    n_refused_digits: int  # training sessions' digits they had been told are not a digit
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
    said_not = not_a_digit_rows(train_rows)
    refused = sum(row.refused and row.actual is not None for row in train_rows)
    if champion.detector is not None:  # kept as it was, it reads features that moved
        tuning = DetectorTuneConfig(seed=config.seed, dry_run=config.dry_run)
        candidate.detector = tune_detector(
            candidate.model, champion.detector, train, said_not, mnist, tuning, cache_dir
        )
    datasets = {
        **_gate_datasets(mnist, held_out, not_a_digit_rows(eval_rows)),
        **(made_up_not_digits(mnist) if champion.detector is not None else {}),
        **(extra or {}),
    }
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
        n_not_a_digit=len(said_not),
        n_refused_digits=refused,
        session_weights={
            str(s): float(weights[train.sessions == s].sum()) for s in np.unique(train.sessions)
        },
    )


def _gate_datasets(mnist: Mnist, held_out: FeedbackSet, said_not: FeedbackSet) -> Datasets:
    """MNIST test, the held-out sessions' digits and their "not a digit" drawings; no one
    session counts for more than its cap (no one session decides a gate)."""
    test_x, test_y = mnist.split("test")
    datasets = {
        MNIST_TEST: (test_x.astype(np.float32) / 255, test_y),
        HELD_OUT: capped(held_out).as_dataset(),
    }
    if len(said_not):  # no digit to be right about: what is refused is measured
        images = capped(said_not).images
        labels = np.full(len(images), NOT_A_DIGIT_LABEL)
        datasets[NOT_A_DIGIT_HELD_OUT] = (images.astype(np.float32) / 255, labels)
    return datasets


def made_up_not_digits(mnist: Mnist) -> Datasets:
    """Made-up not-digits, the same on every run: MADE_UP_EACH of each kind."""
    test_x = mnist.split("test")[0].astype(np.float32) / 255
    each, rng = MADE_UP_EACH, np.random.default_rng(MADE_UP_SEED)
    kinds = made_up(test_x, rng, each, each, each, each)
    images = np.concatenate([x for x in kinds.values() if len(x)])
    return {MADE_UP_NOT_DIGITS: (images, np.full(len(images), NOT_A_DIGIT_LABEL))}
