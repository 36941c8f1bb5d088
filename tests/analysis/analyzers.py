"""Test doubles of the pipeline (the analyzer layer): deterministic, slow, failing and flaky analyzers.

Worker subprocesses find them by import path (``MSKCDS_ANALYZER=tests.analysis.analyzers:slow_analyzer``),
as they would find the real pipeline. The slow analyzer coordinates with the test through files in
``$MSKCDS_TEST_ANALYZER_DIR`` (test-only variable): each run writes ``<pid>.started``; the first run
then sleeps, so the test can kill its worker; a later run sees an earlier ``.started`` and finishes at once.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from app.analysis import StudyRef
from schemas.analysis import AnalysisResult, SeriesUsed
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet

MODEL_VERSIONS = {"knee-test-segmenter": "1.0.0", "test-triage": "0.1.0"}
MODEL_KEY = "knee-test-segmenter=1.0.0;test-triage=0.1.0"


def build_result(ref: StudyRef, model_versions: dict[str, str] = MODEL_VERSIONS) -> AnalysisResult:
    """The deterministic result of a study: medial tibial cartilage 2.25 mm thick, femur 61,000 mm3."""
    return AnalysisResult(
        study_instance_uid=ref.study_instance_uid,
        model_versions=model_versions,
        series=[SeriesUsed(role="morphology", series_instance_uids=[f"{ref.study_instance_uid}.1"])],
        measurements=BiomarkerSet(
            laterality="right",
            laterality_source="dicom",
            biomarkers=[
                Biomarker.of(BiomarkerName.CARTILAGE_THICKNESS_MEAN, "MT", 2.25),
                Biomarker.of(BiomarkerName.BONE_VOLUME, "femur", 61000.0),
            ],
        ),
        created_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
    )


class FixedAnalyzer:
    """Returns :func:`build_result` and counts its calls."""

    model_versions = MODEL_VERSIONS

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, ref: StudyRef) -> AnalysisResult:
        with self._lock:
            self.calls += 1
        return build_result(ref)


class FailingAnalyzer:
    """The study cannot be analysed (a ValueError, as the imaging layer's LoaderError is)."""

    model_versions = MODEL_VERSIONS

    def __call__(self, ref: StudyRef) -> AnalysisResult:
        raise ValueError(f"no knee morphology series in the study of {ref.patient_reference}")


class FlakyAnalyzer(FixedAnalyzer):
    """Fails ``failures`` times as an unreachable DICOMweb server would, then succeeds."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def __call__(self, ref: StudyRef) -> AnalysisResult:
        result = super().__call__(ref)
        if self.calls <= self.failures:
            raise ConnectionError("DICOMweb server did not answer")
        return result


class WrongVersionsAnalyzer(FixedAnalyzer):
    """Announces one set of model versions and returns results made with another."""

    def __call__(self, ref: StudyRef) -> AnalysisResult:
        return build_result(ref, {**MODEL_VERSIONS, "knee-test-segmenter": "0.9.0"})


class SlowAnalyzer:
    """The first run of a study sleeps (so its worker can be killed mid-job); later runs finish at once."""

    model_versions = MODEL_VERSIONS

    def __call__(self, ref: StudyRef) -> AnalysisResult:
        folder = Path(os.environ["MSKCDS_TEST_ANALYZER_DIR"])
        earlier = list(folder.glob("*.started"))
        (folder / f"{os.getpid()}.started").write_text(ref.study_instance_uid)
        if not earlier:
            time.sleep(120)
        (folder / f"{os.getpid()}.finished").write_text(ref.study_instance_uid)
        return build_result(ref)


fixed_analyzer = FixedAnalyzer()
slow_analyzer = SlowAnalyzer()
failing_analyzer = FailingAnalyzer()
