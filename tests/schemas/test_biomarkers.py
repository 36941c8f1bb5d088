import pytest
from pydantic import ValidationError

from schemas.biomarkers import REGIONS, Biomarker, BiomarkerName, BiomarkerSet, Unit


def test_of_takes_unit_from_naming_scheme() -> None:
    b = Biomarker.of(BiomarkerName.CARTILAGE_THICKNESS_MEAN, "MT", 1.82)
    assert b.unit is Unit.MM
    assert b.key == "cartilage_thickness_mean:MT"
    assert b.model_dump(mode="json") == {
        "name": "cartilage_thickness_mean",
        "region": "MT",
        "value": 1.82,
        "unit": "mm",
    }


def test_wrong_unit_is_refused_with_the_right_one_named() -> None:
    with pytest.raises(ValidationError, match="expressed in 'mm3', not 'mm'"):
        Biomarker(name=BiomarkerName.BONE_VOLUME, region="femur", value=1.0, unit=Unit.MM)


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown region 'MTX'"):
        Biomarker.of(BiomarkerName.CARTILAGE_VOLUME, "MTX", 1.0)


def test_eckstein_regions_present() -> None:
    for region in (
        "MT",
        "LT",
        "cMF",
        "cLF",
        "TrF",
        "P",
        "MF",
        "LF",
        "F",
        "MFTC",
        "LFTC",
        "cMT",
        "eMT",
        "iMT",
        "aMT",
        "pMT",
        "ccMF",
        "ecMF",
        "icMF",
        "femur",
        "MM",
        "LM",
    ):
        assert region in REGIONS


def test_set_lookup_and_features() -> None:
    s = BiomarkerSet(
        laterality="right",
        laterality_source="dicom",
        biomarkers=[Biomarker.of("t2_mean", "MT", 35.0), Biomarker.of("bone_volume", "tibia", 9e4)],
    )
    assert s.get("t2_mean", "MT") == 35.0
    assert s.get("t2_mean", "LT") is None
    assert s.as_features() == {"t2_mean:MT": 35.0, "bone_volume:tibia": 9e4}


def test_duplicate_biomarker_is_refused() -> None:
    with pytest.raises(ValidationError, match="t2_mean:MT appears twice"):
        BiomarkerSet(
            laterality="left",
            laterality_source="user",
            biomarkers=[Biomarker.of("t2_mean", "MT", 1), Biomarker.of("t2_mean", "MT", 2)],
        )
