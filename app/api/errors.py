"""Errors at the HTTP edge: FHIR OperationOutcome bodies, and no internal detail in any of them.

Authentication failures get a bare 401 (with ``WWW-Authenticate: Bearer``): a caller learns nothing
about which check failed. Everything else answers with an R4 ``OperationOutcome`` whose diagnostics
say what the caller can fix, never a stack trace, file path or upstream response. Validation messages
name the offending JSON location but never echo the submitted value (it may be patient data).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.log import get_logger

log = get_logger(__name__)

FHIR_JSON = "application/fhir+json"


class ApiError(Exception):
    """An error answer: HTTP status, FHIR issue type (``invalid``, ``forbidden``, ...) and diagnostics."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics


class Unauthenticated(Exception):
    """Answered with a bare 401; the reason was already logged and counted."""


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    """An R4 OperationOutcome with one issue."""
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


def outcome_response(status: int, code: str, diagnostics: str) -> JSONResponse:
    return JSONResponse(operation_outcome(code, diagnostics), status_code=status, media_type=FHIR_JSON)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def validation_diagnostics(errors: list[dict[str, Any]]) -> str:
    """``"context.userId: must be ...; hookInstance: ..."`` from pydantic errors, without their input values."""
    return "; ".join(f"{_location(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in errors)


_ISSUE_BY_STATUS = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
                    412: "required", 415: "not-supported", 422: "invalid"}


def install_error_handlers(app: FastAPI) -> None:
    """Map every error the edge can meet to its answer."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return outcome_response(error.status, error.code, error.diagnostics)

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_request: Request, _error: Unauthenticated) -> Response:
        return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="cds-services"'})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        return outcome_response(400, "invalid", validation_diagnostics(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 401:
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="cds-services"'})
        code = _ISSUE_BY_STATUS.get(error.status_code, "processing")
        return outcome_response(error.status_code, code, str(error.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("request.failed", path=request.url.path, error=type(error).__name__, exc_info=error)
        return outcome_response(500, "exception", "internal error; the service log has the details")
