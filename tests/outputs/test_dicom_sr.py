"""TID 1500 Measurement Report of the biomarkers: written, re-read with pydicom and highdicom, every
biomarker recovered exactly, measurement groups linked to their SEG segments."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.uid import Comprehensive3DSRStorage

from app.outputs.dicom_seg import build_segmentation, segment_numbers
from app.outputs.dicom_sr import SR_CONCEPTS, UCUM_UNITS, build_measurement_report
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet
from schemas.labels import Label
from tests.integration.synthetic import StudySpec
from tests.outputs.analysis_examples import example_result
from tests.outputs.dicom_examples import ALGORITHM, knee_labels, source_series

N = BiomarkerName


@pytest.fixture(scope="module")
def sources() -> list[pydicom.Dataset]:
    return source_series()


@pytest.fixture(scope="module")
def segmentation(sources: list[pydicom.Dataset]) -> hd.seg.Segmentation:
    return build_segmentation(knee_labels(), sources, ALGORITHM)


@pytest.fixture(scope="module")
def biomarkers() -> BiomarkerSet:
    """The FHIR tests' example measurements plus one of every other kind (statistics, T1rho, subregion)."""
    extra = [
        Biomarker.of(N.CARTILAGE_THICKNESS_MEDIAN, "cMF", 2.05),
        Biomarker.of(N.CARTILAGE_THICKNESS_P5, "cMF", 0.93),
        Biomarker.of(N.CARTILAGE_THICKNESS_MAX, "cMF", 3.712345678901234),  # full float precision survives
        Biomarker.of(N.CARTILAGE_SURFACE_AREA, "MT", 612.5),
        Biomarker.of(N.CARTILAGE_THICKNESS_MEAN, "ecMF", 1.98),
        Biomarker.of(N.CARTILAGE_THICKNESS_MEAN, "MFTC", 1.9),
        Biomarker.of(N.MENISCUS_THICKNESS_MEAN, "MM", 5.4),
        Biomarker.of(N.MENISCUS_EXTRUSION, "MM", 1.2),
        Biomarker.of(N.T1RHO_MEAN, "LT", 41.0),
        Biomarker.of(N.T1RHO_SD, "LT", 7.5),
        Biomarker.of(N.BONE_VOLUME, "tibia", 98000.0),
    ]
    measured = example_result("1.2.3").measurements
    return measured.model_copy(update={"biomarkers": measured.biomarkers + extra})


