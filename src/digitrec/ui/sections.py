"""The parts of the page around the slate: the model choice, the examples, the history.

The slate, its result and the feedback on it are in `digitrec.ui.reading`.
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from digitrec.config import Settings
from digitrec.ui import formatting
from digitrec.ui.client import UNAVAILABLE_ERRORS, DigitClient
from digitrec.ui.examples import examples_path
from digitrec.ui.state import PageState

HISTORY_LIMIT = 100


def render_sidebar(client: DigitClient, settings: Settings, state: PageState) -> str:
    """The model selector; returns the chosen model's name."""
    try:
        models = client.models() or [settings.default_model]
    except UNAVAILABLE_ERRORS:  # the model service is unreachable: offer the default
        models = [settings.default_model]
    default = settings.default_model if settings.default_model in models else models[0]
    with st.sidebar:
        st.header("Settings", anchor=False)
        model = st.selectbox(
            "Model",
            models,
            index=models.index(default),
            format_func=formatting.model_option,
            key="model",
            help="Which trained network reads the digit; the choice is logged with each one.",
            on_change=state.choose_model,
        )
    return str(model)


def render_examples() -> None:
    """Real MNIST digits, so people draw the way the model learned."""
    st.subheader("Example Drawing from Training Data", anchor=False)
    path = examples_path()
    if path.is_file():
        # Three fifths of the page on a wide screen (the sheet is tall), all of it on a phone.
        sheet_column, _ = st.columns([3, 2])
        sheet_column.image(
            str(path),
            caption="Digits from the MNIST training set: large, centred, one stroke.",
            alt="Handwritten digits from the MNIST training set, a row of each from 0 to 9",
            width="stretch",
        )
    else:
        st.info("No example sheet yet: `digitrec examples` draws one from the MNIST training set.")


def render_history(client: DigitClient, session_id: str, state: PageState) -> None:
    """This session's predictions, newest first, and its running totals."""
    st.subheader("Previous Predictions", anchor=False)
    try:
        # Asked again only when this page logged something since (or on a new page run): a
        # Clear, a model change or an empty slate reads no rows.
        page, stats = state.history or (
            client.history(session_id, limit=HISTORY_LIMIT),
            client.stats(session_id),
        )
        state.history = (page, stats)
    except UNAVAILABLE_ERRORS as exc:
        st.warning(formatting.unavailable_message(exc, "history"), icon=":material/cloud_off:")
        return
    if page.count:
        zone = browser_zone()
        st.dataframe(
            formatting.history_rows(page.data, page.count, zone),
            hide_index=True,
            column_order=formatting.HISTORY_COLUMNS,
            column_config={
                "Index": st.column_config.NumberColumn("#", width="small"),
                "Prediction": st.column_config.NumberColumn("Prediction", width="small"),
                "Actual": st.column_config.TextColumn("Actual", width="small"),
                "Time": st.column_config.TextColumn(f"Time ({_zone_name(zone)})"),
            },
        )
    else:
        st.caption("No predictions in this session yet.")
    st.markdown(formatting.stats_line(stats))
    st.caption(formatting.feedback_line(stats))
    if stats.pending_writes:
        st.caption(f"{stats.pending_writes} writes are waiting for the database.")
    st.caption("Bookmark this page's address to come back to this session's history.")


def browser_zone() -> tzinfo | None:
    """The browser's time zone, as it reports it; None when unknown (then times stay UTC)."""
    name = st.context.timezone
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _zone_name(zone: tzinfo | None) -> str:
    return "UTC" if zone is None else str(zone)
