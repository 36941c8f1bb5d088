"""The Device that stands for msk-cds and the models it ran: what ``Observation.device`` and
``RiskAssessment.performer`` point at, so every AI-derived value names the software and model versions
that produced it."""

from __future__ import annotations

from collections.abc import Mapping

from fhir.resources.R4B.device import Device

from app import __version__
from app.outputs.fhir_common import ai_asserted_meta, identifier, identity, model_key

SOFTWARE_NAME = "msk-cds"


def device_identity(model_versions: Mapping[str, str]) -> str:
    return identity("Device", SOFTWARE_NAME, __version__, model_key(model_versions))


def analysis_device(model_versions: Mapping[str, str]) -> Device:
    """One Device per (msk-cds version, set of model versions); its versions list every model."""
    return Device(
        meta=ai_asserted_meta(),
        identifier=[identifier(device_identity(model_versions))],
        status="active",
        manufacturer=SOFTWARE_NAME,
        deviceName=[{"name": SOFTWARE_NAME, "type": "manufacturer-name"}],
        type={"text": "Clinical decision support software (AI segmentation, biomarkers, risk models)"},
        version=[{"type": {"text": SOFTWARE_NAME}, "value": __version__}]
        + [{"type": {"text": name}, "value": version} for name, version in sorted(model_versions.items())],
    )