@pytest.fixture(scope="module")
def sr_file(
    biomarkers: BiomarkerSet,
    segmentation: hd.seg.Segmentation,
    sources: list[pydicom.Dataset],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    path = tmp_path_factory.mktemp("sr") / "sr.dcm"
    build_measurement_report(biomarkers, segmentation, sources, ALGORITHM).save_as(path, enforce_file_format=True)
    return path


def _decode(report: hd.sr.Comprehensive3DSR) -> list[Biomarker]:
    """Biomarkers back from every measurement group (the inverse of SR_CONCEPTS and UCUM_UNITS)."""
    by_concept = {
        (name.value, derivation.value if derivation else None): b for b, (name, derivation) in SR_CONCEPTS.items()
    }
    units = {code.value: unit for unit, code in UCUM_UNITS.items()}
    groups = [*report.content.get_volumetric_roi_measurement_groups(), *report.content.get_image_measurement_groups()]
    decoded = []
    for group in groups:
        (site,) = group.finding_sites
        for measurement in group.get_measurements():
            derivation = measurement.derivation.value if measurement.derivation else None
            name = by_concept[(measurement.name.value, derivation)]
            decoded.append(
                Biomarker(
                    name=name, region=site.value.value, value=measurement.value, unit=units[measurement.unit.value]
                )
            )
    return decoded


def test_every_biomarker_round_trips_exactly(sr_file: Path, biomarkers: BiomarkerSet) -> None:
    decoded = _decode(hd.sr.srread(sr_file))
    assert sorted(decoded, key=lambda b: b.key) == sorted(biomarkers.biomarkers, key=lambda b: b.key)


def test_document_is_an_unverified_tid_1500_report(sr_file: Path, sources: list[pydicom.Dataset]) -> None:
    ds = pydicom.dcmread(sr_file)
    assert ds.SOPClassUID == Comprehensive3DSRStorage
    assert ds.Modality == "SR"
    assert (ds.CompletionFlag, ds.VerificationFlag) == ("COMPLETE", "UNVERIFIED")
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "126000"  # Imaging Measurement Report
    assert ds.StudyInstanceUID == sources[0].StudyInstanceUID
    (scheme,) = ds.CodingSchemeIdentificationSequence
    assert (scheme.CodingSchemeDesignator, scheme.CodingSchemeName) == ("99MSKCDS", "msk-cds biomarkers and regions")


def test_observer_is_the_model_as_a_device(sr_file: Path, tmp_path: Path) -> None:
    report = hd.sr.srread(sr_file)
    (observer,) = report.content.get_observer_contexts()
    assert observer.observer_type.value == "121007"  # Device
    attributes = observer.observer_identifying_attributes
    assert (attributes.name, attributes.manufacturer_name, attributes.model_name) == (
        "knee-sam",
        "msk-cds",
        "knee-sam 0.3.0",
    )
    other_sources = source_series()
    again = build_measurement_report(
        BiomarkerSet(laterality="left", laterality_source="user", biomarkers=[Biomarker.of(N.T2_MEAN, "cMF", 40.0)]),
        build_segmentation(knee_labels(), other_sources, ALGORITHM),
        other_sources,
        ALGORITHM,
    )
    again.save_as(tmp_path / "again.dcm", enforce_file_format=True)
    (same_device,) = hd.sr.srread(tmp_path / "again.dcm").content.get_observer_contexts()
    assert same_device.observer_identifying_attributes.uid == attributes.uid  # stable per model version


def test_groups_reference_their_seg_segment(sr_file: Path, segmentation: hd.seg.Segmentation) -> None:
    report = hd.sr.srread(sr_file)
    numbers = segment_numbers(segmentation)
    referenced = {}
    for group in report.content.get_volumetric_roi_measurement_groups():
        (site,) = group.finding_sites
        segment = group.referenced_segment
        assert segment.referenced_sop_instance_uid == segmentation.SOPInstanceUID
        referenced[site.value.value] = segment.referenced_segment_numbers
    assert referenced == {
        "cMF": [numbers[Label.FEMORAL_CARTILAGE]],
        "ecMF": [numbers[Label.FEMORAL_CARTILAGE]],
        "cLF": [numbers[Label.FEMORAL_CARTILAGE]],
        "F": [numbers[Label.FEMORAL_CARTILAGE]],
        "MT": [numbers[Label.MEDIAL_TIBIAL_CARTILAGE]],
        "LT": [numbers[Label.LATERAL_TIBIAL_CARTILAGE]],
        "femur": [numbers[Label.FEMUR]],
        "tibia": [numbers[Label.TIBIA]],
        "MM": [numbers[Label.MEDIAL_MENISCUS]],
    }
    # No segment holds the patella or its cartilage in this map; MFTC spans two segments.
    unreferenced = {group.finding_sites[0].value.value for group in report.content.get_image_measurement_groups()}
    assert unreferenced == {"P", "MFTC"}


def test_finding_sites_carry_region_and_laterality(sr_file: Path) -> None:
    report = hd.sr.srread(sr_file)
    group = report.content.get_volumetric_roi_measurement_groups(
        finding_site=hd.sr.CodedConcept("ecMF", "99MSKCDS", "x")
    )
    (site,) = group[0].finding_sites
    assert site.value.meaning == "External subregion of the central medial femur cartilage"
    assert site.laterality.value == "24028007"  # Right
    (measurement,) = group[0].get_measurements()
    assert (measurement.name.value, measurement.derivation.value, measurement.unit.value) == (
        "cart_thickness",
        "373098007",
        "mm",
    )
    algorithm = {
        item.ConceptNameCodeSequence[0].CodeValue: item.TextValue
        for item in measurement[0].ContentSequence
        if item.ValueType == "TEXT"
    }
    assert (algorithm["111001"], algorithm["111003"]) == ("knee-sam", "0.3.0")  # Algorithm Name, Algorithm Version


def test_evidence_lists_the_source_series_and_the_seg(
    sr_file: Path, segmentation: hd.seg.Segmentation, sources: list[pydicom.Dataset]
) -> None:
    ds = pydicom.dcmread(sr_file)
    series = {
        item.SeriesInstanceUID: {ref.ReferencedSOPInstanceUID for ref in item.ReferencedSOPSequence}
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for item in study.ReferencedSeriesSequence
    }
    assert series == {
        sources[0].SeriesInstanceUID: {source.SOPInstanceUID for source in sources},
        segmentation.SeriesInstanceUID: {segmentation.SOPInstanceUID},
    }


def test_empty_biomarker_set_is_refused(segmentation: hd.seg.Segmentation, sources: list[pydicom.Dataset]) -> None:
    empty = BiomarkerSet(laterality="right", laterality_source="dicom")
    with pytest.raises(
        ValueError, match=r"^no biomarker to report: a measurement report needs at least one measurement$"
    ):
        build_measurement_report(empty, segmentation, sources, ALGORITHM)


def test_seg_of_another_study_is_refused(segmentation: hd.seg.Segmentation, biomarkers: BiomarkerSet) -> None:
    other_study = source_series(StudySpec())
    with pytest.raises(ValueError, match=r"^the SEG and the source images belong to different studies$"):
        build_measurement_report(biomarkers, segmentation, other_study, ALGORITHM)
