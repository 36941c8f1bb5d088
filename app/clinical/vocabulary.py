"""Words for regions and biomarkers, so reasons read like a radiology report, not like feature keys."""

from __future__ import annotations

from schemas.biomarkers import BiomarkerName

REGION_WORDS: dict[str, str] = {
    "MT": "medial tibia",
    "LT": "lateral tibia",
    "cMF": "central (weight-bearing) medial femur",
    "cLF": "central (weight-bearing) lateral femur",
    "TrF": "trochlea",
    "P": "patella",
    "MF": "medial femur",
    "LF": "lateral femur",
    "F": "femur",
    "MFTC": "medial femorotibial compartment",
    "LFTC": "lateral femorotibial compartment",
    "femur": "femur",
    "tibia": "tibia",
    "patella": "patella",
    "MM": "medial meniscus",
    "LM": "lateral meniscus",
}
_SUBREGION_PARTS = {"c": "central", "e": "external", "i": "internal", "a": "anterior", "p": "posterior"}

BIOMARKER_WORDS: dict[BiomarkerName, str] = {
    BiomarkerName.CARTILAGE_THICKNESS_MEAN: "mean cartilage thickness",
    BiomarkerName.CARTILAGE_THICKNESS_MEDIAN: "median cartilage thickness",
    BiomarkerName.CARTILAGE_THICKNESS_P5: "5th-percentile cartilage thickness",
    BiomarkerName.CARTILAGE_THICKNESS_MAX: "maximum cartilage thickness",
    BiomarkerName.CARTILAGE_VOLUME: "cartilage volume",
    BiomarkerName.CARTILAGE_SURFACE_AREA: "cartilage surface area",
    BiomarkerName.DENUDED_AREA_PCT: "full-thickness cartilage loss (denuded bone area)",
    BiomarkerName.BONE_VOLUME: "bone volume",
    BiomarkerName.MENISCUS_VOLUME: "meniscus volume",
    BiomarkerName.MENISCUS_THICKNESS_MEAN: "mean meniscus thickness",
    BiomarkerName.MENISCUS_EXTRUSION: "meniscal extrusion",
    BiomarkerName.T2_MEAN: "mean cartilage T2",
    BiomarkerName.T2_SD: "cartilage T2 heterogeneity (SD)",
    BiomarkerName.T1RHO_MEAN: "mean cartilage T1rho",
    BiomarkerName.T1RHO_SD: "cartilage T1rho heterogeneity (SD)",
}


def region_words(region: str) -> str:
    """``"cMF"`` -> ``"central (weight-bearing) medial femur"``; subregions such as ``"eMT"`` too."""
    if region in REGION_WORDS:
        return REGION_WORDS[region]
    part, plate = region[0], region[1:]
    if part in _SUBREGION_PARTS and plate in REGION_WORDS:
        return f"{_SUBREGION_PARTS[part]} {REGION_WORDS[plate]}"
    return region


def biomarker_words(name: BiomarkerName | str, region: str) -> str:
    """``("cartilage_thickness_mean", "MT")`` -> ``"mean cartilage thickness of the medial tibia"``."""
    return f"{BIOMARKER_WORDS[BiomarkerName(name)]} of the {region_words(region)}"


def format_value(value: float, unit: str) -> str:
    """A value with its unit the way a report prints it (``"1.42 mm"``, ``"4.2 %"``, ``"2310 mm³"``)."""
    shown = {"mm3": "mm³", "mm2": "mm²", "kg/m2": "kg/m²", "a": "years", "1": ""}.get(unit, unit)
    if shown.endswith("/a"):
        shown = shown.removesuffix("/a") + " per year"
    if abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {shown}".strip() if shown != "%" else f"{text} %"
