"""The StudyAnalyzer on phantom studies served over DICOMweb (the demo's read-only service).

Fetching and selection run without models; the whole chain runs the real Segmenter (default model,
``MSKCDS_SEGMENTATION_RUNTIME`` as configured) and the shipped clinical models, so it is ``slow``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.analysis.analyzer import NoSuitableKneeMri, model_versions_of
from app.analysis.fetch import open_selection
from app.analysis.study import StudyAnalyzer
from app.imaging import load_acquisitions, select_series
from app.settings import Settings
from tests.analysis.served import ServedStudy, serve

#: The smallest study with every role: DESS, MESE T2, CubeQuant T1rho (app.imaging.phantom.SMALL_PROTOCOLS).
SMALL = ("dess-small", "t2-mese-small", "t1rho-cubequant-small")
#: A second, coarser DESS: a morphology candidate the selection passes over, so it must not be downloaded.
COARSE_DESS = "dess-small:pixel=2.0,series=9,name=dess-coarse"


@pytest.fixture(scope="module")
def study_with_extra_series(phantom_factory) -> Iterator[ServedStudy]:
    with serve(phantom_factory(seed=3, side="left", grade=2, protocols=(*SMALL, COARSE_DESS))) as study:
        yield study


def test_only_the_chosen_series_are_downloaded(study_with_extra_series: ServedStudy) -> None:
    study = study_with_extra_series
    expected = select_series(load_acquisitions(study.folder))
    study.requests.clear()
    selection = open_selection(Settings(), study.base_url, study.study_instance_uid)
    assert selection.morphology.description == "SAG 3D DESS WE" and selection.morphology.shape[0] == 40
    for role in ("morphology", "t2", "t1rho"):
        assert getattr(selection, role).series_instance_uids == getattr(expected, role).series_instance_uids
    coarse = next(a for a in load_acquisitions(study.folder, pixels=False) if a.series_number == 9)
    retrieved = {path.rsplit("/", 1)[-1] for path in study.requests if not path.endswith("/metadata")}
    chosen = {uid for role in ("morphology", "t2", "t1rho") for uid in getattr(expected, role).series_instance_uids}
    assert retrieved == chosen and not retrieved & set(coarse.series_instance_uids)
    assert sum(path.endswith("/metadata") for path in study.requests) == 1


def test_a_study_without_morphology_is_unsuitable(phantom_factory) -> None:
    with (
        serve(phantom_factory(seed=4, protocols=("t2-mese-small",))) as study,
        pytest.raises(NoSuitableKneeMri, match="no morphology acquisition: expected a 3D gradient-echo"),
    ):
        StudyAnalyzer(Settings())(study.ref())


@pytest.mark.slow
def test_the_chain_on_a_served_phantom(study_with_extra_series: ServedStudy) -> None:
    analyzer = StudyAnalyzer(Settings())
    announced = model_versions_of(analyzer)
    result = analyzer(study_with_extra_series.ref())

    assert result.model_versions == announced
    assert {"triage-knee", "risk-incident-oa", "risk-tkr"} <= set(announced)
    assert len(announced) > 3  # and the segmentation model(s)
    assert result.study_instance_uid == study_with_extra_series.study_instance_uid
    assert [s.role for s in result.series] == ["morphology", "t2", "t1rho"]
    assert result.measurements.laterality == "left" and result.measurements.laterality_source == "dicom"
    features = result.measurements.as_features()
    for plate in ("MT", "LT", "cMF", "cLF", "P"):
        assert 0.5 < features[f"cartilage_thickness_mean:{plate}"] < 5.0, plate
    assert any(key.startswith("t2_mean:") for key in features)
    assert result.triage is not None and result.triage.model_id == "triage-knee"
    assert result.risk == []
    assert result.notes[0] == "risk not estimated: the job names no FHIR server and patient to read age, sex and BMI"
    assert set(result.segmentation_confidence) >= {"femur", "tibia", "femoral_cartilage"}
    assert all(0.0 <= value <= 1.0 for value in result.segmentation_confidence.values())
