"""The one biomarker naming scheme: names, units and regions, and the JSON shape that carries them.

Region names follow the Eckstein / OAI Chondrometrics nomenclature, so numbers can be compared with
published OAI cartilage morphometry. The same JSON is what ``mskcds measure --json`` prints, what the
clinical models read and what the FHIR Observations are built from.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Unit(StrEnum):
    """UCUM units used by biomarkers (the same strings go into FHIR valueQuantity.code)."""

    MM = "mm"
    MM3 = "mm3"
    MM2 = "mm2"
    PERCENT = "%"
    MS = "ms"


class BiomarkerName(StrEnum):
    """Every biomarker msk-cds reports."""

    CARTILAGE_THICKNESS_MEAN = "cartilage_thickness_mean"
    CARTILAGE_THICKNESS_MEDIAN = "cartilage_thickness_median"
    CARTILAGE_THICKNESS_P5 = "cartilage_thickness_p5"
    CARTILAGE_THICKNESS_MAX = "cartilage_thickness_max"
    CARTILAGE_VOLUME = "cartilage_volume"
    CARTILAGE_SURFACE_AREA = "cartilage_surface_area"
    DENUDED_AREA_PCT = "denuded_area_pct"
    BONE_VOLUME = "bone_volume"
    MENISCUS_VOLUME = "meniscus_volume"
    MENISCUS_THICKNESS_MEAN = "meniscus_thickness_mean"
    MENISCUS_EXTRUSION = "meniscus_extrusion"
    T2_MEAN = "t2_mean"
    T2_SD = "t2_sd"
    T1RHO_MEAN = "t1rho_mean"
    T1RHO_SD = "t1rho_sd"

    @property
    def unit(self) -> Unit:
        """The unit every value of this biomarker is expressed in."""
        return UNITS[self]


UNITS: dict[BiomarkerName, Unit] = {
    BiomarkerName.CARTILAGE_THICKNESS_MEAN: Unit.MM,
    BiomarkerName.CARTILAGE_THICKNESS_MEDIAN: Unit.MM,
    BiomarkerName.CARTILAGE_THICKNESS_P5: Unit.MM,
    BiomarkerName.CARTILAGE_THICKNESS_MAX: Unit.MM,
    BiomarkerName.CARTILAGE_VOLUME: Unit.MM3,
    BiomarkerName.CARTILAGE_SURFACE_AREA: Unit.MM2,
    BiomarkerName.DENUDED_AREA_PCT: Unit.PERCENT,
    BiomarkerName.BONE_VOLUME: Unit.MM3,
    BiomarkerName.MENISCUS_VOLUME: Unit.MM3,
    BiomarkerName.MENISCUS_THICKNESS_MEAN: Unit.MM,
    BiomarkerName.MENISCUS_EXTRUSION: Unit.MM,
    BiomarkerName.T2_MEAN: Unit.MS,
    BiomarkerName.T2_SD: Unit.MS,
    BiomarkerName.T1RHO_MEAN: Unit.MS,
    BiomarkerName.T1RHO_SD: Unit.MS,
}

#: Cartilage plates (Eckstein): medial/lateral tibia, central (weight-bearing) medial/lateral femur,
#: trochlea, patella.
CARTILAGE_PLATES: tuple[str, ...] = ("MT", "LT", "cMF", "cLF", "TrF", "P")
#: Aggregates: whole medial / lateral femoral cartilage (central + posterior condyle), all femoral
#: cartilage, and the medial / lateral femorotibial compartments (MT + cMF, LT + cLF).
CARTILAGE_AGGREGATES: tuple[str, ...] = ("MF", "LF", "F", "MFTC", "LFTC")
#: Subregions: tibia central/external/internal/anterior/posterior; weight-bearing femur central/external/internal.
TIBIAL_SUBREGIONS: tuple[str, ...] = tuple(
    f"{sub}{plate}" for plate in ("MT", "LT") for sub in ("c", "e", "i", "a", "p")
)
FEMORAL_SUBREGIONS: tuple[str, ...] = tuple(f"{sub}{plate}" for plate in ("cMF", "cLF") for sub in ("c", "e", "i"))
BONE_REGIONS: tuple[str, ...] = ("femur", "tibia", "patella")
MENISCUS_REGIONS: tuple[str, ...] = ("MM", "LM")

REGIONS: frozenset[str] = frozenset(
    CARTILAGE_PLATES + CARTILAGE_AGGREGATES + TIBIAL_SUBREGIONS + FEMORAL_SUBREGIONS + BONE_REGIONS + MENISCUS_REGIONS
)

Laterality = Literal["left", "right"]
#: Where laterality came from: DICOM (Laterality / ImageLaterality), the series description, the knee's
#: position off the patient's midline in the scanner (``app.imaging.laterality``), or the user.
LateralitySource = Literal["dicom", "series_description", "patient_position", "user"]


class Biomarker(BaseModel):
    """One measured value: name + region + value in the name's unit."""

    model_config = ConfigDict(frozen=True)

    name: BiomarkerName
    region: str
    value: float
    unit: Unit

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; regions follow the Eckstein nomenclature: {sorted(REGIONS)}")
        return region

    @model_validator(mode="after")
    def _unit_matches_name(self) -> Biomarker:
        if self.unit != UNITS[self.name]:
            raise ValueError(f"{self.name.value} is expressed in {UNITS[self.name].value!r}, not {self.unit.value!r}")
        return self

    @classmethod
    def of(cls, name: BiomarkerName, region: str, value: float) -> Biomarker:
        """Build a biomarker with its unit taken from the naming scheme."""
        return cls(name=name, region=region, value=float(value), unit=UNITS[name])

    @property
    def key(self) -> str:
        """Stable identifier ``name:region``, used for features, FHIR identifiers and lookups."""
        return f"{self.name.value}:{self.region}"


class BiomarkerSet(BaseModel):
    """The measurement layer's output for one knee (the ``mskcds measure --json`` document)."""

    laterality: Laterality
    laterality_source: LateralitySource
    biomarkers: list[Biomarker] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_keys(self) -> BiomarkerSet:
        seen: set[str] = set()
        for biomarker in self.biomarkers:
            if biomarker.key in seen:
                raise ValueError(f"biomarker {biomarker.key} appears twice")
            seen.add(biomarker.key)
        return self

    def get(self, name: BiomarkerName | str, region: str) -> float | None:
        """The value of ``name`` in ``region``, or None when it was not measured."""
        wanted = f"{BiomarkerName(name).value}:{region}"
        return next((b.value for b in self.biomarkers if b.key == wanted), None)

    def as_features(self) -> dict[str, float]:
        """``{"name:region": value}``: the flat view the clinical models read."""
        return {b.key: b.value for b in self.biomarkers}
