"""The analyzer the queue runs: one study -> one ``AnalysisResult``.

``fetch`` (DICOMweb: metadata, then only the chosen series) -> ``segment`` (the morphology acquisition's
first echo) -> ``measure`` (plates, menisci, bones; T2 / T1rho when the study has them) -> ``triage`` ->
``risk`` (when the person's age, sex and BMI are known) -> ``outputs`` (one FHIR transaction, when the
job names a FHIR server and patient). ``mskcds analyze`` runs the same steps from ``segment`` on
(:meth:`StudyAnalyzer.analyze`), with demographics from its flags.

Models load once per process (:meth:`StudyAnalyzer.prepare`, called when a worker starts). The model
versions are read from the model cards without loading weights or importing torch, because API pods,
which have no torch, read them to key the result store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from app.analysis.analyzer import NoSuitableKneeMri
from app.analysis.fetch import open_selection
from app.analysis.records import StudyRef
from app.clients.fhir import FhirClient, post_transaction
from app.clients.http import run_sync
from app.clinical import ClinicalModels, MissingFeatureError, load_clinical_models
from app.imaging import SeriesSelectionError, StudySelection
from app.log import get_logger
from app.measurement import KneeMeasurement, measure_knee
from app.metrics import observe_stage
from app.settings import Settings, get_settings
from schemas.analysis import AnalysisResult, Demographics, SeriesUsed
from schemas.biomarkers import BiomarkerSet, Laterality, LateralitySource
from schemas.clinical import RiskResult
from schemas.volume import Volume

if TYPE_CHECKING:
    from app.segmentation import Segmenter

#: The stages :meth:`StudyAnalyzer.analyze` reports to its ``progress`` callback, in order.
STAGES: tuple[str, ...] = ("segment", "measure", "triage", "risk")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Prior:
    """An earlier exam of the same knee, for the risk models' change variant."""

    biomarkers: BiomarkerSet
    months_since_prior: float


@dataclass(frozen=True)
class StudyAnalysis:
    """The result, and what only a local caller needs: the label map (``mskcds segment``) and maps."""

    result: AnalysisResult
    labels: Volume
    measurement: KneeMeasurement


