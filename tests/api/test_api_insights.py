"""GET /insights: a session sees its own labels and corrections, another session sees none of
them, every session's only with the admin token; the same through ApiClient."""

from __future__ import annotations

import base64
import io

import pytest
from credentials import ADMIN, ADMIN_TOKEN, sid
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from digitrec.api.app import create_app
from digitrec.api.client import ApiClient
from digitrec.config import Settings
from digitrec.contract import ForbiddenError, UnauthorizedError
from digitrec.schemas import InsightsPublic
from digitrec.service import PredictionService

OWNER, STRANGER = sid("owner"), sid("stranger")


def _label(client: TestClient, digit_b64: str, session: str, *, corrected: bool) -> str:
    """Predict in `session` and confirm or correct it; returns the prediction's id."""
    answer = client.post("/predict", json={"image": digit_b64, "session_id": session}).json()
    actual = (answer["prediction"] + 1) % 10 if corrected else answer["prediction"]
    response = client.post(
        f"/predictions/{answer['id']}/feedback", json={"actual": actual, "session_id": session}
    )
    assert response.status_code == 200, response.text
    return str(answer["id"])


@pytest.fixture
def labelled(client: TestClient, digit_b64: str) -> dict[str, str]:
    """The owner confirms one prediction and corrects another; the stranger corrects one."""
    _label(client, digit_b64, OWNER, corrected=False)
    return {
        OWNER: _label(client, digit_b64, OWNER, corrected=True),
        STRANGER: _label(client, digit_b64, STRANGER, corrected=True),
    }


def _insights(client: TestClient, **kwargs: object) -> InsightsPublic:
    response = client.get("/insights", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return InsightsPublic.model_validate(response.json())


def test_a_session_sees_only_its_own_labels_and_corrections(
    client: TestClient, labelled: dict[str, str]
) -> None:
    mine = _insights(client, params={"session_id": OWNER})
    assert (mine.session_id, mine.predictions, mine.labelled, mine.corrected) == (OWNER, 2, 2, 1)
    assert [c.id for c in mine.corrections] == [labelled[OWNER]]
    image = Image.open(io.BytesIO(base64.b64decode(mine.corrections[0].image_png)))
    assert image.size == (28, 28)

    by_header = _insights(client, headers={"X-Session-ID": STRANGER})
    assert [c.id for c in by_header.corrections] == [labelled[STRANGER]]
    assert by_header.labelled == 1

    nobody = _insights(client, params={"session_id": sid("nobody")})
    assert (nobody.labelled, nobody.corrections, nobody.accuracy_over_time) == (0, [], [])


def test_every_sessions_insights_need_the_admin_token(
    client: TestClient, labelled: dict[str, str]
) -> None:
    assert client.get("/insights").status_code == 401
    assert client.get("/insights", headers={"Authorization": "Bearer wrong"}).status_code == 401

    everyone = _insights(client, headers=ADMIN)
    assert (everyone.session_id, everyone.labelled, everyone.corrected) == (None, 3, 2)
    assert {c.id for c in everyone.corrections} == set(labelled.values())
    # The admin may still look at one session.
    assert _insights(client, params={"session_id": OWNER}, headers=ADMIN).labelled == 2


def test_every_sessions_insights_are_off_without_a_configured_token(
    settings: Settings, service: PredictionService
) -> None:
    without = settings.model_copy(update={"admin_token": None})
    with TestClient(create_app(without, service)) as client:
        response = client.get("/insights", headers=ADMIN)
    assert response.status_code == 403


@pytest.mark.parametrize("session", ["short", "A" * 32, "../" * 11])
def test_a_malformed_session_is_refused(client: TestClient, session: str) -> None:
    assert client.get("/insights", params={"session_id": session}).status_code == 422


def test_the_api_key_closes_insights(settings: Settings, service: PredictionService) -> None:
    keyed = settings.model_copy(update={"api_key": SecretStr("page-key")})
    with TestClient(create_app(keyed, service)) as client:
        assert client.get("/insights", params={"session_id": OWNER}).status_code == 401
        answer = client.get(
            "/insights", params={"session_id": OWNER}, headers={"X-API-Key": "page-key"}
        )
        assert answer.status_code == 200


def test_the_api_client_reads_insights_as_a_session_and_as_the_admin(
    client: TestClient, labelled: dict[str, str]
) -> None:
    session_client = ApiClient("http://testserver", http=client)
    assert session_client.insights(OWNER).labelled == 2
    with pytest.raises(UnauthorizedError):
        session_client.insights(None)

    admin = ApiClient("http://testserver", http=client, admin_token=ADMIN_TOKEN)
    assert admin.insights(None).labelled == 3


def test_the_api_client_reports_the_view_switched_off(
    settings: Settings, service: PredictionService
) -> None:
    without = settings.model_copy(update={"admin_token": None})
    with TestClient(create_app(without, service)) as client:
        admin = ApiClient("http://testserver", http=client, admin_token=ADMIN_TOKEN)
        with pytest.raises(ForbiddenError):
            admin.insights(None)


def test_insights_on_each_backend(db_client: TestClient, digit_b64: str) -> None:
    corrected = _label(db_client, digit_b64, OWNER, corrected=True)
    mine = _insights(db_client, params={"session_id": OWNER})
    assert [c.id for c in mine.corrections] == [corrected]
    assert len(mine.accuracy_over_time) == 1 and mine.accuracy_over_time[0].accuracy == 0.0
    assert mine.period == "hour"
