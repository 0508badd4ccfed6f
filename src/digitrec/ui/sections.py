"""The parts of the page, top to bottom; each draws itself from the page state and the client."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import streamlit as st
from PIL import Image

from digitrec.config import Settings
from digitrec.contract import (
    EmptyDrawingError,
    InvalidImageError,
    PredictionNotFoundError,
    UnknownModelError,
)
from digitrec.preprocessing import to_mnist
from digitrec.ui import formatting
from digitrec.ui.client import UNAVAILABLE_ERRORS, DigitClient
from digitrec.ui.examples import examples_path
from digitrec.ui.state import Action, Notice, PageState, Slate

CANVAS_SIZE_PX = 280  # 10x the 28 px MNIST field
STROKE_WIDTH_PX = 18  # about 1.8 px once reduced to 28 px, close to MNIST's pen
PREVIEW_SIZE_PX = 140  # the 28x28 model input, shown 5x
HISTORY_LIMIT = 100
FEEDBACK_TEXT_KEY = "feedback_text"


def render_sidebar(client: DigitClient, settings: Settings) -> str:
    """The model selector; returns the chosen model's name."""
    try:
        models = client.models() or [settings.default_model]
    except UNAVAILABLE_ERRORS:  # the model service is unreachable: offer the default
        models = [settings.default_model]
    default = settings.default_model if settings.default_model in models else models[0]
    with st.sidebar:
        st.header("Settings")
        model = st.selectbox(
            "Model",
            models,
            index=models.index(default),
            key="model",
            help="Which trained network reads the digit; the choice is logged with each one.",
        )
    return str(model)


def render_slate(state: PageState) -> tuple[Slate, bool]:
    """The canvas with Clear and Predict under it; returns the drawing and the Predict click."""
    # Imported here: the component registers itself with the running Streamlit server.
    from streamlit_drawable_canvas import st_canvas

    st.caption("Draw one digit, large and centred, then press Predict.")
    canvas = st_canvas(
        stroke_width=STROKE_WIDTH_PX,
        stroke_color="#FFFFFF",
        background_color="#000000",
        width=CANVAS_SIZE_PX,
        height=CANVAS_SIZE_PX,
        drawing_mode="freedraw",
        update_streamlit=True,
        return_image_data=True,
        key=state.canvas_key,
    )
    clear_column, predict_column = st.columns(2)
    clear_column.button(
        "Clear", icon=":material/delete:", key="clear", on_click=state.clear_slate, width="stretch"
    )
    clicked = predict_column.button("Predict", type="primary", key="predict", width="stretch")
    return Slate.from_canvas(canvas.json_data, canvas.image_bytes), clicked


def serve_predict(
    state: PageState, client: DigitClient, slate: Slate, *, session_id: str, model: str
) -> Action:
    """Serve a pending Predict request if this rerun can; returns what was done."""
    action = state.next_action(slate, model, time.monotonic())
    if action is Action.PREDICT and slate.png is not None:
        _predict(state, client, slate.png, slate, session_id=session_id, model=model)
    elif action is Action.EMPTY:
        state.refuse(Notice("info", formatting.EMPTY_MESSAGE))
    elif action is Action.KEEP:
        state.close_request()
    return action


def _predict(
    state: PageState, client: DigitClient, png: bytes, slate: Slate, *, session_id: str, model: str
) -> None:
    try:
        # One drawing, one model: one row, however often Predict is pressed (or a rerun repeats it).
        press = hashlib.sha256(png + model.encode()).hexdigest()[:32]
        result = client.predict(png, session_id=session_id, model=model, idempotency_key=press)
    except EmptyDrawingError:
        state.refuse(Notice("info", formatting.EMPTY_MESSAGE))
        return
    except InvalidImageError as exc:
        state.refuse(Notice("error", f"The drawing could not be read: {exc}"))
        return
    except UnknownModelError as exc:
        state.refuse(Notice("error", f"That model is not available: {exc}"))
        return
    except UNAVAILABLE_ERRORS:
        state.refuse(Notice("error", formatting.SERVICE_DOWN_MESSAGE))
        return
    state.serve(result, _model_input(png), slate, model)


def _model_input(png: bytes) -> np.ndarray | None:
    """The 28x28 image the model saw, made by the same preprocessing; None if unreadable."""
    try:
        return to_mnist(png)
    except (EmptyDrawingError, InvalidImageError):
        return None