class StudyAnalyzer:
    """``StudyRef -> AnalysisResult`` with the configured segmenter and clinical models."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._segmenter: Segmenter | None = None
        self._clinical: ClinicalModels | None = None

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    @property
    def model_versions(self) -> dict[str, str]:
        """Segmentation (from its card, torch-free) + clinical model versions: the result store's key."""
        from app.segmentation.card import segmentation_versions

        return segmentation_versions(self.settings) | self.clinical.versions

    @property
    def clinical(self) -> ClinicalModels:
        if self._clinical is None:
            self._clinical = load_clinical_models(self.settings.model_dir, self.settings)
        return self._clinical

    def prepare(self) -> None:
        """Load the segmenter and the clinical models (once; a worker calls this when it starts)."""
        with self._lock:
            if self._segmenter is None:
                from app.segmentation import Segmenter

                self._segmenter = Segmenter.from_settings(self.settings)
            _ = self.clinical  # loads and verifies the model files now

    @property
    def segmenter(self) -> Segmenter:
        self.prepare()
        assert self._segmenter is not None
        return self._segmenter

    def __call__(self, ref: StudyRef, /) -> AnalysisResult:
        """Analyse the study ``ref`` names; post its FHIR resources when ``ref`` names a FHIR server."""
        settings = self.settings
        with observe_stage("fetch"):
            try:
                selection = open_selection(settings, ref.dicomweb_url, ref.study_instance_uid)
            except SeriesSelectionError as error:
                raise NoSuitableKneeMri(str(error)) from None
        morphology = selection.morphology
        # unattended, the side may also come from the scanner position (only when clearly off the midline)
        if morphology.laterality is None or morphology.laterality_source is None:
            raise NoSuitableKneeMri(
                "laterality unknown: no DICOM Laterality, no side in the series description, and the field "
                "of view is centred near the midline; medial and lateral cannot be told apart"
            )
        demographics, notes = self._demographics(ref, morphology.study_date)
        analysis = self.analyze(
            selection, morphology.laterality, morphology.laterality_source, demographics=demographics, notes=notes
        )
        if ref.fhir_url and ref.patient_reference:
            with observe_stage("outputs"):
                post_outputs(analysis.result, ref.fhir_url, ref.patient_reference, settings)
        return analysis.result

    def analyze(
        self,
        selection: StudySelection,
        laterality: Laterality,
        laterality_source: LateralitySource,
        *,
        demographics: Demographics | None = None,
        prior: Prior | None = None,
        notes: list[str] | None = None,
        progress: Progress | None = None,
    ) -> StudyAnalysis:
        """Segment, measure, triage and (with complete demographics) score risk for a selected study.

        Raises ``ValueError`` for contradictory input (a prior of the other knee, or not earlier).
        """
        step = progress or (lambda _stage: None)
        notes = list(notes or [])
        morphology = selection.morphology
        step("segment")
        with observe_stage("segment"):
            segmentation = self.segmenter.segment(morphology.volume(0), laterality)
        step("measure")
        with observe_stage("measure"):
            measurement = measure_knee(
                segmentation.labels,
                laterality,
                laterality_source,
                t2=selection.t2.echoes if selection.t2 else None,
                t1rho=selection.t1rho.echoes if selection.t1rho else None,
            )
        notes += measurement.notes
        step("triage")
        triage = self.clinical.triage(measurement.biomarkers)
        step("risk")
        risk, why_not = score_risk(self.clinical, measurement.biomarkers, demographics, prior)
        notes += why_not
        result = AnalysisResult(
            study_instance_uid=morphology.study_instance_uid,
            study_date=morphology.study_date,
            model_versions=self.segmenter.model_versions | self.clinical.versions,
            series=series_used(selection),
            measurements=measurement.biomarkers,
            segmentation_confidence=dict(segmentation.confidence),
            triage=triage,
            risk=risk,
            notes=notes,
            created_at=datetime.now(UTC),
        )
        return StudyAnalysis(result, segmentation.labels, measurement)

    def _demographics(self, ref: StudyRef, study_date: date | None) -> tuple[Demographics | None, list[str]]:
        """Age, sex and BMI at the study date from the job's FHIR server, or why there are none."""
        if not (ref.fhir_url and ref.patient_reference):
            return None, ["risk not estimated: the job names no FHIR server and patient to read age, sex and BMI"]
        patient_id = ref.patient_reference.removeprefix("Patient/")

        async def read() -> Demographics:
            async with FhirClient.from_settings(self.settings, ref.fhir_url) as client:
                return await client.demographics(patient_id, study_date or datetime.now(UTC).date())

        with observe_stage("demographics"):
            return run_sync(read()), []


def score_risk(
    models: ClinicalModels, biomarkers: BiomarkerSet, demographics: Demographics | None, prior: Prior | None
) -> tuple[list[RiskResult], list[str]]:
    """Risk results, or none and why: the models need age, sex, BMI and their biomarkers."""
    if demographics is None:
        return [], []
    missing = [name for name, value in (("age", demographics.age_years), ("sex", demographics.sex),
                                        ("BMI", demographics.bmi)) if value is None]
    if missing:
        return [], [f"risk not estimated: {', '.join(missing)} unknown"]
    try:
        return models.risk(
            biomarkers,
            demographics,
            prior.biomarkers if prior else None,
            prior.months_since_prior if prior else None,
        ), []
    except MissingFeatureError as error:
        return [], [f"risk not estimated: {error}"]


def series_used(selection: StudySelection) -> list[SeriesUsed]:
    """The acquisitions the analysis read, by role."""
    chosen = (("morphology", selection.morphology), ("t2", selection.t2), ("t1rho", selection.t1rho))
    return [
        SeriesUsed(role=role, series_instance_uids=list(a.series_instance_uids), description=a.description or None)
        for role, a in chosen
        if a is not None
    ]


def post_outputs(result: AnalysisResult, fhir_url: str, patient_reference: str, settings: Settings) -> None:
    """One conditional transaction (Observations, RiskAssessments, DiagnosticReport); posting again
    creates nothing, so a job retried after a failed post is harmless."""
    from app.outputs.fhir_bundle import analysis_bundle

    summary = post_transaction(analysis_bundle(result, patient_reference=patient_reference), fhir_url, settings)
    get_logger(__name__).info("analysis.outputs_posted", created=sum(summary.created.values()),
                              existing=sum(summary.existing.values()))


#: What ``MSKCDS_ANALYZER`` names by default.
analyze_study_ref = StudyAnalyzer()
