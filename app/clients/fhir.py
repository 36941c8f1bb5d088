"""Async FHIR R4 client (httpx + ``fhir.resources.R4B`` models): read, search with paging, transactions.

Every answer is parsed into R4B models, so a malformed resource fails here, with the server named,
instead of deep inside the pipeline. 4xx answers carry the server's OperationOutcome issues in the
exception message. The client uses the bearer token it is given (a CDS Hooks request's
``fhirAuthorization.access_token``, or the service's own) and never logs it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.endpoint import Endpoint
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from app.clients.allowlist import is_allowed
from app.clients.demographics import BODY_MEASUREMENT_CODES, LOINC, demographics
from app.clients.errors import UpstreamError, UpstreamProtocolError
from app.clients.http import PooledClient, RetryPolicy, Timeouts, make_auth, request, tls_context
from app.log import get_logger
from app.settings import Settings, get_settings
from schemas.analysis import Demographics

FHIR_JSON = "application/fhir+json"
DICOM_UID_SYSTEM = "urn:dicom:uid"
log = get_logger(__name__)


def outcome_issues(payload: Any) -> list[str]:
    """Readable lines from an OperationOutcome: ``severity code: text (at expression)``."""
    if not isinstance(payload, dict) or payload.get("resourceType") != "OperationOutcome":
        return []
    lines = []
    for issue in payload.get("issue") or []:
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or ""
        where = f" (at {', '.join(issue['expression'])})" if issue.get("expression") else ""
        lines.append(f"{issue.get('severity', 'error')} {issue.get('code', '')}: {text}{where}".strip())
    return lines


def _describe_error(response: httpx.Response) -> str | None:
    try:
        issues = outcome_issues(response.json())
    except ValueError:
        return None
    return "; ".join(issues) or None


def parse_resource(payload: Any, where: str) -> Resource:
    """An R4B model for a JSON resource, or UpstreamProtocolError saying what is wrong with it."""
    resource_type = payload.get("resourceType") if isinstance(payload, dict) else None
    if not isinstance(resource_type, str):
        raise UpstreamProtocolError(f"{where}: the answer is not a FHIR resource (no resourceType)")
    try:
        model = get_fhir_model_class(resource_type)
        return model.model_validate(payload)  # type: ignore[return-value]
    except (KeyError, ValueError, ValidationError) as exc:
        raise UpstreamProtocolError(f"{where}: invalid FHIR R4 {resource_type}: {exc}") from exc


def study_instance_uid(study: ImagingStudy) -> str | None:
    """The DICOM Study Instance UID of an ImagingStudy (identifier system ``urn:dicom:uid``)."""
    for identifier in study.identifier or []:
        if identifier.system == DICOM_UID_SYSTEM and identifier.value:
            return identifier.value.removeprefix("urn:oid:")
    return None


def _as_date(value: object) -> date | None:
    """A FHIR date/dateTime as a date (None when absent or partial, e.g. ``2024-03``)."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


@dataclass(frozen=True)
class ImagingStudyRef:
    """An ImagingStudy as msk-cds uses it: which DICOM study, and the DICOMweb base that serves it."""

    fhir_id: str
    study_instance_uid: str
    started: date | None
    modalities: tuple[str, ...]
    description: str | None
    endpoint_address: str | None  # as the ImagingStudy's Endpoint says
    dicomweb_url: str | None  # the same, only when allowlisted (None: msk-cds will not fetch from there)


def imaging_study_refs(
    studies: Sequence[ImagingStudy], endpoints: Sequence[Endpoint], dicomweb_allowlist: Sequence[str]
) -> list[ImagingStudyRef]:
    """ImagingStudy resources (with their Endpoints) as references msk-cds can fetch from."""
    addresses = {f"Endpoint/{e.id}": str(e.address) for e in endpoints if e.id and e.address}
    refs = []
    for study in studies:
        uid = study_instance_uid(study)
        if uid is None or study.id is None:
            continue
        address = next(
            (addresses[ref.reference] for ref in study.endpoint or [] if ref.reference in addresses),
            None,
        )
        allowed = address if address is not None and is_allowed(address, dicomweb_allowlist) else None
        if address is not None and allowed is None:
            log.warning("fhir.endpoint_not_allowlisted", imaging_study=study.id)
        refs.append(
            ImagingStudyRef(
                fhir_id=study.id,
                study_instance_uid=uid,
                started=_as_date(study.started),
                modalities=tuple(str(c.code) for c in study.modality or [] if c.code),
                description=study.description,
                endpoint_address=address,
                dicomweb_url=allowed,
            )
        )
    return refs


