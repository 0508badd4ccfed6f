"""The Insights page in Streamlit's AppTest: a session's own plots and corrections, the
operator's view with the admin token, in-process and over the model service."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from credentials import ADMIN_TOKEN
from drawing import draw_digit
from page_driver import texts
from streamlit.testing.v1 import AppTest

from digitrec.config import Settings, get_settings
from digitrec.schemas import new_session_id
from digitrec.service import PredictionService
from digitrec.ui import insights_page
from digitrec.ui.insights_page import NO_LABELS_MESSAGE, TOKEN_OFF_MESSAGE, TOKEN_WRONG_MESSAGE

INSIGHTS_PATH = Path(insights_page.__file__)
RUN_TIMEOUT_S = 60


@pytest.fixture
def open_insights(page_settings: Callable[[str], Settings]) -> Callable[[str], AppTest]:
    """The Insights page after its first run, for the session in its URL."""

    def open_page(session: str) -> AppTest:
        at = AppTest.from_file(str(INSIGHTS_PATH), default_timeout=RUN_TIMEOUT_S)
        at.query_params["session"] = session
        return at.run()

    return open_page


@pytest.fixture
def admin_token_set(
    monkeypatch: pytest.MonkeyPatch, page_settings: Callable[[str], Settings]
) -> None:
    """The deployment has an admin token (set before the service or page reads settings)."""
    monkeypatch.setenv("DIGITREC_ADMIN_TOKEN", ADMIN_TOKEN)
    get_settings.cache_clear()


@dataclass(frozen=True)
class TwoSessions:
    alice: str
    bob: str
    alice_caption: str  # of Alice's one corrected drawing


@pytest.fixture
def two_sessions(page_service: Callable[[], PredictionService]) -> TwoSessions:
    """Alice confirms three predictions and corrects a fourth; Bob corrects his one."""
    service = page_service()
    alice, bob = new_session_id(), new_session_id()
    for digit in (1, 7, 0):
        shown = service.predict(draw_digit(digit), session_id=alice)
        service.submit_feedback(shown.id, shown.prediction, session_id=alice)
    wrong = service.predict(draw_digit(7), session_id=alice)
    actual = (wrong.prediction + 1) % 10
    service.submit_feedback(wrong.id, actual, session_id=alice)
    bobs = service.predict(draw_digit(1), session_id=bob)
    service.submit_feedback(bobs.id, (bobs.prediction + 2) % 10, session_id=bob)
    return TwoSessions(alice, bob, f"predicted {wrong.prediction} → {actual}")


def charts(at: AppTest) -> list[dict[str, object]]:
    """The Vega-Lite specs of the page's Altair charts."""
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def marks(spec: dict[str, object]) -> set[str]:
    """The mark types of a chart, its layers' included."""
    found: set[str] = set()
    for part in [spec, *spec.get("layer", [])]:  # type: ignore[list-item]
        mark = part.get("mark")
        if mark is not None:
            found.add(mark["type"] if isinstance(mark, dict) else mark)
    return found


def drawings(at: AppTest) -> list[str]:
    """The captions of the corrected drawings on the page."""
    return [caption for image in at.get("image") for caption in image.captions]


def test_insights_page_says_what_to_do_when_nothing_is_labelled(
    open_insights: Callable[[str], AppTest],
) -> None:
    at = open_insights(new_session_id())
    assert not at.exception
    assert at.title[0].value == "Insights"
    assert NO_LABELS_MESSAGE in texts(at)
    assert charts(at) == [] and drawings(at) == []
    assert insights_page.NO_CORRECTIONS_MESSAGE in texts(at)


def test_insights_page_plots_a_sessions_labels_and_shows_only_its_corrections(
    open_insights: Callable[[str], AppTest], two_sessions: TwoSessions
) -> None:
    alice = two_sessions.alice
    at = open_insights(alice)

    assert not at.exception
    assert [m.value for m in at.metric] == ["4", "4", "1", "75.0%"]
    assert [marks(spec) for spec in charts(at)] == [
        {"bar", "text"},
        {"rect", "text"},
        {"line", "rule"},
    ]
    assert drawings(at) == [two_sessions.alice_caption]
    assert at.query_params["session"] == alice
    assert "operator view" not in texts(at)


def test_the_admin_token_opens_every_sessions_drawings(
    admin_token_set: None,
    open_insights: Callable[[str], AppTest],
    two_sessions: TwoSessions,
) -> None:
    alice = two_sessions.alice
    at = open_insights(alice)
    assert len(drawings(at)) == 1

    at.text_input(key=insights_page.ADMIN_TOKEN_KEY).input("not-the-token").run()
    assert TOKEN_WRONG_MESSAGE in texts(at) and len(drawings(at)) == 1

    at.text_input(key=insights_page.ADMIN_TOKEN_KEY).input(ADMIN_TOKEN).run()
    assert not at.exception
    assert "Every session's drawings (operator view)." in texts(at)
    assert len(drawings(at)) == 2
    assert [m.value for m in at.metric][:3] == ["5", "5", "2"]


def test_without_an_admin_token_configured_the_operator_view_is_off(
    open_insights: Callable[[str], AppTest], two_sessions: TwoSessions
) -> None:
    alice = two_sessions.alice
    at = open_insights(alice)
    at.text_input(key=insights_page.ADMIN_TOKEN_KEY).input("anything").run()
    assert TOKEN_OFF_MESSAGE in texts(at)
    assert len(drawings(at)) == 1


def test_insights_page_over_the_model_service(
    admin_token_set: None,
    api_url: str,
    monkeypatch: pytest.MonkeyPatch,
    open_insights: Callable[[str], AppTest],
    two_sessions: TwoSessions,
) -> None:
    monkeypatch.setenv("DIGITREC_API_URL", api_url)
    get_settings.cache_clear()
    alice = two_sessions.alice

    at = open_insights(alice)
    assert not at.exception
    assert len(drawings(at)) == 1 and len(charts(at)) == 3

    at.text_input(key=insights_page.ADMIN_TOKEN_KEY).input("not-the-token").run()
    assert TOKEN_WRONG_MESSAGE in texts(at) and len(drawings(at)) == 1
    at.text_input(key=insights_page.ADMIN_TOKEN_KEY).input(ADMIN_TOKEN).run()
    assert len(drawings(at)) == 2
