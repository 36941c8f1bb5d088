"""Start-up fails loudly: a bad model configuration stops the app instead of serving without it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.analysis import AnalyzerConfigError
from app.clinical import ClinicalModelError
from app.main import create_app
from app.settings import Settings
from tests.api.conftest import InterimRiskModels


def test_unknown_analyzer_stops_start_up(settings: Settings) -> None:
    settings.analyzer = "app.nowhere:analyze"
    app = create_app(settings, clinical=InterimRiskModels())
    with pytest.raises(AnalyzerConfigError, match=r"app\.nowhere"), TestClient(app):
        pass


def test_missing_clinical_model_stops_start_up(settings: Settings, tmp_path) -> None:
    settings.model_dir = tmp_path / "no-models-here"
    app = create_app(settings)
    with pytest.raises(ClinicalModelError), TestClient(app):
        pass
