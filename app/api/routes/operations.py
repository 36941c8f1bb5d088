"""Operations endpoints: liveness, readiness, Prometheus metrics, model cards."""

from __future__ import annotations

import re
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from app.api.deps import RuntimeDep
from app.api.errors import ApiError
from app.metrics import CONTENT_TYPE, exposition, set_queue_depth

router = APIRouter(tags=["Operations"])
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@router.get("/health", summary="Liveness: the process answers")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/ready", summary="Readiness: models loaded, result store and queue reachable")
async def ready(runtime: RuntimeDep) -> JSONResponse:
    checks = {"models": "ok" if runtime.model_versions else "not loaded"}
    if runtime.analysis is not None:
        checks.update(await runtime.analysis.readiness())
    else:
        checks["analysis"] = "not started"
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    if runtime.analysis is not None:
        set_queue_depth(await runtime.analysis.queue_depth())
    return Response(exposition(), media_type=CONTENT_TYPE)


@router.get("/model-cards", summary="The model cards of the loaded models", response_class=HTMLResponse)
async def model_cards(runtime: RuntimeDep) -> HTMLResponse:
    items = "".join(f'<li><a href="model-cards/{escape(name)}">{escape(name)}</a> {escape(version)}</li>'
                    for name, version in sorted(runtime.model_versions.items()))
    return HTMLResponse(f"<!doctype html><title>msk-cds model cards</title><h1>Model cards</h1><ul>{items}</ul>")


@router.get("/model-cards/{model_id}", summary="One model card (Markdown)", response_class=PlainTextResponse)
async def model_card(model_id: str, runtime: RuntimeDep) -> PlainTextResponse:
    card = runtime.settings.model_dir / model_id / "README.md"
    if not _MODEL_ID.match(model_id) or not card.is_file():
        raise ApiError(404, "not-found", f"no model card for {model_id!r}")
    return PlainTextResponse(card.read_text(encoding="utf-8"), media_type="text/markdown; charset=utf-8")