class FhirClient(PooledClient):
    """One FHIR R4 server (base URL such as ``https://ehr.example/fhir/R4``), as an async context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_pages: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.max_pages = max_pages
        self._client = httpx.AsyncClient(
            auth=make_auth(token=token),
            timeout=(timeouts or Timeouts()).httpx(),
            headers={"Accept": FHIR_JSON, "Accept-Encoding": "gzip, deflate"},
            transport=transport,
            verify=tls_context(),
        )

    @classmethod
    def from_settings(cls, settings: Settings, base_url: str | None = None, token: str | None = None) -> FhirClient:
        """A client of ``base_url`` (default: MSKCDS_FHIR_URL) with ``token`` (default: MSKCDS_FHIR_TOKEN)."""
        url = base_url or settings.fhir_url
        if not url:
            raise ValueError("no FHIR server URL: give one or set MSKCDS_FHIR_URL")
        return cls(
            url,
            token=settings.fhir_token.get_secret_value() if token is None else token,
            timeouts=Timeouts.from_settings(settings),
            retry=RetryPolicy.from_settings(settings),
            max_pages=settings.fhir_max_pages,
        )

    async def _send(self, method: str, url: str, what: str, **kwargs: Any) -> Resource:
        async def consume(response: httpx.Response) -> Resource:
            await response.aread()
            try:
                payload = response.json()
            except ValueError as exc:
                raise UpstreamProtocolError(f"{what}: the answer from {self.base_url} is not JSON") from exc
            return parse_resource(payload, f"{what} at {self.base_url}")

        return await request(
            self._client, method, url, what=what, consume=consume, retry=self.retry,
            describe_error=_describe_error, **kwargs,
        )  # fmt: skip

    async def read(self, resource_type: str, resource_id: str) -> Resource:
        """``GET [base]/[type]/[id]``."""
        return await self._send("GET", f"{self.base_url}/{resource_type}/{resource_id}", f"FHIR read {resource_type}")

    async def search_bundles(self, resource_type: str, params: dict[str, str]) -> list[Bundle]:
        """``GET [base]/[type]?params``, following ``next`` links for at most ``max_pages`` pages."""
        what = f"FHIR search {resource_type}"
        pages: list[Bundle] = []
        url: str | None = f"{self.base_url}/{resource_type}"
        query: dict[str, str] | None = params
        while url is not None:
            if len(pages) == self.max_pages:
                raise UpstreamError(
                    f"{what}: more than {self.max_pages} pages of results at {self.base_url}; narrow the search "
                    "or raise MSKCDS_FHIR_MAX_PAGES"
                )
            page = await self._send("GET", url, what, params=query)
            if not isinstance(page, Bundle):
                raise UpstreamProtocolError(f"{what}: expected a Bundle, got {page.__resource_type__}")
            pages.append(page)
            url = next((link.url for link in page.link or [] if link.relation == "next"), None)
            query = None  # the next link carries the query
        return pages

    async def search(self, resource_type: str, params: dict[str, str]) -> list[Resource]:
        """Every matching resource (``search.mode`` match; included resources are left out)."""
        return [
            entry.resource
            for page in await self.search_bundles(resource_type, params)
            for entry in page.entry or []
            if entry.resource is not None and (entry.search is None or entry.search.mode in (None, "match"))
        ]

    async def transaction(self, bundle: Bundle) -> Bundle:
        """POST a transaction Bundle; returns the transaction-response. All or nothing, by the server."""
        if bundle.type != "transaction":
            raise ValueError(f"expected a transaction Bundle, got type {bundle.type!r}")
        body = json.dumps(json.loads(bundle.model_dump_json(exclude_none=True)))
        response = await self._send(
            "POST", self.base_url, "FHIR transaction", content=body, headers={"Content-Type": FHIR_JSON}
        )
        if not isinstance(response, Bundle) or response.type != "transaction-response":
            raise UpstreamProtocolError(
                f"FHIR transaction at {self.base_url}: the answer is not a transaction-response"
            )
        return response

    # --- what msk-cds reads ---------------------------------------------------------------------------

    async def patient(self, patient_id: str) -> Patient:
        patient = await self.read("Patient", patient_id)
        assert isinstance(patient, Patient)
        return patient

    async def body_measurements(self, patient_id: str) -> list[Observation]:
        """Body weight, height and BMI Observations of the patient (every page)."""
        codes = ",".join(f"{LOINC}|{code}" for code in BODY_MEASUREMENT_CODES)
        found = await self.search("Observation", {"subject": f"Patient/{patient_id}", "code": codes, "_count": "100"})
        return [o for o in found if isinstance(o, Observation)]

    async def demographics(self, patient_id: str, at: date) -> Demographics:
        """Age and sex from the Patient, BMI from body measurements, on the date of the study ``at``."""
        return demographics(await self.patient(patient_id), await self.body_measurements(patient_id), at)

    async def imaging_study_resources(self, patient_id: str) -> tuple[list[ImagingStudy], list[Endpoint]]:
        """The patient's ImagingStudy resources and the Endpoints they name (``_include``)."""
        pages = await self.search_bundles(
            "ImagingStudy",
            {"subject": f"Patient/{patient_id}", "_include": "ImagingStudy:endpoint", "_count": "100"},
        )
        resources = [entry.resource for page in pages for entry in page.entry or [] if entry.resource is not None]
        studies = [r for r in resources if isinstance(r, ImagingStudy)]
        endpoints = [r for r in resources if isinstance(r, Endpoint)]
        # Servers may ignore _include (the FHIR test server does): read the Endpoints still missing.
        included = {f"Endpoint/{e.id}" for e in endpoints}
        missing = {
            ref.reference
            for study in studies
            for ref in study.endpoint or []
            if ref.reference and ref.reference.startswith("Endpoint/") and ref.reference not in included
        }
        for reference in sorted(missing):
            endpoint = await self.read("Endpoint", reference.removeprefix("Endpoint/"))
            if isinstance(endpoint, Endpoint):
                endpoints.append(endpoint)
        return studies, endpoints

    async def imaging_studies(self, patient_id: str, dicomweb_allowlist: Sequence[str] = ()) -> list[ImagingStudyRef]:
        """The patient's imaging studies, each with its DICOMweb base when that is allowlisted."""
        studies, endpoints = await self.imaging_study_resources(patient_id)
        return imaging_study_refs(studies, endpoints, dicomweb_allowlist)


