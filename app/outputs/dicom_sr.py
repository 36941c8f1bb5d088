"""The biomarkers as a DICOM Structured Report: a TID 1500 Measurement Report built with highdicom.

One measurement group per Eckstein region (or bone, or meniscus). A group whose region lies inside one
tissue of the SEG (e.g. ``cMF`` in the femoral cartilage segment) is a TID 1411 volumetric ROI group that
references that segment, so a viewer can show the measurement over its segment; the two femorotibial
compartments (``MFTC``, ``LFTC``) span two segments and are TID 1501 groups without an ROI.

Each measurement (TID 300) is named by its quantity (:data:`SR_CONCEPTS`), with the statistic as
derivation, its UCUM unit, and the model as algorithm. The finding site is the region (project coding
scheme ``99MSKCDS``, the region codes of the FHIR CodeSystem) with the knee's laterality (SNOMED CT).
The report is an AI result not verified by a clinician, and says so (Verification Flag UNVERIFIED,
observer = device).
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from app import __version__
from app.outputs.dicom_seg import MANUFACTURER, SEGMENT_CODES, Algorithm, segment_numbers, with_type2_attributes
from app.outputs.fhir_codes import region_display
from schemas.biomarkers import (
    FEMORAL_SUBREGIONS,
    TIBIAL_SUBREGIONS,
    Biomarker,
    BiomarkerName,
    BiomarkerSet,
    Unit,
)
from schemas.labels import Label

#: Private coding scheme of the project's biomarker and region codes (PS3.16 8.2: private designators
#: start with "99"), identified in the Coding Scheme Identification Sequence of every report.
PROJECT_SCHEME = "99MSKCDS"

UCUM_UNITS: dict[Unit, Code] = {
    Unit.MM: Code("mm", "UCUM", "millimeter"),
    Unit.MM3: Code("mm3", "UCUM", "cubic millimeter"),
    Unit.MM2: Code("mm2", "UCUM", "square millimeter"),
    Unit.PERCENT: Code("%", "UCUM", "percent"),
    Unit.MS: Code("ms", "UCUM", "millisecond"),
}


def _project(value: str, meaning: str) -> Code:
    return Code(value, PROJECT_SCHEME, meaning)


_CARTILAGE_THICKNESS = _project("cart_thickness", "Cartilage thickness")
_MENISCUS_THICKNESS = _project("meniscus_thick", "Meniscus thickness")
_T1RHO = _project("t1rho", "T1rho")

#: TID 300 names each measurement by its quantity and the statistic by its derivation (PS3.16 CID 7464):
#: "T2" + "Mean" is the mean T2 of the group's region. DCM 113065 "T2" is the standard concept; the
#: other quantities have project codes, equal to the FHIR CodeSystem's biomarker codes where those fit
#: DICOM's 16-character Code Value (longer ones would need Long Code Value, which many readers, highdicom's
#: own TID 1411 reader included, do not handle).
SR_CONCEPTS: dict[BiomarkerName, tuple[Code, Code | None]] = {
    BiomarkerName.CARTILAGE_THICKNESS_MEAN: (_CARTILAGE_THICKNESS, codes.SCT.Mean),
    BiomarkerName.CARTILAGE_THICKNESS_MEDIAN: (_CARTILAGE_THICKNESS, codes.SCT.Median),
    BiomarkerName.CARTILAGE_THICKNESS_P5: (_CARTILAGE_THICKNESS, codes.SCT.FifthPercentile),
    BiomarkerName.CARTILAGE_THICKNESS_MAX: (_CARTILAGE_THICKNESS, codes.SCT.Maximum),
    BiomarkerName.CARTILAGE_VOLUME: (_project("cartilage_volume", "Cartilage volume"), None),
    BiomarkerName.CARTILAGE_SURFACE_AREA: (_project("cart_area", "Cartilage surface area"), None),
    BiomarkerName.DENUDED_AREA_PCT: (_project("denuded_area_pct", "Denuded bone area, percent of the plate"), None),
    BiomarkerName.BONE_VOLUME: (_project("bone_volume", "Bone volume"), None),
    BiomarkerName.MENISCUS_VOLUME: (_project("meniscus_volume", "Meniscus volume"), None),
    BiomarkerName.MENISCUS_THICKNESS_MEAN: (_MENISCUS_THICKNESS, codes.SCT.Mean),
    BiomarkerName.MENISCUS_EXTRUSION: (_project("menisc_extrusion", "Meniscus extrusion"), None),
    BiomarkerName.T2_MEAN: (codes.DCM.T2, codes.SCT.Mean),
    BiomarkerName.T2_SD: (codes.DCM.T2, codes.SCT.StandardDeviation),
    BiomarkerName.T1RHO_MEAN: (_T1RHO, codes.SCT.Mean),
    BiomarkerName.T1RHO_SD: (_T1RHO, codes.SCT.StandardDeviation),
}

LATERALITY: dict[str, Code] = {"left": codes.SCT.Left, "right": codes.SCT.Right}

_PLATE_LABELS: dict[str, Label] = {
    "MT": Label.MEDIAL_TIBIAL_CARTILAGE,
    "LT": Label.LATERAL_TIBIAL_CARTILAGE,
    "P": Label.PATELLAR_CARTILAGE,
    **{plate: Label.FEMORAL_CARTILAGE for plate in ("cMF", "cLF", "TrF", "MF", "LF", "F")},
    "femur": Label.FEMUR,
    "tibia": Label.TIBIA,
    "patella": Label.PATELLA,
    "MM": Label.MEDIAL_MENISCUS,
    "LM": Label.LATERAL_MENISCUS,
}


def region_label(region: str) -> Label | None:
    """The one tissue (SEG segment) a region lies in; None for regions spanning two (MFTC, LFTC)."""
    if region in TIBIAL_SUBREGIONS or region in FEMORAL_SUBREGIONS:
        return _PLATE_LABELS[region[1:]]
    return _PLATE_LABELS.get(region)


def region_code(region: str) -> Code:
    """The finding site of a region; the FHIR display, shortened to DICOM's 64-character Code Meaning."""
    return _project(region, region_display(region).replace(" (weight-bearing)", ""))


