"""The slate's answer: serve a press, show the result, take the person's feedback on it.

These parts run inside the page's reading fragment (see `digitrec.ui.page`): a press or a
feedback click reruns them, not the whole page.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from digitrec.contract import (
    EmptyDrawingError,
    InvalidImageError,
    PredictionNotFoundError,
    UnknownModelError,
)
from digitrec.preprocessing import to_mnist
from digitrec.ui import charts, formatting
from digitrec.ui.client import UNAVAILABLE_ERRORS, DigitClient
from digitrec.ui.slate import Press
from digitrec.ui.state import Action, Notice, PageState, idempotency_key, request_key

PREVIEW_SIZE_PX = 84  # the 28x28 model input, shown 3x
FEEDBACK_TEXT_KEY = "feedback_text"


def serve_press(
    state: PageState, client: DigitClient, press: Press | None, *, session_id: str, model: str
) -> Action:
    """Answer a press on the slate; returns what was done."""
    action = state.next_action(press, model)
    if action is Action.PREDICT and press is not None and press.png is not None:
        _predict(state, client, press, press.png, session_id=session_id, model=model)
    elif action is Action.EMPTY:
        state.refuse(Notice("info", formatting.EMPTY_MESSAGE))
    elif action is Action.FORGET:
        state.clear_slate()
    return action


def _predict(
    state: PageState,
    client: DigitClient,
    press: Press,
    png: bytes,
    *,
    session_id: str,
    model: str,
) -> None:
    request = request_key(press, model)
    assert request is not None  # a press with a picture
    try:
        # One drawing, one model: one row, however often Predict is pressed.
        result = client.predict(
            png, session_id=session_id, model=model, idempotency_key=idempotency_key(request)
        )
    except EmptyDrawingError as exc:
        # Nothing drawn, or a mark too small to read: the service says which.
        state.refuse(Notice("info", formatting.empty_message(exc)))
        return
    except InvalidImageError as exc:
        state.refuse(Notice("error", f"The drawing could not be read: {exc}"))
        return
    except UnknownModelError as exc:
        state.refuse(Notice("error", f"That model is not available: {exc}"))
        return
    except UNAVAILABLE_ERRORS as exc:
        state.refuse(Notice("error", formatting.unavailable_message(exc, "predict")))
        return
    state.serve(result, press, model)


def _model_input(png: bytes) -> np.ndarray | None:
    """The 28x28 image the model saw, made by the same preprocessing; None if unreadable."""
    try:
        return to_mnist(png)
    except (EmptyDrawingError, InvalidImageError):
        return None


def render_result(state: PageState, model: str) -> None:
    """The prediction on screen: digit, confidence, the model that made it, the ten
    probabilities and the model's input."""
    if state.notice is not None:
        _show(state.notice)
    result = state.result
    if result is not None and state.is_stale(model):
        st.caption(f"Another model was chosen: reading the drawing again with {model}…")
        return
    if result is None:
        if state.notice is None:
            st.caption("The prediction appears here.")
        return
    # The answer and the model's input side by side (on a phone too): no scrolling to see both.
    with st.container(horizontal=True, gap="medium", vertical_alignment="center"):
        with st.container(width="stretch", key=None if result.is_digit else "refusal"):
            st.subheader(formatting.prediction_line(result), anchor=False)
            st.markdown(f"**{formatting.confidence_line(result)}**")
            st.caption(f"Model {formatting.model_label(result)} · {result.latency_ms:.0f} ms")
        state.make_preview(_model_input)
        if state.preview is not None:
            st.image(
                _upscaled(state.preview),
                caption="Model input (28×28)",
                alt=f"The model input (28 by 28 pixels), read as {result.prediction}",
            )
    note = formatting.uncertainty_note(result)
    if note:
        st.warning(note, icon=":material/help:")
    if not result.logged:
        st.warning(formatting.DELAYED_MESSAGE, icon=":material/schedule:")
    if result.probabilities is not None:
        st.vega_lite_chart(charts.probabilities(result.probabilities), width="stretch")


