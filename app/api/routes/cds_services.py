"""CDS Hooks endpoints: discovery, service calls and feedback (CDS Hooks 2.0)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from app.api.deps import DiscoveryCaller, FeedbackCaller, FlowDep, ServiceCaller, SettingsDep
from app.api.errors import ApiError, validation_diagnostics
from app.api.security import check_fhir_server
from app.api.services import DISCOVERY_JSON, SERVICES_BY_ID
from app.api.upstream import translate_upstream
from app.log import get_logger
from app.metrics import FEEDBACK
from cds_hooks import CdsRequest, FeedbackRequest, parse_context

router = APIRouter(tags=["CDS Hooks"])
log = get_logger(__name__)


def _service(service_id: str) -> Any:
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise ApiError(404, "not-found", f"no CDS Service {service_id!r}; GET /cds-services lists them")
    return service


@router.get("/cds-services", summary="Discovery: the CDS Services offered")
async def discovery(_caller: DiscoveryCaller) -> JSONResponse:
    return JSONResponse(DISCOVERY_JSON)


@router.post("/cds-services/{service_id}", summary="Call a CDS Service")
async def call_service(service_id: str, body: CdsRequest, _caller: ServiceCaller, settings: SettingsDep,
                       flow: FlowDep) -> JSONResponse:
    service = _service(service_id)
    structlog.contextvars.bind_contextvars(hook_instance=body.hook_instance, service_id=service_id)
    if body.hook != service.hook:
        raise ApiError(400, "invalid", f"service {service_id!r} answers the {service.hook!r} hook, not {body.hook!r}")
    check_fhir_server(settings, body.fhir_server)
    try:
        context = parse_context(body.hook, body.context)
    except ValidationError as error:
        diagnostics = validation_diagnostics([{**e, "loc": ("context", *e["loc"])} for e in error.errors()])
        raise ApiError(400, "invalid", diagnostics) from None
    with translate_upstream():
        response = await flow.answer(service_id, body, context)
    log.info("hook.answered", cards=len(response.cards), indicators=[c.indicator for c in response.cards])
    return JSONResponse(response.to_json())


@router.post("/cds-services/{service_id}/feedback", summary="Feedback on the cards of a CDS Service")
async def feedback(service_id: str, body: FeedbackRequest, _caller: FeedbackCaller, flow: FlowDep) -> Response:
    _service(service_id)
    from app.analysis import FeedbackRecord, OverrideReasonCode

    try:
        records = [FeedbackRecord(
            card=item.card, outcome=item.outcome, outcome_timestamp=item.outcome_timestamp,
            accepted_suggestions=[s.id for s in item.accepted_suggestions or []],
            override_reason=OverrideReasonCode(system=item.override_reason.reason.system,
                                               code=item.override_reason.reason.code)
            if item.override_reason and item.override_reason.reason else None,
        ) for item in body.feedback]
    except ValidationError as error:
        raise ApiError(400, "invalid", validation_diagnostics(list(error.errors()))) from None
    for record in records:
        await flow.analysis.record_feedback(service_id, record)
        FEEDBACK.labels(service=service_id, outcome=record.outcome).inc()
    log.info("feedback.recorded", items=len(records))
    return Response(status_code=200)
