"""Start-up fails loudly: a bad model configuration stops the app instead of serving without it."""

from __future__ import annotations

import gc

import pytest
from fastapi.testclient import TestClient

from app.analysis import AnalyzerConfigError, create_analysis_service
from app.clinical import ClinicalModelError
from app.main import create_app
from app.settings import Settings
from tests.api.conftest import FixedRiskModels, KneeAnalyzer


def test_unknown_analyzer_stops_start_up(settings: Settings) -> None:
    settings.analyzer = "app.nowhere:analyze"
    app = create_app(settings, clinical=FixedRiskModels())
    with pytest.raises(AnalyzerConfigError, match=r"app\.nowhere"), TestClient(app):
        pass


def test_missing_clinical_model_stops_start_up(settings: Settings, tmp_path) -> None:
    settings.model_dir = tmp_path / "no-models-here"
    settings.triage_model = "no-such-triage-model"  # in neither MSKCDS_MODEL_DIR nor the repository's models/
    app = create_app(settings)
    with pytest.raises(ClinicalModelError), TestClient(app):
        pass


def test_start_up_objects_are_left_out_of_garbage_collections(settings: Settings) -> None:
    analysis = create_analysis_service(settings, KneeAnalyzer())
    with TestClient(create_app(settings, analysis=analysis, clinical=FixedRiskModels())):
        assert gc.get_freeze_count() > 10_000  # modules, models, schemas: not rescanned by full collections
    assert gc.get_freeze_count() == 0  # and handed back to the collector at shutdown
