"""The gates between a champion and a candidate: measures, each gate's pass and fail, the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from digitrec.calibration import softmax
from digitrec.evaluation import classification_metrics
from digitrec.export import export_onnx
from digitrec.gating import (
    HELD_OUT,
    MADE_UP_NOT_DIGITS,
    MNIST_TEST,
    NOT_A_DIGIT_HELD_OUT,
    NOT_A_DIGIT_LABEL,
    Metrics,
    comparison_table,
    learning_report,
    measure,
    verdict,
)
from digitrec.inference import Predictor
from digitrec.models import Standardised, build_model
from digitrec.training import TrainConfig, TrainResult, predict_logits


def metrics(
    mnist: float = 0.995, held_out: float = 0.97, ece: float = 0.02, n_held_out: int = 200
) -> Metrics:
    return {
        MNIST_TEST: {"n": 10_000, "accuracy": mnist, "ece": 0.01, "confident_wrong": 0.0},
        HELD_OUT: {"n": n_held_out, "accuracy": held_out, "ece": ece, "confident_wrong": 0.0},
    }


def gate(reasons: list[str], name: str) -> str:
    (reason,) = [r for r in reasons if r.startswith(name)]
    return reason


# --- verdict: each gate ------------------------------------------------------------------------


def test_verdict_promotes_when_every_gate_holds() -> None:
    outcome = verdict(metrics(), metrics(mnist=0.995, held_out=0.99, ece=0.015), n_labelled=600)
    assert outcome.promoted
    assert len(outcome.reasons) == 4 and all(r.endswith(": pass") for r in outcome.reasons)


@pytest.mark.parametrize(
    ("candidate", "holds"),
    [(0.9940, True), (0.9941, True), (0.9939, False), (0.90, False), (0.999, True)],
)
def test_verdict_lets_mnist_test_drop_by_at_most_a_tenth_of_a_point(
    candidate: float, holds: bool
) -> None:
    outcome = verdict(metrics(mnist=0.995), metrics(mnist=candidate), n_labelled=600)
    reason = gate(outcome.reasons, "MNIST test accuracy")
    assert outcome.promoted is holds
    assert reason.endswith("pass" if holds else "fail")
    assert "99.50%" in reason and f"{candidate:.2%}" in reason


@pytest.mark.parametrize(("candidate", "holds"), [(0.97, True), (0.98, True), (0.965, False)])
def test_verdict_lets_held_out_feedback_accuracy_not_fall(candidate: float, holds: bool) -> None:
    outcome = verdict(metrics(held_out=0.97), metrics(held_out=candidate), n_labelled=600)
    reason = gate(outcome.reasons, "held-out feedback accuracy")
    assert outcome.promoted is holds and reason.endswith("pass" if holds else "fail")
    assert "97.00%" in reason and f"{candidate:.2%}" in reason and "n 200" in reason


@pytest.mark.parametrize(
    ("candidate", "holds"), [(0.025, True), (0.024, True), (0.0251, False), (0.01, True)]
)
def test_verdict_lets_held_out_calibration_error_rise_by_at_most_half_a_point(
    candidate: float, holds: bool
) -> None:
    outcome = verdict(metrics(ece=0.02), metrics(ece=candidate), n_labelled=600)
    reason = gate(outcome.reasons, "held-out feedback calibration error")
    assert outcome.promoted is holds and reason.endswith("pass" if holds else "fail")
    assert "2.00%" in reason and f"{candidate:.2%}" in reason


@pytest.mark.parametrize(
    ("n_labelled", "min_feedback", "holds"), [(50, 50, True), (49, 50, False), (10, 5, True)]
)
def test_verdict_needs_at_least_min_feedback_labelled_rows(
    n_labelled: int, min_feedback: int, holds: bool
) -> None:
    outcome = verdict(metrics(), metrics(), n_labelled, min_feedback)
    reason = gate(outcome.reasons, "labelled rows")
    assert outcome.promoted is holds and reason.endswith("pass" if holds else "fail")
    assert f"{n_labelled}" in reason and f"{min_feedback}" in reason


def test_verdict_says_no_without_held_out_sessions_or_mnist() -> None:
    empty = metrics(n_held_out=0)
    no_mnist = {HELD_OUT: metrics()[HELD_OUT]}

    assert not verdict(empty, empty, n_labelled=600).promoted
    outcome = verdict(no_mnist, no_mnist, n_labelled=600)
    assert not outcome.promoted
    assert gate(outcome.reasons, "MNIST test accuracy") == (
        "MNIST test accuracy: not measured (no rows): fail"
    )


# --- measure -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_result() -> TrainResult:
    """An untrained LeNet-5 with a temperature: measures need no skill, only numbers."""
    torch.manual_seed(0)
    model = Standardised(build_model("lenet5"), temperature=0.5).eval()
    export_metrics = {"test": {"accuracy": 0.1, "ece": 0.1}, "test_ece_uncalibrated": 0.1}
    return TrainResult(model, TrainConfig(model="lenet5"), 0.5, export_metrics)


def test_measure_gives_accuracy_ece_and_size_per_dataset(small_result: TrainResult) -> None:
    rng = np.random.default_rng(0)
    images = rng.random((40, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, 40)
    empty = (np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64))

    found = measure(small_result, {"noise": (images, labels), "none": empty})

    raw = predict_logits(Standardised(small_result.model.net), images)  # temperature 1
    probs = softmax(raw, temperature=0.5)
    reference = classification_metrics(probs, labels)
    assert found["noise"]["n"] == 40
    assert found["noise"]["accuracy"] == reference["accuracy"]
    assert found["noise"]["ece"] == pytest.approx(reference["ece"], abs=1e-6)
    assert found["none"] == {"n": 0, "accuracy": None, "ece": None, "confident_wrong": None}


def test_measure_reads_an_onnx_predictor_as_its_torch_result(
    small_result: TrainResult, tmp_path: Path
) -> None:
    path = export_onnx(small_result, "small", tmp_path / "small.onnx")
    images = np.random.default_rng(1).random((30, 28, 28), dtype=np.float32)
    labels = np.arange(30) % 10

    from_torch = measure(small_result, {"x": (images, labels)})
    from_onnx = measure(Predictor(path), {"x": (images, labels)})

    assert from_onnx["x"]["accuracy"] == from_torch["x"]["accuracy"]
    assert from_onnx["x"]["ece"] == pytest.approx(from_torch["x"]["ece"], abs=1e-5)


# --- what the command shows ----------------------------------------------------------------------


def test_comparison_table_shows_both_models_on_every_measure() -> None:
    champion, candidate = metrics(), metrics(held_out=0.99)
    candidate["drawn_dev"] = {"n": 2082, "accuracy": 0.99, "ece": 0.01, "confident_wrong": 0.0}

    table = comparison_table(champion, candidate).splitlines()

    assert table[0].split() == ["dataset", "measure", "champion", "candidate"]
    assert [line.split()[:2] for line in table[1:5]] == [
        [MNIST_TEST, "n"],
        [MNIST_TEST, "accuracy"],
        [MNIST_TEST, "ece"],
        [MNIST_TEST, "confident_wrong"],
    ]
    assert [HELD_OUT, "accuracy", "97.00%", "99.00%"] in [line.split() for line in table]
    assert ["drawn_dev", "n", "-", "2082"] in [line.split() for line in table]


def test_learning_report_is_json_with_the_verdict_versions_and_metrics() -> None:
    champion, candidate = metrics(), metrics(held_out=0.99)
    outcome = verdict(champion, candidate, n_labelled=600)

    report: dict[str, Any] = json.loads(
        json.dumps(learning_report(outcome, champion, candidate, "v1", "v2"))
    )

    assert report["promoted"] is True
    assert (report["champion_version"], report["candidate_version"]) == ("v1", "v2")
    assert report["metrics"]["candidate"][HELD_OUT]["accuracy"] == 0.99
    assert report["reasons"] == outcome.reasons


# --- the "not a digit" gates ---------------------------------------------------------------------


def with_refusals(
    base: Metrics,
    mnist: float | None,
    not_digits: float | None = None,
    held_out: float = 0.01,
    made_up: float | None = None,
) -> Metrics:
    """`base` with the shares refused: of MNIST test, of the held-out sessions' digits (by a
    model that can refuse: `mnist` not None), of held-out "not a digit" labels and of made-up
    not-digits."""
    found = {name: {**values, "refused": None} for name, values in base.items()}
    found[MNIST_TEST]["refused"] = mnist
    found[HELD_OUT]["refused"] = None if mnist is None else held_out
    for name, n, refused in [
        (NOT_A_DIGIT_HELD_OUT, 40, not_digits),
        (MADE_UP_NOT_DIGITS, 1000, made_up),
    ]:
        if refused is not None:
            found[name] = {
                "n": n,
                "accuracy": None,
                "ece": None,
                "confident_wrong": None,
                "refused": refused,
            }
    return found


@pytest.mark.parametrize(
    ("candidate", "holds"), [(0.003, True), (0.004, True), (0.0041, False), (0.02, False)]
)
def test_mnist_refusals_may_rise_by_at_most_a_tenth_of_a_point(
    candidate: float, holds: bool
) -> None:
    outcome = verdict(
        with_refusals(metrics(), 0.003), with_refusals(metrics(), candidate), n_labelled=600
    )
    assert outcome.promoted is holds
    assert gate(outcome.reasons, "MNIST test refused").endswith("pass" if holds else "fail")


NOT_A_DIGIT_GATE = "held-out 'not a digit' labels refused"
DIGITS_GATE = "held-out feedback digits refused"
MADE_UP_GATE = "made-up not-digits refused"


@pytest.mark.parametrize(
    ("champion", "candidate", "name", "holds"),
    [
        ({"not_digits": 0.9}, {"not_digits": 0.9}, NOT_A_DIGIT_GATE, True),
        ({"not_digits": 0.9}, {"not_digits": 0.95}, NOT_A_DIGIT_GATE, True),
        ({"not_digits": 0.9}, {"not_digits": 0.875}, NOT_A_DIGIT_GATE, False),  # refused less
        ({"held_out": 0.01}, {"held_out": 0.01}, DIGITS_GATE, True),
        ({"held_out": 0.01}, {"held_out": 0.0}, DIGITS_GATE, True),
        ({"held_out": 0.01}, {"held_out": 0.0125}, DIGITS_GATE, False),  # one more in eighty
        ({"made_up": 0.95}, {"made_up": 0.96}, MADE_UP_GATE, True),
        ({"made_up": 0.95}, {"made_up": 0.93}, MADE_UP_GATE, True),  # two points less
        ({"made_up": 0.95}, {"made_up": 0.929}, MADE_UP_GATE, False),  # 21 in 1,000 fewer
    ],
)
def test_held_out_refusals_may_only_move_the_right_way(
    champion: dict[str, float], candidate: dict[str, float], name: str, holds: bool
) -> None:
    outcome = verdict(
        with_refusals(metrics(), 0.003, **champion),
        with_refusals(metrics(), 0.003, **candidate),
        n_labelled=600,
    )
    assert outcome.promoted is holds
    reading = gate(outcome.reasons, name)
    assert reading.endswith("pass" if holds else "fail"), reading


def test_a_candidate_that_lost_the_detector_is_not_promoted() -> None:
    outcome = verdict(with_refusals(metrics(), 0.003), with_refusals(metrics(), None), 600)
    assert not outcome.promoted
    assert gate(outcome.reasons, "MNIST test refused").endswith("not measured (no rows): fail")


def test_without_a_detector_there_is_no_refusal_gate() -> None:
    outcome = verdict(with_refusals(metrics(), None), with_refusals(metrics(), None), 600)
    assert outcome.promoted
    assert len(outcome.reasons) == 4


def test_measure_skips_accuracy_on_not_a_digit_rows(
    small_result: TrainResult, tmp_path: Path
) -> None:
    images = np.random.default_rng(0).random((20, 28, 28), dtype=np.float32)
    rows = {NOT_A_DIGIT_HELD_OUT: (images, np.full(20, NOT_A_DIGIT_LABEL))}
    predictor = Predictor(export_onnx(small_result, "lenet5", tmp_path / "lenet5.onnx"))
    assert measure(small_result, rows) == measure(predictor, rows)
    assert measure(predictor, rows)[NOT_A_DIGIT_HELD_OUT] == {
        "n": 20,
        "accuracy": None,
        "ece": None,
        "confident_wrong": None,
        "refused": None,  # this model cannot say "not a digit"
    }