def render_result(state: PageState, *, waiting: bool) -> None:
    """The prediction on screen: digit, confidence, all ten probabilities and the model input."""
    if waiting:
        st.caption("Reading the slate…")
    if state.notice is not None:
        _show(state.notice)
    result = state.result
    if result is None:
        if state.notice is None and not waiting:
            st.caption("The prediction appears here.")
        return
    st.subheader(formatting.prediction_line(result))
    st.markdown(f"**{formatting.confidence_line(result)}**")
    note = formatting.uncertainty_note(result)
    if note:
        st.warning(note, icon=":material/help:")
    if not result.logged:
        st.warning(formatting.DELAYED_MESSAGE, icon=":material/schedule:")
    st.bar_chart(
        {"digit": [str(d) for d in range(10)], "probability": result.probabilities},
        x="digit",
        y="probability",
        height=180,
    )
    if state.preview is not None:
        st.image(_upscaled(state.preview), caption="What the model saw (28×28)")
    st.caption(f"Model {formatting.model_label(result)} · {result.latency_ms:.0f} ms")


def _upscaled(image: np.ndarray) -> Image.Image:
    pixels = (np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="L").resize(
        (PREVIEW_SIZE_PX, PREVIEW_SIZE_PX), Image.Resampling.NEAREST
    )


def render_feedback(state: PageState, client: DigitClient) -> None:
    """One-click digits and a typed correction, both tied to the prediction on screen."""
    st.subheader("Feedback")
    result = state.result
    if result is None:
        st.caption("Predict a digit first, then confirm or correct it here.")
        return
    st.caption("Which digit did you draw? One click records it; click another to change it.")
    for digit, column in enumerate(st.columns(10)):
        column.button(
            str(digit),
            key=f"digit-{digit}",
            type="primary" if result.actual == digit else "secondary",
            on_click=_send_feedback,
            args=(state, client, digit),
            width="stretch",
        )
    st.text_input("Correct digit if incorrect:", key=FEEDBACK_TEXT_KEY, placeholder="0-9")
    st.button(
        "Submit Feedback", key="submit_feedback", on_click=_submit_typed, args=(state, client)
    )
    if state.feedback_notice is not None:
        _show(state.feedback_notice)


def _submit_typed(state: PageState, client: DigitClient) -> None:
    digit = formatting.parse_digit(str(st.session_state.get(FEEDBACK_TEXT_KEY, "")))
    if digit is None:
        state.feedback_notice = Notice("error", formatting.INVALID_DIGIT_MESSAGE)
        return
    _send_feedback(state, client, digit)


def _send_feedback(state: PageState, client: DigitClient, digit: int) -> None:
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
    except UNAVAILABLE_ERRORS:
        state.feedback_notice = Notice("warning", formatting.FEEDBACK_DOWN_MESSAGE)
        return
    state.result = updated
    thanks = formatting.feedback_thanks(updated)
    if updated.logged:
        state.feedback_notice = Notice("success", thanks)
    else:
        state.feedback_notice = Notice("warning", f"{thanks} {formatting.DELAYED_MESSAGE}")
    st.session_state[FEEDBACK_TEXT_KEY] = ""


def render_examples() -> None:
    """Real MNIST digits, so people draw the way the model learned."""
    st.subheader("Example Drawing from Training Data")
    path = examples_path()
    if path.is_file():
        # Three fifths of the page on a wide screen (the sheet is tall), all of it on a phone.
        sheet_column, _ = st.columns([3, 2])
        sheet_column.image(
            str(path),
            caption="Digits from the MNIST training set: large, centred, one stroke.",
            width="stretch",
        )
    else:
        st.info("No example sheet yet: `digitrec examples` draws one from the MNIST training set.")


def render_history(client: DigitClient, session_id: str) -> None:
    """This session's predictions, newest first, and its running totals."""
    st.subheader("Previous Predictions")
    try:
        page = client.history(session_id, limit=HISTORY_LIMIT)
        stats = client.stats(session_id)
    except UNAVAILABLE_ERRORS:
        st.warning(formatting.HISTORY_DOWN_MESSAGE, icon=":material/cloud_off:")
        return
    if page.count:
        st.dataframe(
            formatting.history_rows(page.data, page.count),
            hide_index=True,
            column_order=formatting.HISTORY_COLUMNS,
        )
    else:
        st.caption("No predictions in this session yet.")
    st.markdown(formatting.stats_line(stats))
    st.caption(formatting.feedback_line(stats))
    if stats.pending_writes:
        st.caption(f"{stats.pending_writes} writes are waiting for the database.")
    st.caption("Bookmark this page's address to come back to this session's history.")


def _show(notice: Notice) -> None:
    show = {"info": st.info, "success": st.success, "warning": st.warning, "error": st.error}
    show.get(notice.level, st.info)(notice.text)
