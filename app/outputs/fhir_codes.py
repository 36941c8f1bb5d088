"""The codes msk-cds writes into FHIR resources: its own CodeSystem, and standard codes where they exist.

The project CodeSystem (published as ``app/outputs/fhir_codesystem.json``, generated from the schemas
by ``python -m app.outputs.fhir_codes``) names every biomarker, Eckstein region, triage priority, risk
outcome and method. Standard codes are added beside a project code only where one means the same
thing: DICOM DCM 113065 "T2" for the mean T2 of a region; SNOMED CT "Volume" / "Area" properties as
DICOM SR measurement reports use them; SNOMED CT body structures and the laterality qualifiers
7771000 "Left" / 24028007 "Right". No LOINC code exists for these quantities, and none is invented.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding

from schemas.biomarkers import (
    BONE_REGIONS,
    CARTILAGE_AGGREGATES,
    CARTILAGE_PLATES,
    FEMORAL_SUBREGIONS,
    MENISCUS_REGIONS,
    TIBIAL_SUBREGIONS,
    BiomarkerName,
    Laterality,
)

#: Canonical URL of the project CodeSystem (set to the publisher's own domain when deploying).
MSKCDS_SYSTEM = "https://msk-cds.org/fhir/CodeSystem/msk-cds"
CODESYSTEM_PATH = Path(__file__).with_name("fhir_codesystem.json")

SNOMED = "http://snomed.info/sct"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DIAGNOSTIC_SERVICE_SECTION = "http://terminology.hl7.org/CodeSystem/v2-0074"
V3_OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
#: mCODE's R4 extension for the laterality of a body site (context includes Observation.bodySite).
LATERALITY_EXTENSION = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"

BIOMARKER_DISPLAY: dict[BiomarkerName, str] = {
    BiomarkerName.CARTILAGE_THICKNESS_MEAN: "Mean cartilage thickness",
    BiomarkerName.CARTILAGE_THICKNESS_MEDIAN: "Median cartilage thickness",
    BiomarkerName.CARTILAGE_THICKNESS_P5: "5th percentile of cartilage thickness",
    BiomarkerName.CARTILAGE_THICKNESS_MAX: "Maximum cartilage thickness",
    BiomarkerName.CARTILAGE_VOLUME: "Cartilage volume",
    BiomarkerName.CARTILAGE_SURFACE_AREA: "Cartilage surface area",
    BiomarkerName.DENUDED_AREA_PCT: "Denuded subchondral bone area, percent of the plate",
    BiomarkerName.BONE_VOLUME: "Bone volume",
    BiomarkerName.MENISCUS_VOLUME: "Meniscus volume",
    BiomarkerName.MENISCUS_THICKNESS_MEAN: "Mean meniscus thickness",
    BiomarkerName.MENISCUS_EXTRUSION: "Meniscus extrusion",
    BiomarkerName.T2_MEAN: "Mean T2 relaxation time",
    BiomarkerName.T2_SD: "Standard deviation of T2 relaxation time",
    BiomarkerName.T1RHO_MEAN: "Mean T1rho relaxation time",
    BiomarkerName.T1RHO_SD: "Standard deviation of T1rho relaxation time",
}

_PLATE_NAMES = {
    "MT": "medial tibia",
    "LT": "lateral tibia",
    "cMF": "central (weight-bearing) medial femur",
    "cLF": "central (weight-bearing) lateral femur",
    "TrF": "trochlea of the femur",
    "P": "patella",
    "MF": "medial femur",
    "LF": "lateral femur",
    "F": "femur",
    "MFTC": "medial femorotibial compartment",
    "LFTC": "lateral femorotibial compartment",
}
_SUBREGION_NAMES = {"c": "central", "e": "external", "i": "internal", "a": "anterior", "p": "posterior"}


def region_display(region: str) -> str:
    """Words for an Eckstein region code (e.g. ``ecMF`` -> "external subregion of central medial femur")."""
    if region in _PLATE_NAMES:
        return f"Cartilage of the {_PLATE_NAMES[region]}"
    if region in TIBIAL_SUBREGIONS or region in FEMORAL_SUBREGIONS:
        return f"{_SUBREGION_NAMES[region[0]].capitalize()} subregion of the {_PLATE_NAMES[region[1:]]} cartilage"
    if region in BONE_REGIONS:
        return region.capitalize()
    return {"MM": "Medial meniscus", "LM": "Lateral meniscus"}[region]


TRIAGE_PRIORITY_DISPLAY = {
    "urgent": "Urgent radiologist review",
    "routine": "Routine radiologist review",
    "deprioritised": "Deprioritised: no finding prompting early review",
}
OUTCOME_DISPLAY = {"incident_oa": "Incident knee osteoarthritis", "tkr": "Total knee replacement"}
METHOD_DISPLAY = {
    "ai-segmentation-measurement": "Automatic segmentation by a foundation model, then measurement of the label map",
    "cox": "Cox proportional-hazards model",
    "logistic": "Logistic regression model",
}
REPORT_CODE = "knee-mri-quantitative-report"
REPORT_DISPLAY = "Quantitative knee MRI report (AI-derived biomarkers, triage and risk)"

#: SNOMED CT body structures (codes as DICOM's Code Tables carry them).
KNEE_JOINT = ("49076000", "Knee joint")
BONE_STRUCTURES = {"femur": ("71341001", "Femur"), "tibia": ("12611008", "Tibia"), "patella": ("64234005", "Patella")}
MENISCUS = ("74135004", "Meniscus")
LATERALITY = {"left": ("7771000", "Left"), "right": ("24028007", "Right")}

#: Standard codes meaning the same quantity as a project biomarker code.
STANDARD_CODES: dict[BiomarkerName, tuple[str, str, str]] = {
    BiomarkerName.T2_MEAN: (DCM, "113065", "T2"),
    BiomarkerName.CARTILAGE_VOLUME: (SNOMED, "118565006", "Volume"),
    BiomarkerName.BONE_VOLUME: (SNOMED, "118565006", "Volume"),
    BiomarkerName.MENISCUS_VOLUME: (SNOMED, "118565006", "Volume"),
    BiomarkerName.CARTILAGE_SURFACE_AREA: (SNOMED, "42798000", "Area"),
}


def project_coding(code: str) -> Coding:
    """A coding of the project CodeSystem, with its display; KeyError for a code not defined there."""
    return Coding(system=MSKCDS_SYSTEM, code=code, display=_display_index()[code])


def concept(*codings: Coding, text: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=list(codings), text=text)


def biomarker_code(name: BiomarkerName) -> CodeableConcept:
    """Observation.code: the project code, plus a standard code where one means the same."""
    codings = [project_coding(name.value)]
    if name in STANDARD_CODES:
        system, code, display = STANDARD_CODES[name]
        codings.append(Coding(system=system, code=code, display=display))
    return concept(*codings, text=BIOMARKER_DISPLAY[name])


def body_site(region: str, laterality: Laterality) -> CodeableConcept:
    """Observation.bodySite: SNOMED CT structure + project region code, laterality as a qualifier extension."""
    if region in BONE_STRUCTURES:
        code, display = BONE_STRUCTURES[region]
    elif region in MENISCUS_REGIONS:
        code, display = MENISCUS
    else:
        code, display = KNEE_JOINT
    side_code, side_display = LATERALITY[laterality]
    return CodeableConcept(
        coding=[Coding(system=SNOMED, code=code, display=display), project_coding(region)],
        text=f"{region_display(region)}, {laterality} knee",
        extension=[
            {
                "url": LATERALITY_EXTENSION,
                "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": side_code, "display": side_display}]},
            }
        ],
    )


def _concepts() -> list[dict[str, Any]]:
    """The CodeSystem's concept hierarchy, from the schemas."""

    def group(code: str, display: str, children: list[tuple[str, str]]) -> dict[str, Any]:
        return {"code": code, "display": display, "concept": [{"code": c, "display": d} for c, d in children]}

    regions = CARTILAGE_PLATES + CARTILAGE_AGGREGATES + TIBIAL_SUBREGIONS + FEMORAL_SUBREGIONS
    return [
        group("biomarker", "Imaging biomarker", [(name.value, BIOMARKER_DISPLAY[name]) for name in BiomarkerName]),
        group(
            "region",
            "Knee region (Eckstein nomenclature)",
            [(r, region_display(r)) for r in regions + BONE_REGIONS + MENISCUS_REGIONS],
        ),
        group("triage-priority", "Worklist triage priority", list(TRIAGE_PRIORITY_DISPLAY.items())),
        group("outcome", "Predicted outcome", list(OUTCOME_DISPLAY.items())),
        group("method", "Method", list(METHOD_DISPLAY.items())),
        group("report", "Report type", [(REPORT_CODE, REPORT_DISPLAY)]),
    ]