@dataclass(frozen=True)
class TransactionSummary:
    """What a transaction-response says happened: resources created, and resources that already existed."""

    created: dict[str, int]
    existing: dict[str, int]

    @classmethod
    def of(cls, request: Bundle, response: Bundle) -> TransactionSummary:
        """Pair each sent entry with its answer (201 = created; 200 = an existing match)."""
        created: dict[str, int] = {}
        existing: dict[str, int] = {}
        if len(request.entry or []) != len(response.entry or []):
            raise UpstreamProtocolError("the transaction-response does not answer every entry of the transaction")
        for sent, answer in zip(request.entry or [], response.entry or [], strict=True):
            if sent.request is None or answer.response is None:
                raise UpstreamProtocolError("a transaction entry without request, or an answer without response")
            kind = str(sent.request.url).split("?")[0]
            status = str(answer.response.status).split()[0]
            target = created if status == "201" else existing
            target[kind] = target.get(kind, 0) + 1
        return cls(created=created, existing=existing)


def post_transaction(
    bundle: Bundle, base_url: str | None = None, settings: Settings | None = None
) -> TransactionSummary:
    """Synchronous post of a transaction Bundle (``mskcds analyze --post FHIR_BASE``); what it created."""

    async def post() -> Bundle:
        async with FhirClient.from_settings(settings or get_settings(), base_url) as client:
            return await client.transaction(bundle)

    return TransactionSummary.of(bundle, asyncio.run(post()))
