"""The CDS Services msk-cds offers, as the discovery endpoint lists them.

Prefetch asks for what the risk models and the study lookup need, and nothing more ("minimum
necessary"): the Patient (birth date, sex), body weight / height / BMI Observations (LOINC 29463-7,
8302-2, 39156-5) and the patient's ImagingStudies with their Endpoints. The templates and their keys
are the integration layer's (``app.clients.hook_context.PREFETCH_TEMPLATES``), because that is the
code that reads the prefetch and falls back to the FHIR server with the same queries.
"""

from __future__ import annotations

from app.clients.hook_context import PREFETCH_TEMPLATES
from cds_hooks import CdsService, DiscoveryResponse
from cds_hooks.hooks import check_service_prefetch

PREFETCH: dict[str, str] = dict(PREFETCH_TEMPLATES)
_USAGE = ("Reads the patient's knee MRI from the hospital's DICOMweb service (configured on the service side); "
          "needs the prefetch above or fhirServer + fhirAuthorization with read access to them.")

SERVICES: tuple[CdsService, ...] = (
    CdsService(
        id="mskcds-knee-patient-view", hook="patient-view", title="Knee MRI: OA and TKR risk",
        description="When a chart is opened: osteoarthritis and total knee replacement risk from the patient's "
                    "latest knee MRI biomarkers, age, sex and BMI, beside the demographics-only risk; the MRI's "
                    "triage priority; an orthopaedic referral suggestion when TKR risk is high.",
        prefetch=PREFETCH, usage_requirements=_USAGE,
    ),
    CdsService(
        id="mskcds-knee-order-select", hook="order-select", title="Knee MRI: triage and risk while ordering",
        description="When a knee imaging or orthopaedic order is selected: the triage priority and OA / TKR risk "
                    "from the patient's latest knee MRI. Other orders get no cards.",
        prefetch=PREFETCH, usage_requirements=_USAGE,
    ),
    CdsService(
        id="mskcds-knee-order-sign", hook="order-sign", title="Knee MRI: triage and risk before signing",
        description="When knee imaging or orthopaedic orders are signed: the triage priority and OA / TKR risk "
                    "from the patient's latest knee MRI. Other orders get no cards.",
        prefetch=PREFETCH, usage_requirements=_USAGE,
    ),
)
for _service in SERVICES:
    check_service_prefetch(_service)

DISCOVERY = DiscoveryResponse(services=list(SERVICES))
DISCOVERY_JSON = DISCOVERY.to_json()
SERVICES_BY_ID: dict[str, CdsService] = {service.id: service for service in SERVICES}
