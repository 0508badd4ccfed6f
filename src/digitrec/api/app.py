"""The FastAPI application factory (`uvicorn --factory digitrec.api.app:create_app`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from digitrec import __version__
from digitrec.api import insights
from digitrec.api.errors import ERROR_RESPONSES, add_exception_handlers
from digitrec.api.limits import BodyLimitMiddleware
from digitrec.api.metrics import MetricsMiddleware
from digitrec.api.routes import keyed, router
from digitrec.config import Settings, get_settings
from digitrec.contract import ERROR_CODE_HEADER, ERRORS_BY_CODE, VALIDATION_ERROR_CODE
from digitrec.service import PredictionService, build_service

logger = logging.getLogger(__name__)

# Threads per worker for the blocking handlers (feedback, history, stats, comparisons...);
# `POST /predict` runs on the event loop and needs none. Measured when predictions ran on
# them too (bench/load.py, 32 clients): 2, 4 and 8 threads cost 3.4, 3.6 and 3.7 ms of CPU per
# request; 4 keeps a slow read (stats over a large table) from stalling the others.
THREADPOOL_SIZE = 4
ERROR_CODE_NAMES = ", ".join(f"`{code}`" for code in [*ERRORS_BY_CODE, VALIDATION_ERROR_CODE])

DESCRIPTION = f"""\
Recognise a hand-drawn digit and log it. Every error answer is JSON `{{"detail": "..."}}`;
its `{ERROR_CODE_HEADER}` header names the failure ({ERROR_CODE_NAMES}).
"""


def create_app(
    settings: Settings | None = None, service: PredictionService | None = None
) -> FastAPI:
    """Build the HTTP API around a service (by default the in-process one, from settings)."""
    settings = settings or get_settings()
    owns_service = service is None
    if service is None:
        service = build_service(settings)
    app = FastAPIOffline(  # /docs and /redoc from packaged files, not a CDN
        title="digitrec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.owns_service = owns_service  # close it at shutdown only if we built it
    # Added last, runs first: every request is counted, even one refused for its size.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware)
    add_exception_handlers(app)
    app.include_router(keyed)
    app.include_router(insights.router)
    app.include_router(router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Load the model before the first request arrives, not during it.
    service: PredictionService = app.state.service
    # Fewer threads than the engine's pool (10 PostgreSQL connections a process): no request
    # waits for a connection, and fewer threads contend for the GIL (anyio's default is 40).
    to_thread.current_default_thread_limiter().total_tokens = THREADPOOL_SIZE
    try:
        checks = await run_in_threadpool(service.ready)
    except Exception:  # a failed warm-up must not stop the server; /ready reports it
        logger.exception("warm-up failed")
    else:
        logger.info("ready checks at start-up: %s", checks)
    yield
    if app.state.owns_service:
        service.close()
