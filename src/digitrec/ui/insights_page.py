"""The Insights page: what people's labels say about the models, and the model registry.

A session sees its own drawings (the session in the URL, as on the Draw page); an operator
who enters the admin token sees every session's.
"""

from __future__ import annotations

import base64
import io
import secrets
from collections.abc import Sequence
from typing import Any

import streamlit as st
from PIL import Image

from digitrec.config import Settings, get_settings
from digitrec.contract import ForbiddenError, UnauthorizedError
from digitrec.schemas import CorrectionPublic, InsightsPublic, VersionSummaryPublic
from digitrec.ui import charts
from digitrec.ui.client import UNAVAILABLE_ERRORS, DigitClient
from digitrec.ui.page import cached_client
from digitrec.ui.state import PageState

TITLE = "Insights"
ADMIN_TOKEN_KEY = "admin_token"
CORRECTION_COLUMNS = 6  # drawings a row
CORRECTION_SIZE_PX = 112  # the 28x28 model input, shown 4x
VERDICTS = {True: "passed", False: "failed", None: ""}  # all gates held; None: no verdict

NO_LABELS_MESSAGE = (
    "No labelled drawings yet. Draw a digit on the Draw page, press Predict, then confirm or "
    "correct it: accuracy, the confusion matrix and the corrections fill in from your labels."
)
NO_CORRECTIONS_MESSAGE = "No corrections yet: the model was right about every labelled drawing."
NO_VERSIONS_MESSAGE = "The model registry holds no versions yet: the model files serve alone."
DOWN_MESSAGE = "Insights cannot be shown: the database cannot be reached right now."
TOKEN_OFF_MESSAGE = "Views across sessions are off: DIGITREC_ADMIN_TOKEN is not set."
TOKEN_WRONG_MESSAGE = "That is not the admin token; showing this session only."


class AdminRefused(Exception):
    """The token entered does not open the view across sessions."""


def main() -> None:
    """Draw the page once; Streamlit reruns it on every interaction."""
    st.set_page_config(page_title=TITLE, page_icon=":material/insights:")
    st.title(TITLE)
    settings = get_settings()
    client = cached_client(settings.model_dump_json())
    session_id = PageState(st.session_state).session_id(st.query_params)
    token = _render_sidebar()
    try:
        insights = _fetch(client, settings, session_id, token)
    except AdminRefused as refused:
        st.error(str(refused), icon=":material/lock:")
        insights = None
    except UNAVAILABLE_ERRORS:
        st.warning(DOWN_MESSAGE, icon=":material/cloud_off:")
        return
    if insights is None:  # fall back to the session's own view
        try:
            insights = client.insights(session_id)
        except UNAVAILABLE_ERRORS:
            st.warning(DOWN_MESSAGE, icon=":material/cloud_off:")
            return
    render_insights(insights)


def _render_sidebar() -> str:
    """The operator's admin token field; returns what was entered ("" for none)."""
    with st.sidebar:
        st.header("Operator")
        token = st.text_input(
            "Admin token",
            type="password",
            key=ADMIN_TOKEN_KEY,
            help="With the service's admin token, the page shows every session's drawings.",
        )
    return str(token).strip()


def _fetch(client: DigitClient, settings: Settings, session_id: str, token: str) -> InsightsPublic:
    """This session's insights; every session's when `token` is the admin token."""
    if not token:
        return client.insights(session_id)
    if settings.api_url:  # the service checks the token
        from digitrec.api.client import ApiClient

        key = settings.api_key.get_secret_value() if settings.api_key else None
        with ApiClient(
            settings.api_url,
            timeout_s=settings.request_timeout_s,
            api_key=key,
            admin_token=token,
        ) as admin:
            try:
                return admin.insights(None)
            except ForbiddenError as exc:
                raise AdminRefused(TOKEN_OFF_MESSAGE) from exc
            except UnauthorizedError as exc:
                raise AdminRefused(TOKEN_WRONG_MESSAGE) from exc
    if settings.admin_token is None:
        raise AdminRefused(TOKEN_OFF_MESSAGE)
    expected = settings.admin_token.get_secret_value().encode()
    if not secrets.compare_digest(token.encode(), expected):  # constant time, as the API
        raise AdminRefused(TOKEN_WRONG_MESSAGE)
    return client.insights(None)