def code_system() -> dict[str, Any]:
    """The project CodeSystem resource (FHIR R4 JSON)."""
    concepts = _concepts()
    return {
        "resourceType": "CodeSystem",
        "id": "msk-cds",
        "url": MSKCDS_SYSTEM,
        "version": "1",
        "name": "MskCds",
        "title": "msk-cds codes: knee MRI biomarkers, regions, triage priorities, outcomes, methods",
        "status": "active",
        "experimental": False,
        "publisher": "msk-cds",
        "description": (
            "Codes for what msk-cds measures and decides. Biomarker and region codes follow "
            "schemas/biomarkers.py; regions use the Eckstein / OAI Chondrometrics nomenclature."
        ),
        "caseSensitive": True,
        "hierarchyMeaning": "grouped-by",
        "content": "complete",
        "count": sum(1 + len(c["concept"]) for c in concepts),
        "concept": concepts,
    }


@cache
def _display_index() -> dict[str, str]:
    return {
        child["code"]: child["display"]
        for group in _concepts()
        for child in [group, *group["concept"]]  # type: ignore[list-item]
    }


def write_code_system(path: Path = CODESYSTEM_PATH) -> None:
    path.write_text(json.dumps(code_system(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_code_system(Path(sys.argv[1]) if len(sys.argv) > 1 else CODESYSTEM_PATH)
