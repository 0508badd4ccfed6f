"""Temperature scaling and ECE, checked against data whose calibration is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.calibration import expected_calibration_error, fit_temperature, nll, softmax


def sample_labels(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row, drawn from that row's distribution."""
    cumulative = probs.cumsum(axis=1)
    draws = rng.random((len(probs), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative < draws).sum(axis=1), probs.shape[1] - 1)


def reference_ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE the slow, obvious way: per bin (lo, hi], |mean confidence - accuracy| * share."""
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [
            i for i, p in enumerate(probs) if (lo < p.max() <= hi) or (b == 0 and p.max() <= lo)
        ]
        if members:
            confidence = np.mean([probs[i].max() for i in members])
            accuracy = np.mean([probs[i].argmax() == labels[i] for i in members])
            total += len(members) / len(probs) * abs(confidence - accuracy)
    return total


def one_hot_ish(top: float, label: int) -> np.ndarray:
    """10 probabilities: `top` on `label`, the rest shared evenly."""
    row = np.full(10, (1 - top) / 9)
    row[label] = top
    return row


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_at(
    true_temperature: float,
) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, (20_000, 10))
    labels = sample_labels(softmax(logits, true_temperature), rng)

    assert fit_temperature(logits, labels) == pytest.approx(true_temperature, rel=0.05)


def test_fit_temperature_minimises_the_nll() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 4.0, (2_000, 10))
    labels = sample_labels(softmax(logits, 1.7), rng)

    best = fit_temperature(logits, labels)

    for other in (best * 0.9, best * 1.1):
        assert nll(logits, labels, best) < nll(logits, labels, other)


def test_nll_matches_minus_log_softmax() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = np.array([0, 1])
    probs = softmax(logits, 2.0)
    expected = -np.log([probs[0, 0], probs[1, 1]]).mean()
    assert nll(logits, labels, 2.0) == pytest.approx(expected, rel=1e-12)


def test_softmax_rows_sum_to_one_even_for_huge_logits() -> None:
    logits = np.random.default_rng(0).normal(0.0, 500.0, (50, 10))  # exp would overflow
    for temperature in (0.1, 1.0, 7.0):
        probs = softmax(logits, temperature)
        assert np.isfinite(probs).all() and (probs >= 0).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


def test_softmax_divides_the_logits_by_the_temperature() -> None:
    logits = np.random.default_rng(0).normal(0.0, 2.0, (5, 10))
    np.testing.assert_allclose(softmax(logits, 2.0), softmax(logits / 2.0), atol=1e-12)
    assert softmax(logits, 4.0).max() < softmax(logits, 1.0).max()  # hotter is less sure


def test_expected_calibration_error_is_zero_when_confidence_equals_accuracy() -> None:
    # Ten digits at 80 % confidence of which eight are right; four at 50 % of which two are.
    probs = np.array([one_hot_ish(0.8, 3)] * 10 + [one_hot_ish(0.5, 7)] * 4)
    labels = np.array([3] * 8 + [1] * 2 + [7] * 2 + [0] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_expected_calibration_error_is_near_zero_for_calibrated_samples() -> None:
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(0.0, 3.0, (50_000, 10)))
    labels = sample_labels(probs, rng)  # right exactly as often as the model believes

    assert expected_calibration_error(probs, labels) < 0.01
    overconfident = softmax(np.log(probs) * 3)  # the same answers, far surer
    assert expected_calibration_error(overconfident, labels) > 0.05


def test_expected_calibration_error_matches_a_hand_computed_example() -> None:
    # Bin (13/15, 14/15]: 0.9, 0.9 with one right -> gap 0.4, share 1/2.
    # Bin (8/15, 9/15]:   0.6, 0.6 both right    -> gap 0.4, share 1/2.
    probs = np.array(
        [one_hot_ish(0.9, 0), one_hot_ish(0.9, 0), one_hot_ish(0.6, 2), one_hot_ish(0.6, 5)]
    )
    labels = np.array([0, 1, 2, 5])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4, abs=1e-12)


def test_expected_calibration_error_matches_a_reference_implementation() -> None:
    rng = np.random.default_rng(3)
    probs = softmax(rng.normal(0.0, 2.0, (300, 10)))
    labels = rng.integers(0, 10, 300)
    probs[0] = one_hot_ish(1.0, 4)  # a certainty lands in the top bin
    probs[1] = one_hot_ish(0.4, 4)  # exactly on a bin edge: belongs to (1/3, 0.4]

    assert expected_calibration_error(probs, labels) == pytest.approx(
        reference_ece(probs, labels), abs=1e-9
    )