def _measurement(biomarker: Biomarker, algorithm: hd.sr.AlgorithmIdentification) -> hd.sr.Measurement:
    name, derivation = SR_CONCEPTS[biomarker.name]
    return hd.sr.Measurement(
        name=name, value=biomarker.value, unit=UCUM_UNITS[biomarker.unit], derivation=derivation, algorithm_id=algorithm
    )


def _groups(
    biomarkers: BiomarkerSet, segmentation: Dataset, algorithm: Algorithm
) -> list[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations | hd.sr.MeasurementsAndQualitativeEvaluations]:
    algorithm_id = hd.sr.AlgorithmIdentification(name=algorithm.name, version=algorithm.version)
    numbers = segment_numbers(segmentation)
    laterality = LATERALITY[biomarkers.laterality]
    by_region: dict[str, list[Biomarker]] = {}
    for biomarker in biomarkers.biomarkers:
        by_region.setdefault(biomarker.region, []).append(biomarker)
    groups: list[
        hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations | hd.sr.MeasurementsAndQualitativeEvaluations
    ] = []
    for region, members in by_region.items():
        label = region_label(region)
        common = {
            "tracking_identifier": hd.sr.TrackingIdentifier(
                uid=hd.UID(), identifier=f"{region} ({biomarkers.laterality} knee)"
            ),
            "finding_type": SEGMENT_CODES[label].type if label is not None else codes.SCT.Cartilage,
            "finding_sites": [hd.sr.FindingSite(region_code(region), laterality=laterality)],
            "algorithm_id": algorithm_id,
            "measurements": [_measurement(biomarker, algorithm_id) for biomarker in members],
        }
        if label is not None and label in numbers:
            segment = hd.sr.ReferencedSegment.from_segmentation(segmentation, segment_number=numbers[label])
            groups.append(
                hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(referenced_segment=segment, **common)
            )
        else:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(**common))
    return groups


def build_measurement_report(
    biomarkers: BiomarkerSet,
    segmentation: Dataset,
    source_images: Sequence[Dataset],
    algorithm: Algorithm,
    *,
    series_number: int = 9002,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 Measurement Report of ``biomarkers``, referencing ``segmentation`` (from
    :func:`app.outputs.dicom_seg.build_segmentation`) and the ``source_images`` it was derived from.

    Raises:
        ValueError: when there is no biomarker, or the SEG belongs to another study.
    """
    if not biomarkers.biomarkers:
        raise ValueError("no biomarker to report: a measurement report needs at least one measurement")
    if str(segmentation.StudyInstanceUID) != str(source_images[0].StudyInstanceUID):
        raise ValueError("the SEG and the source images belong to different studies")
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            # The same model version always reports as the same device.
            uid=generate_uid(entropy_srcs=[MANUFACTURER, algorithm.name, algorithm.version]),
            name=algorithm.name,
            manufacturer_name=MANUFACTURER,
            model_name=f"{algorithm.name} {algorithm.version}",
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=_groups(biomarkers, segmentation, algorithm),
        title=codes.DCM.ImagingMeasurementReport,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[*with_type2_attributes(source_images), segmentation],
        content=report,
        series_instance_uid=series_instance_uid or hd.UID(),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_verified=False,
        series_description=f"AI knee biomarkers ({algorithm.name} {algorithm.version})",
        software_versions=[f"msk-cds {__version__}", f"{algorithm.name} {algorithm.version}"],
        coding_schemes=[
            CodingSchemeIdentificationItem(
                designator=PROJECT_SCHEME,
                name="msk-cds biomarkers and regions",
                responsible_organization="msk-cds",
            )
        ],
    )
