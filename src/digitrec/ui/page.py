"""The Draw page: draw a digit, see it recognised, confirm or correct it (``digitrec app``)."""

from __future__ import annotations

import functools
from importlib import resources

import streamlit as st

from digitrec.config import Settings, get_settings
from digitrec.ui import reading, sections
from digitrec.ui.client import DigitClient, make_client
from digitrec.ui.slate import render_slate
from digitrec.ui.state import PageState

TITLE = "Handwritten Digit Recognition"


@st.cache_resource(show_spinner="Loading the model…")
def cached_client(settings_json: str) -> DigitClient:
    """The pages' client, built once per configuration and shared by every browser session."""
    # Keyed by the settings, so one process serving several configurations keeps them apart.
    return make_client(Settings.model_validate_json(settings_json))


@functools.cache
def _page_style() -> str:
    """The page's stylesheet as a <style> element: read from the package once per process."""
    return f"<style>{resources.files(__package__).joinpath('page.css').read_text()}</style>"


def main() -> None:
    """Draw the page once; Streamlit reruns it when the model changes or the page reloads."""
    st.set_page_config(page_title=TITLE, page_icon=":material/draw:")
    st.html(_page_style())
    st.title(TITLE, anchor=False)  # no hover-only anchor link: nothing focusable is hidden
    settings = get_settings()
    client = cached_client(settings.model_dump_json())
    state = PageState(st.session_state)
    state.forget_history()  # a whole page run reads it anew (another tab may have logged)
    session_id = state.session_id(st.query_params)
    model = sections.render_sidebar(client, settings, state)
    render_reading(state, client, session_id=session_id, model=model)
    sections.render_examples()


@st.fragment
def render_reading(state: PageState, client: DigitClient, *, session_id: str, model: str) -> None:
    """The slate, its result, the feedback and the history: a press or a feedback click reruns
    only these, not the sidebar or the example sheet. The history comes last, once the result
    is on its way to the browser."""
    slate_column, result_column = st.columns(2, gap="large")
    with slate_column:
        st.caption("Draw one digit, large and centred, then press Predict.")
        events = render_slate(key="slate", repredict=state.repredict)
    if events.cleared:
        state.clear_slate()
    reading.serve_press(state, client, events.press, session_id=session_id, model=model)
    with result_column:
        reading.render_result(state, model)
        reading.render_comparison(state, client, model)
    reading.render_feedback(state, client, model)
    sections.render_history(client, session_id, state)


if __name__ == "__main__":
    main()