def render_comparison(state: PageState, client: DigitClient, model: str) -> None:
    """Every model's answer to the drawing on screen, side by side, once asked for."""
    if state.result is None or state.served_png is None or state.is_stale(model):
        return
    st.button(
        "Compare models",
        key="compare",
        icon=":material/compare_arrows:",
        help="Read this drawing with every model; each answer is logged.",
        on_click=_compare,
        args=(state, client),
    )
    comparison = state.comparison
    if comparison is not None:
        with st.container(key="comparison"):
            st.dataframe(
                formatting.comparison_rows(comparison),
                hide_index=True,
                column_order=formatting.COMPARISON_COLUMNS,
                width="stretch",
            )
            for name, why in comparison.unavailable.items():
                st.caption(f"{name} gave no answer: {why}")


def _compare(state: PageState, client: DigitClient) -> None:
    png, request = state.served_png, state.served_request
    result = state.result
    if png is None or request is None or result is None:
        return
    try:
        state.comparison = client.compare(
            png,
            session_id=result.session_id,
            idempotency_key=idempotency_key(f"compare:{request}"),
        )
    except UNAVAILABLE_ERRORS as exc:
        state.feedback_notice = Notice("warning", formatting.unavailable_message(exc, "predict"))


def _upscaled(image: np.ndarray) -> Image.Image:
    pixels = (np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="L").resize(
        (PREVIEW_SIZE_PX, PREVIEW_SIZE_PX), Image.Resampling.NEAREST
    )


def render_feedback(state: PageState, client: DigitClient, model: str) -> None:
    """One-click digits and a typed correction, both tied to the prediction on screen."""
    st.subheader("Feedback", anchor=False)
    result = state.result
    if result is None or state.is_stale(model):
        st.caption("Predict a digit first, then confirm or correct it here.")
        return
    answer = result.prediction if result.is_digit else formatting.NOT_A_DIGIT
    st.caption(
        f"Which digit did you draw? This labels the prediction above ({answer}, "
        f"model {formatting.model_label(result)}). One click records it; click another to "
        "change it."
    )
    with st.container(horizontal=True, gap="small"):
        for digit in range(10):
            st.button(
                str(digit),
                key=f"digit-{digit}",
                # The chosen digit gets a tick; its type stays the same, since a button whose
                # type changes is drawn anew and loses the keyboard focus.
                icon=":material/check:" if result.actual == digit else None,
                on_click=_send_feedback,
                args=(state, client, digit),
            )
        st.button(
            "Not a digit",
            key="not-a-digit",
            icon=":material/check:" if result.not_a_digit else None,
            on_click=_send_feedback,
            args=(state, client, None),
        )
    with st.form("typed_feedback", clear_on_submit=True, border=False, enter_to_submit=True):
        st.text_input(
            "Correct digit if incorrect:", key=FEEDBACK_TEXT_KEY, placeholder="0-9", max_chars=3
        )
        st.form_submit_button(
            "Submit Feedback",
            key="submit_feedback",
            on_click=_submit_typed,
            args=(state, client),
        )
    if state.feedback_notice is not None:
        _show(state.feedback_notice)


def _submit_typed(state: PageState, client: DigitClient) -> None:
    digit = formatting.parse_digit(str(st.session_state.get(FEEDBACK_TEXT_KEY, "")))
    if digit is None:
        state.feedback_notice = Notice("error", formatting.INVALID_DIGIT_MESSAGE)
        return
    _send_feedback(state, client, digit)


def _send_feedback(state: PageState, client: DigitClient, digit: int | None) -> None:
    """Label the result on screen with `digit`; None: the drawing is not a digit."""
    result = state.result
    if result is None:
        return
    try:
        updated = client.submit_feedback(result.id, digit, session_id=result.session_id)
    except PredictionNotFoundError:
        state.feedback_notice = Notice("warning", "That prediction is no longer on record.")
        return
    except ValueError:
        state.feedback_notice = Notice("error", formatting.INVALID_DIGIT_MESSAGE)
        return
    except UNAVAILABLE_ERRORS as exc:
        state.feedback_notice = Notice("warning", formatting.unavailable_message(exc, "feedback"))
        return
    state.result = updated
    thanks = formatting.feedback_thanks(updated)
    if updated.logged:
        state.feedback_notice = Notice("success", thanks)
    else:
        state.feedback_notice = Notice("warning", f"{thanks} {formatting.DELAYED_MESSAGE}")


def _show(notice: Notice) -> None:
    show = {"info": st.info, "success": st.success, "warning": st.warning, "error": st.error}
    show.get(notice.level, st.info)(notice.text)
