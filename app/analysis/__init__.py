"""Analyses ahead of time: result store, job queue, workers and ingestion (the pipeline is ``study.py``).

``from app.analysis import create_analysis_service, StudyRef`` is all the API needs; see
``docs/analysis.md`` for the two modes (embedded, scale) and their guarantees.
"""

from app.analysis.allowlist import NotAllowlisted
from app.analysis.analyzer import Analyzer, AnalyzerConfigError
from app.analysis.feedback import FeedbackCount, FeedbackRecord, OverrideReasonCode
from app.analysis.records import JobState, JobStatus, StudyRef, job_id_for, model_key_for
from app.analysis.service import AnalysisService, create_analysis_service

__all__ = [
    "AnalysisService",
    "Analyzer",
    "AnalyzerConfigError",
    "FeedbackCount",
    "FeedbackRecord",
    "JobState",
    "JobStatus",
    "NotAllowlisted",
    "OverrideReasonCode",
    "StudyRef",
    "create_analysis_service",
    "job_id_for",
    "model_key_for",
]
