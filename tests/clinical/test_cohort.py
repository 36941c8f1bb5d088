import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.clinical.cohort import (
    binary_at_horizon,
    feature_matrix,
    knee_biomarkers,
    read_cohort,
    read_mapping,
    split_by_subject,
    write_cohort,
)
from app.clinical.errors import CohortError
from app.clinical.simulation import simulate_cohort

SITE_CSV = """PatientID;Knee;Age;Gender;BMI;MT_um;MT_um_2y;Interval;TKR;TKR_m
p1;R;61;F;27.5;1800;1850;24;0;60
p1;L;61;F;27.5;1500;1600;24;1;20
p2;R;70;M;31.0;2100;;;0;30
"""
SITE_MAPPING = {
    "columns": {"subject_id": "PatientID", "side": "Knee", "age_years": "Age", "sex": "Gender", "bmi": "BMI",
                "cartilage_thickness_mean:MT": "MT_um", "prior:cartilage_thickness_mean:MT": "MT_um_2y",
                "months_since_prior": "Interval", "tkr": "TKR", "tkr_months": "TKR_m"},
    "values": {"sex": {"F": "female", "M": "male"}, "side": {"R": "right", "L": "left"}},
    "scale": {"cartilage_thickness_mean:MT": 0.001, "prior:cartilage_thickness_mean:MT": 0.001},
    "delimiter": ";",
}


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "site.csv").write_text(SITE_CSV)
    (tmp_path / "mapping.json").write_text(json.dumps(SITE_MAPPING))
    return tmp_path / "site.csv", tmp_path / "mapping.json"


def test_site_csv_maps_onto_canonical_columns(site: tuple[Path, Path]) -> None:
    frame = read_cohort(site[0], read_mapping(site[1]))
    assert frame["sex"].tolist() == ["female", "female", "male"]
    assert frame["side"].tolist() == ["right", "left", "right"]
    assert frame["cartilage_thickness_mean:MT"].tolist() == pytest.approx([1.8, 1.5, 2.1])
    change = feature_matrix(frame, ["change:cartilage_thickness_mean:MT", "sex_female"], (6, 60))
    assert change["change:cartilage_thickness_mean:MT"].tolist()[:2] == pytest.approx([-0.025, -0.05])
    assert np.isnan(change["change:cartilage_thickness_mean:MT"][2])
    assert change["sex_female"].tolist() == [1.0, 1.0, 0.0]


def test_mapping_to_unknown_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"columns": {"height_cm": "Height"}}))
    with pytest.raises(CohortError) as error:
        read_mapping(tmp_path / "bad.json")
    assert str(error.value) == (f"{tmp_path / 'bad.json'}: not a valid column mapping: Value error, not canonical "
                                "cohort columns: ['height_cm'] (see docs/clinical.md, 'Cohort table')")


def test_mapping_naming_absent_columns_is_refused(site: tuple[Path, Path], tmp_path: Path) -> None:
    mapping = read_mapping(site[1])
    mapping.columns["bmi"] = "BodyMass"
    with pytest.raises(CohortError) as error:
        read_cohort(site[0], mapping)
    assert str(error.value) == f"{site[0]}: the mapping names columns the file lacks: ['BodyMass']"


def test_unknown_codes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("subject_id,sex\n1,F\n")
    with pytest.raises(CohortError) as error:
        read_cohort(tmp_path / "c.csv")
    assert str(error.value) == f"{tmp_path / 'c.csv'}: column sex has values ['f']; expected ['female', 'male']"


def test_outcome_at_horizon_handles_censoring() -> None:
    frame = pd.DataFrame({"tkr": [1, 1, 0, 0, 0], "tkr_months": [20, 60, 70, 48, 30]})
    label = binary_at_horizon(frame, "tkr", 48)
    assert label.tolist()[:4] == [1.0, 0.0, 0.0, 0.0]
    assert np.isnan(label[4])  # censored at 30 months: status at 48 unknown


def test_split_keeps_subjects_together() -> None:
    frame = pd.DataFrame({"subject_id": [f"s{i // 2}" for i in range(200)], "x": range(200)})
    parts = split_by_subject(frame, (0.5, 0.25, 0.25), seed=3)
    assert [len(p) for p in parts] == [100, 50, 50]
    seen = [set(p["subject_id"]) for p in parts]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


def test_cohort_csv_round_trip(tmp_path: Path) -> None:
    frame = simulate_cohort(50, seed=1)
    write_cohort(frame, tmp_path / "cohort.csv")
    back = read_cohort(tmp_path / "cohort.csv")
    assert list(back.columns) == list(frame.columns)
    for column in ("cartilage_thickness_mean:MT", "prior:cartilage_thickness_mean:cMF", "tkr_months", "bmi"):
        assert back[column].to_numpy() == pytest.approx(frame[column].to_numpy(), rel=1e-5)
    assert back["sex"].tolist() == frame["sex"].tolist()
    assert knee_biomarkers(back.iloc[0]).get("denuded_area_pct", "P") == pytest.approx(
        frame["denuded_area_pct:P"][0], rel=1e-5)
    assert knee_biomarkers(back.iloc[0], prior=True).as_features().keys() == {
        f"cartilage_thickness_mean:{p}" for p in ("MT", "LT", "cMF", "cLF", "TrF", "P")}
