"""Labelled rows as arrays, the split by session, and weights that keep a session from poisoning."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.feedback import (
    CONFIRMATION_WEIGHT,
    CORRECTION_WEIGHT,
    NO_DIGIT,
    SESSION_CAP_ROWS,
    FeedbackSet,
    LabelledRow,
    capped,
    is_evaluation_session,
    not_a_digit_rows,
    rows_to_arrays,
    split_by_session,
    training_weights,
)
from digitrec.preprocessing import encode_png


def a_digit(value: int = 200) -> np.ndarray:
    """A (28, 28) uint8 image with a bar of ink."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 13:15] = value
    return image


def feedback_set(sessions: list[str], labels: list[int], predicted: list[int]) -> FeedbackSet:
    n = len(sessions)
    return FeedbackSet(
        images=np.zeros((n, 28, 28), dtype=np.uint8),
        labels=np.array(labels, dtype=np.int64),
        predicted=np.array(predicted, dtype=np.int64),
        sessions=np.array(sessions),
    )


def champion_saying(digits: list[int], confidence: float) -> np.ndarray:
    """Probabilities (N, 10) of a champion that names `digits` with `confidence`."""
    probs = np.full((len(digits), 10), (1 - confidence) / 9)
    probs[np.arange(len(digits)), digits] = confidence
    return probs


# --- rows to arrays ------------------------------------------------------------------------------


def test_rows_said_not_to_be_a_digit_are_images_to_refuse_not_digits_to_learn() -> None:
    letter, digit = a_digit(), a_digit(120)
    rows = [
        LabelledRow("s1", encode_png(letter), predicted=4, actual=None),
        LabelledRow("s1", encode_png(digit), predicted=1, actual=1),
    ]

    said_not = not_a_digit_rows(rows)
    assert np.array_equal(said_not.images, letter[None])
    assert said_not.labels.tolist() == [NO_DIGIT] and said_not.sessions.tolist() == ["s1"]
    assert rows_to_arrays(rows).labels.tolist() == [1]


def test_rows_to_arrays_decodes_rows_with_a_digit_and_leaves_out_the_rest() -> None:
    good = LabelledRow("s1", encode_png(a_digit(200)), predicted=3, actual=1)
    rows = [
        good,
        LabelledRow("s2", encode_png(a_digit(90)), predicted=7, actual=7),
        LabelledRow("s1", encode_png(a_digit()), predicted=3, actual=None),  # not a digit
        LabelledRow("s3", b"not a png", predicted=3, actual=3),
        LabelledRow("s3", encode_png(a_digit()[:27]), predicted=3, actual=3),  # not 28x28
        LabelledRow("s3", encode_png(np.zeros((28, 28), np.uint8)), predicted=3, actual=3),
    ]

    arrays = rows_to_arrays(rows)

    assert len(arrays) == 2
    np.testing.assert_array_equal(arrays.images[0], a_digit(200))
    assert arrays.images.dtype == np.uint8 and arrays.images.shape == (2, 28, 28)
    assert arrays.labels.tolist() == [1, 7] and arrays.predicted.tolist() == [3, 7]
    assert arrays.sessions.tolist() == ["s1", "s2"]
    images, _ = arrays.as_dataset()
    assert images.dtype == np.float32 and images.max() == pytest.approx(200 / 255)


def test_rows_to_arrays_of_no_rows_is_empty() -> None:
    arrays = rows_to_arrays([])
    assert len(arrays) == 0 and arrays.images.shape == (0, 28, 28)


# --- the split -----------------------------------------------------------------------------------


