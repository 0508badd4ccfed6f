"""The Draw page: draw a digit, see it recognised, confirm or correct it (``digitrec app``)."""

from __future__ import annotations

import time

import streamlit as st

from digitrec.config import Settings, get_settings
from digitrec.ui import sections
from digitrec.ui.client import DigitClient, make_client
from digitrec.ui.state import PENDING_POLL_S, Action, PageState

TITLE = "Handwritten Digit Recognition"


@st.cache_resource(show_spinner="Loading the model…")
def cached_client(settings_json: str) -> DigitClient:
    """The pages' client, built once per configuration and shared by every browser session."""
    # Keyed by the settings, so one process serving several configurations keeps them apart.
    return make_client(Settings.model_validate_json(settings_json))


def main() -> None:
    """Draw the page once; Streamlit reruns it on every interaction."""
    st.set_page_config(page_title=TITLE, page_icon=":material/draw:")
    st.title(TITLE)
    settings = get_settings()
    client = cached_client(settings.model_dump_json())
    state = PageState(st.session_state)
    session_id = state.session_id(st.query_params)
    model = sections.render_sidebar(client, settings)

    slate_column, result_column = st.columns(2, gap="large")
    with slate_column:
        slate, clicked = sections.render_slate(state)
    if clicked:
        state.request_predict(time.monotonic())
    action = sections.serve_predict(state, client, slate, session_id=session_id, model=model)
    with result_column:
        sections.render_result(state, waiting=action is Action.WAIT)

    sections.render_feedback(state, client)
    sections.render_examples()
    sections.render_history(client, session_id)

    if action is Action.WAIT:
        _rerun_when_wait_is_over(state)


@st.fragment(run_every=PENDING_POLL_S)
def _rerun_when_wait_is_over(state: PageState) -> None:
    # The drawing, if there is one, reruns the page itself as soon as it arrives; this timer
    # only matters when none comes (an empty slate, or the drawing already predicted).
    if state.wait_over(time.monotonic()):
        st.rerun(scope="app")


if __name__ == "__main__":
    main()
