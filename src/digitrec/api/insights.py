"""GET /insights: what people's labels say about the models, for one session or (admin) all."""

from __future__ import annotations

from fastapi import APIRouter

from digitrec.api.access import ApiKeyDep, SessionOrAdminDep
from digitrec.api.deps import ServiceDep
from digitrec.api.routes import DENIED, UNAVAILABLE
from digitrec.schemas import InsightsPublic

router = APIRouter(dependencies=[ApiKeyDep])


@router.get("/insights", tags=["insights"], responses={**UNAVAILABLE, **DENIED})
def insights(service: ServiceDep, session_id: SessionOrAdminDep) -> InsightsPublic:
    """Per-digit accuracy, the confusion matrix and accuracy over time from this session's
    labelled predictions (every session's, for the admin, when no session is named), the
    latest corrected drawings (28x28 PNGs, base64), and every version in the model registry
    with its status and gate results."""
    return service.insights(session_id=session_id)