def test_split_by_session_never_splits_a_session_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    rows = [
        LabelledRow(f"session-{s}", b"", predicted=0, actual=int(d))
        for s in rng.integers(0, 400, 3000)
        for d in [rng.integers(0, 10)]
    ]

    train, held_out = split_by_session(rows, eval_fraction=0.2)
    train_again, held_out_again = split_by_session(rows[::-1], eval_fraction=0.2)

    train_sessions = {r.session_id for r in train}
    held_out_sessions = {r.session_id for r in held_out}
    assert not train_sessions & held_out_sessions
    assert len(train) + len(held_out) == len(rows)
    assert {r.session_id for r in train_again} == train_sessions  # any order, any run
    assert {r.session_id for r in held_out_again} == held_out_sessions
    share = len(held_out_sessions) / len(held_out_sessions | train_sessions)
    assert 0.13 < share < 0.27
    assert all(is_evaluation_session(s) for s in held_out_sessions)


def test_is_evaluation_session_follows_the_sha256_of_the_session_id() -> None:
    # sha256("a") begins ca978112ca1bbdca: 0.79 of 2**64; sha256("b") begins 3e23e816: 0.24.
    assert not is_evaluation_session("a", 0.79) and is_evaluation_session("a", 0.80)
    assert not is_evaluation_session("b", 0.24) and is_evaluation_session("b", 0.25)
    assert not is_evaluation_session("b", 0.0) and is_evaluation_session("b", 1.0)


# --- weights -------------------------------------------------------------------------------------


def test_training_weights_cap_what_one_session_contributes() -> None:
    sessions = ["big"] * 300 + ["small"] * 20
    labels = [3] * 320
    feedback = feedback_set(sessions, labels, predicted=[5] * 320)  # all corrections
    unsure = champion_saying([3] * 320, confidence=0.5)  # no confident call: full trust

    weights = training_weights(feedback, unsure)

    big, small = weights[:300], weights[300:]
    assert big.sum() == pytest.approx(SESSION_CAP_ROWS)
    assert np.allclose(big, big[0])  # every drawing kept, each at a share of the cap
    assert small.sum() == pytest.approx(20 * CORRECTION_WEIGHT)  # under the cap: untouched


def test_training_weights_count_a_correction_more_than_a_confirmation() -> None:
    feedback = feedback_set(["s"] * 2, labels=[4, 4], predicted=[4, 9])
    weights = training_weights(feedback, champion_saying([4, 4], confidence=0.95))
    assert weights.tolist() == pytest.approx([CONFIRMATION_WEIGHT, CORRECTION_WEIGHT])


def test_training_weights_distrust_a_session_that_contradicts_the_confident_champion() -> None:
    true = [d % 10 for d in range(40)]
    wrong = [(d + 5) % 10 for d in true]
    said = [7, *true[1:]]  # one confident mistake (a 0 read as 7), corrected
    feedback = feedback_set(
        ["honest"] * 40 + ["liar"] * 40, labels=true + wrong, predicted=said + true
    )
    champion = champion_saying(said + true, confidence=0.99)

    weights = training_weights(feedback, champion)

    honest, liar = weights[:40].sum(), weights[40:].sum()
    assert liar == 0.0  # contradicts every confident call
    assert honest == pytest.approx((39 / 40) * (39 * CONFIRMATION_WEIGHT + CORRECTION_WEIGHT))


def test_training_weights_judge_a_short_session_on_few_rows_mildly() -> None:
    feedback = feedback_set(["short"] * 2, labels=[1, 2], predicted=[1, 1])
    weights = training_weights(feedback, champion_saying([1, 1], confidence=0.99))
    # One contradiction of two confident calls, weighed against at least 5 rows: trust 0.8.
    assert weights.tolist() == pytest.approx([0.8 * CONFIRMATION_WEIGHT, 0.8 * CORRECTION_WEIGHT])


def test_capped_keeps_at_most_cap_rows_of_each_session_spread_over_it() -> None:
    feedback = feedback_set(
        ["a"] * 10 + ["b"] * 3, labels=[*range(10), 0, 1, 2], predicted=[0] * 13
    )

    kept = capped(feedback, cap=4)

    assert kept.sessions.tolist() == ["a"] * 4 + ["b"] * 3
    assert kept.labels.tolist() == [0, 3, 6, 9, 0, 1, 2]
    assert len(capped(feedback_set([], [], []), cap=4)) == 0
