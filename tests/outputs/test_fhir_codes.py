"""The published project CodeSystem: generated from the schemas, complete, valid R4."""

from __future__ import annotations

import json

from fhir.resources.R4B.codesystem import CodeSystem

from app.outputs.fhir_codes import CODESYSTEM_PATH, MSKCDS_SYSTEM, code_system
from schemas.biomarkers import REGIONS, BiomarkerName


def all_codes(document: dict) -> list[str]:
    return [c["code"] for group in document["concept"] for c in [group, *group["concept"]]]


def test_the_committed_codesystem_is_the_generated_one() -> None:
    # Regenerate with: python -m app.outputs.fhir_codes
    assert json.loads(CODESYSTEM_PATH.read_text()) == code_system()


def test_every_biomarker_and_region_has_a_unique_code() -> None:
    document = json.loads(CODESYSTEM_PATH.read_text())
    codes = all_codes(document)
    assert len(codes) == len(set(codes)) == document["count"] == 62
    assert {name.value for name in BiomarkerName} <= set(codes)
    assert set(codes) >= REGIONS
    assert {"urgent", "routine", "deprioritised", "incident_oa", "tkr"} <= set(codes)


def test_codesystem_validates_as_r4() -> None:
    resource = CodeSystem.model_validate(json.loads(CODESYSTEM_PATH.read_text()))
    assert resource.url == MSKCDS_SYSTEM
    assert resource.content == "complete"
