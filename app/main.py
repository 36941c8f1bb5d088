"""The FastAPI application: ``create_app()`` builds it, its lifespan loads and checks the models.

Nothing happens at import time. ``create_app(settings)`` wires routers, error handlers, CORS and the
JWT verifier; the lifespan then loads the clinical models (sha256-checked: a missing or corrupt
artifact stops start-up, loudly), builds and starts the analysis service (embedded: SQLite and an
in-process worker; scale: PostgreSQL and the durable queue) and publishes model versions as metrics.
Tests pass their own ``analysis`` / ``clinical`` / ``gather`` collaborators; the app starts and closes
the analysis service either way (it owns its worker's lifetime).
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.api.errors import install_error_handlers
from app.api.routes import cds_services, operations
from app.api.runtime import Runtime
from app.api.security import build_verifier
from app.api.services import SERVICES_BY_ID
from app.log import get_logger
from app.metrics import HOOK_DURATION, HOOK_REQUESTS, set_model_versions
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.analysis import AnalysisService
    from app.api.hook_flow import Gatherer
    from app.clinical import ClinicalModels

log = get_logger(__name__)


class HookMetricsMiddleware:
    """Times every ``POST /cds-services/{id}`` (the whole call, authentication included) and starts each
    request with a clean logging context, so the hookInstance bound by the route is its correlation id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        parts = scope["path"].strip("/").split("/")
        if scope["method"] != "POST" or len(parts) != 2 or parts[0] != "cds-services":
            await self.app(scope, receive, send)
            return
        service = parts[1] if parts[1] in SERVICES_BY_ID else "unknown"
        status = 500
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            HOOK_DURATION.labels(service=service).observe(time.perf_counter() - start)
            HOOK_REQUESTS.labels(service=service, status=str(status)).inc()


def _lifespan(clinical: ClinicalModels | None, analysis: AnalysisService | None, gather: Gatherer | None):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from app.api.hook_flow import HookFlow

        runtime: Runtime = app.state.runtime
        settings = runtime.settings
        async with AsyncExitStack() as stack:
            models = clinical
            if models is None:
                from app.clinical import load_clinical_models

                models = load_clinical_models(settings.model_dir, settings)
            service = analysis
            if service is None:
                from app.analysis import create_analysis_service

                service = create_analysis_service(settings)
            await service.start()
            stack.push_async_callback(service.close)
            gatherer = gather
            if gatherer is None:
                from app.api.patient import study_gatherer

                gatherer = study_gatherer(settings)
            runtime.model_versions = {**_analysis_versions(service.model_key), **models.versions}
            set_model_versions(runtime.model_versions)
            runtime.flow = HookFlow(settings=settings, analysis=service, clinical=models, gather=gatherer)
            if runtime.verifier is not None:
                stack.push_async_callback(runtime.verifier.aclose)
            log.info("service.started", models=runtime.model_versions, auth=runtime.verifier is not None)
            # What start-up built (modules, models, schemas) lives as long as the app: kept out of the
            # garbage collector's full passes, which otherwise rescan it and pause a loaded worker
            # ~0.2 s at a time (measured on the distinct-patient benchmark).
            gc.freeze()
            stack.callback(gc.unfreeze)
            yield
            runtime.flow = None

    return lifespan


def _analysis_versions(model_key: str) -> dict[str, str]:
    """``"a=1.0;b=2"`` (the analysis service's model key) -> ``{"a": "1.0", "b": "2"}``."""
    return dict(part.split("=", 1) for part in model_key.split(";") if "=" in part)


def create_app(settings: Settings | None = None, *, analysis: AnalysisService | None = None,
               clinical: ClinicalModels | None = None, gather: Gatherer | None = None) -> FastAPI:
    """The msk-cds service. Collaborators not given are built by the lifespan from the settings."""
    settings = settings or get_settings()
    app = FastAPI(title="msk-cds", version=__version__, lifespan=_lifespan(clinical, analysis, gather),
                  description="CDS Hooks 2.0 services for knee MRI: worklist triage and OA / TKR risk.")
    verifier = build_verifier(settings) if settings.auth_required else None
    app.state.runtime = Runtime(settings=settings, verifier=verifier)
    install_error_handlers(app)
    app.include_router(cds_services.router)
    app.include_router(operations.router)
    if settings.cors_allow_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_credentials=False,
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
                           max_age=600)
    app.add_middleware(HookMetricsMiddleware)
    return app
