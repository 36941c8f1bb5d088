"""The analyzer: the pipeline a worker runs, found by an import path so no callable is ever pickled.

An analyzer is a synchronous callable ``StudyRef -> AnalysisResult`` (CPU/GPU heavy) that also says
which model versions it runs (``model_versions``, a mapping artifact name -> version). Those versions
key the result store, so an API pod can tell whether a stored result is current without running
anything, and a worker only takes jobs meant for the models it has.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from app.analysis.records import StudyRef
from schemas.analysis import AnalysisResult


@runtime_checkable
class Analyzer(Protocol):
    """The pipeline: ``fetch -> select -> segment -> measure -> triage`` for one study (``app.analysis.study``).

    It may also have ``prepare()``, which loads its models; workers call it once when they start.
    """

    model_versions: Mapping[str, str]

    def __call__(self, ref: StudyRef, /) -> AnalysisResult: ...


class AnalyzerConfigError(ValueError):
    """The configured analyzer cannot be imported or is not an analyzer."""


class NoSuitableKneeMri(ValueError):
    """The study holds no knee MRI the pipeline can analyse (no 3D morphology series, unknown side).

    A ``ValueError``, so the job fails at once instead of being retried; the hook answers a failed job
    with this error by the "no suitable knee MRI" card rather than "analysis failed".
    """


def unsuitable_reason(error: str | None) -> str | None:
    """Why the study is unsuitable, when a failed job's recorded error (``Type: message``) says it is."""
    prefix = f"{NoSuitableKneeMri.__name__}: "
    return error.removeprefix(prefix) if error and error.startswith(prefix) else None


def prepare_analyzer(analyzer: object) -> None:
    """Load the analyzer's models now (worker start) if it can, so the first job does not pay for it.

    Optional: an analyzer without ``prepare()`` (a test double) loads nothing ahead of time.
    """
    prepare = getattr(analyzer, "prepare", None)
    if callable(prepare):
        prepare()


def resolve_analyzer(import_path: str) -> Analyzer:
    """Import ``'package.module:attribute'`` (MSKCDS_ANALYZER) and check that it is an analyzer."""
    module_name, _, attribute = import_path.partition(":")
    if not module_name or not attribute:
        raise AnalyzerConfigError(
            f"MSKCDS_ANALYZER={import_path!r}: expected 'package.module:attribute', "
            "e.g. 'app.analysis.study:analyze_study_ref'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AnalyzerConfigError(f"MSKCDS_ANALYZER={import_path!r}: cannot import {module_name!r} ({exc})") from exc
    try:
        analyzer = getattr(module, attribute)
    except AttributeError:
        raise AnalyzerConfigError(f"MSKCDS_ANALYZER={import_path!r}: {module_name} has no {attribute!r}") from None
    model_versions_of(analyzer, name=import_path)
    return analyzer


def model_versions_of(analyzer: object, *, name: str | None = None) -> dict[str, str]:
    """The analyzer's model versions, refused with a clear message when it has none."""
    label = name or getattr(analyzer, "__qualname__", type(analyzer).__qualname__)
    if not callable(analyzer):
        raise AnalyzerConfigError(f"analyzer {label} is not callable")
    versions = getattr(analyzer, "model_versions", None)
    if not isinstance(versions, Mapping) or not versions:
        raise AnalyzerConfigError(
            f"analyzer {label} has no 'model_versions' mapping (artifact name -> version): "
            "results are keyed by model versions, so an analyzer must name them"
        )
    return {str(key): str(value) for key, value in versions.items()}
