"""The patient facts a hook needs: demographics, and which knee MRI to analyse.

Gathering (prefetch first, the FHIR server as fallback) is the integration layer's
``hook_context``; this module picks the study. A study qualifies when it is MR, its description
names the knee (DICOM StudyDescription as the ImagingStudy carries it, e.g. "MR KNEE RIGHT W/O"), and
msk-cds may fetch it: from the ImagingStudy's allowlisted Endpoint, else from the configured DICOMweb
service (``MSKCDS_DICOMWEB_URL``). The newest qualifying study wins. Demographics are taken at the
study's date, as the risk models were fitted (age at the MRI).

An EHR sends the same prefetch again and again while a clinician works on one patient (each order
selected fires ``order-select``; each chart opening ``patient-view``). Parsing it into validated FHIR
resources costs more than the rest of a cached-result hook, so the facts gathered from a *complete*
prefetch are kept in memory for a few minutes, keyed by a SHA-256 of the canonical prefetch JSON plus
the patient id (never by anything a client could choose to collide). Facts that needed the FHIR server
are not cached: that server's answer may change, and its token is only valid for that one request.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import date
from typing import Any

from app.analysis import StudyRef
from app.api.hook_flow import Gatherer, PatientData
from app.clients.fhir import ImagingStudyRef
from app.clients.hook_context import Allowlists, hook_context
from app.clients.hook_context import HookContext as Facts
from app.settings import Settings
from cds_hooks import CdsRequest, HookContext

PREFETCH_CACHE_SIZE = 4096
PREFETCH_CACHE_TTL_S = 300.0


def is_knee_mri(study: ImagingStudyRef) -> bool:
    """MR with "knee" in the study description."""
    return "MR" in study.modalities and "knee" in (study.description or "").lower()


def choose_knee_mri(studies: Sequence[ImagingStudyRef], fallback_dicomweb_url: str | None) -> ImagingStudyRef | None:
    """The newest knee MRI that can be fetched (see the module docstring)."""
    fetchable = [s for s in studies if is_knee_mri(s) and (s.dicomweb_url or fallback_dicomweb_url)]
    return max(fetchable, key=lambda s: s.started or date.min, default=None)


class _RecentPrefetch:
    """A small TTL + LRU map from prefetch digest to the facts gathered from it."""

    def __init__(self, capacity: int = PREFETCH_CACHE_SIZE, ttl_s: float = PREFETCH_CACHE_TTL_S) -> None:
        self._items: OrderedDict[str, tuple[float, PatientData]] = OrderedDict()
        self._capacity, self._ttl_s = capacity, ttl_s

    @staticmethod
    def key(patient_id: str, prefetch: dict[str, Any]) -> str:
        canonical = json.dumps(prefetch, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(f"{patient_id}\x00{canonical}".encode()).hexdigest()

    def get(self, key: str) -> PatientData | None:
        item = self._items.get(key)
        if item is None or time.monotonic() - item[0] > self._ttl_s:
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: str, value: PatientData) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)


def study_gatherer(settings: Settings) -> Gatherer:
    """The default :data:`Gatherer`: ``hook_context`` + :func:`choose_knee_mri`, with the prefetch cache."""
    allowlists = Allowlists.from_settings(settings)
    recent = _RecentPrefetch()

    async def gather(request: CdsRequest, context: HookContext) -> PatientData:
        key = recent.key(context.patient_id, request.prefetch) if request.prefetch else None
        cached = recent.get(key) if key else None
        if cached is not None:
            return cached
        facts = await hook_context(request.prefetch, request.fhir_server, request.access_token,
                                   context.patient_id, allowlists)
        patient = _patient_data(facts, context.patient_id, settings)
        if key and set(facts.sources.values()) == {"prefetch"}:
            recent.put(key, patient)
        return patient

    return gather


def _patient_data(facts: Facts, patient_id: str, settings: Settings) -> PatientData:
    chosen = choose_knee_mri(facts.imaging_studies, settings.dicomweb_url or None)
    if chosen is None:
        return PatientData(demographics=facts.demographics, study=None)
    study = StudyRef(study_instance_uid=chosen.study_instance_uid,
                     dicomweb_url=chosen.dicomweb_url or settings.dicomweb_url,
                     patient_reference=f"Patient/{patient_id}", fhir_url=settings.fhir_url or None)
    return PatientData(demographics=facts.demographics_at(chosen.started or facts.at), study=study,
                       study_date=chosen.started)