def render_insights(insights: InsightsPublic) -> None:
    """Every section of the page, from one answer of the service."""
    if insights.session_id is None:
        st.success("Every session's drawings (operator view).", icon=":material/groups:")
    else:
        st.caption("This session's drawings. Bookmark the address to come back to them.")
    _render_totals(insights)
    if insights.labelled:
        digit_column, confusion_column = st.columns(2, gap="large")
        with digit_column:
            st.subheader("Accuracy per digit")
            st.altair_chart(charts.per_digit_accuracy(insights.per_digit), width="stretch")
        with confusion_column:
            st.subheader("Confusion matrix")
            st.altair_chart(charts.confusion_heatmap(insights.confusion), width="stretch")
        st.subheader("Accuracy over time")
        chart = charts.accuracy_over_time(
            insights.accuracy_over_time, insights.promotions, insights.period
        )
        st.altair_chart(chart, width="stretch")
        st.caption(
            f"Over labelled drawings, per {insights.period} they were predicted in. Dashed "
            "lines: a new champion in the model registry (hover for who and why)."
        )
    else:
        st.info(NO_LABELS_MESSAGE, icon=":material/draw:")
    st.subheader("Latest corrections")
    render_corrections(insights.corrections)
    st.subheader("Model versions")
    render_versions(insights.versions)


def _render_totals(insights: InsightsPublic) -> None:
    predictions, labelled, corrected, accuracy = st.columns(4)
    predictions.metric("Predictions", insights.predictions)
    labelled.metric("Labelled", insights.labelled)
    corrected.metric("Corrected", insights.corrected)
    right = insights.labelled - insights.corrected
    accuracy.metric(
        "Accuracy on labelled",
        f"{right / insights.labelled:.1%}" if insights.labelled else "n/a",
    )


def render_corrections(corrections: Sequence[CorrectionPublic]) -> None:
    """The latest corrected drawings as the model saw them, each with predicted → drawn."""
    if not corrections:
        st.caption(NO_CORRECTIONS_MESSAGE)
        return
    st.caption("The 28×28 image the model saw, with what it predicted → what was drawn.")
    for start in range(0, len(corrections), CORRECTION_COLUMNS):
        row = corrections[start : start + CORRECTION_COLUMNS]
        for column, correction in zip(st.columns(CORRECTION_COLUMNS), row, strict=False):
            column.image(
                _enlarged(correction.image_png),
                caption=correction_caption(correction),
                output_format="PNG",  # lossless: JPEG would blur the pixels
            )


def correction_caption(correction: CorrectionPublic) -> str:
    """`predicted 7 → 1`: what the model said, then the person's digit."""
    return f"predicted {correction.prediction} → {correction.actual}"


def _enlarged(image_png_b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(image_png_b64)))
    size = (CORRECTION_SIZE_PX, CORRECTION_SIZE_PX)
    return image.resize(size, Image.Resampling.NEAREST)  # sharp pixels, as the model saw them


def render_versions(versions: Sequence[VersionSummaryPublic]) -> None:
    """Every registry version: its standing, who set it and why, its accuracy; then each
    version's gate readings."""
    if not versions:
        st.caption(NO_VERSIONS_MESSAGE)
        return
    st.dataframe(version_rows(versions), hide_index=True)
    for version in versions:
        if version.gates:
            verdict = VERDICTS[version.gates_passed]
            with st.expander(f"Gates of {version.name} v{version.version}: {verdict}"):
                st.markdown("\n".join(f"- {gate_line(reading)}" for reading in version.gates))


def version_rows(versions: Sequence[VersionSummaryPublic]) -> list[dict[str, Any]]:
    """Table rows, one per version, as the registry lists them (by name, newest first)."""
    return [
        {
            "Model": v.name,
            "Version": v.version,
            "Status": v.status,
            "Since (UTC)": v.status_changed_at.strftime("%Y-%m-%d %H:%M"),
            "By": v.status_by,
            "Why": v.status_reason,
            "Accuracy": ", ".join(
                f"{name} {value:.2%}" for name, value in v.accuracy.items() if value is not None
            ),
            "Gates": VERDICTS[v.gates_passed],
        }
        for v in versions
    ]


def gate_line(reading: str) -> str:
    """A gate's reading with a mark for pass or fail (markdown)."""
    if reading.rstrip().endswith("pass"):
        return f":green[:material/check_circle:] {reading}"
    if reading.rstrip().endswith("fail"):
        return f":red[:material/cancel:] {reading}"
    return reading


if __name__ == "__main__":
    main()
