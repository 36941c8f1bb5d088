"""``load_clinical_models()``: the triage cascade and the risk models named in the settings, verified."""

from __future__ import annotations

from pathlib import Path

from app.clinical.errors import ClinicalModelError
from app.clinical.model_files import RiskModelFile, TriageModelFile
from app.clinical.model_io import load_model_folder
from app.clinical.risk import RiskModel
from app.clinical.triage import TriageModel
from app.settings import Settings, get_settings
from schemas.analysis import Demographics
from schemas.biomarkers import BiomarkerSet
from schemas.clinical import RiskResult, TriageResult


class ClinicalModels:
    """The loaded clinical models. Cheap to call: pure arithmetic on stored coefficients."""

    def __init__(self, triage: TriageModelFile, risks: list[RiskModelFile]) -> None:
        outcomes = [r.outcome for r in risks]
        if len(set(outcomes)) != len(outcomes):
            raise ClinicalModelError(f"two risk models predict the same outcome: {outcomes}")
        self._triage = TriageModel(triage)
        self._risks = [RiskModel(r) for r in risks]
        self.versions: dict[str, str] = {triage.model_id: triage.version} | {r.model_id: r.version for r in risks}

    def triage(self, biomarkers: BiomarkerSet) -> TriageResult:
        """Worklist priority for one knee, with the deciding stage and reasons."""
        return self._triage.decide(biomarkers)

    def risk(
        self,
        biomarkers: BiomarkerSet,
        demographics: Demographics,
        prior: BiomarkerSet | None = None,
        months_since_prior: float | None = None,
    ) -> list[RiskResult]:
        """One result per outcome. Raises MissingFeatureError when age, sex, BMI or a biomarker is missing."""
        return [model.score(biomarkers, demographics, prior, months_since_prior) for model in self._risks]


def load_clinical_models(model_dir: Path | None = None, settings: Settings | None = None) -> ClinicalModels:
    """Load, sha256-check and validate the configured triage and risk model folders (fail loudly).

    Each is looked up in ``model_dir`` (default MSKCDS_MODEL_DIR), then in the repository's models/.
    """
    settings = settings or get_settings()
    triage_folder = settings.model_folder(settings.triage_model, model_dir)
    triage = load_model_folder(triage_folder)
    if not isinstance(triage, TriageModelFile):
        raise ClinicalModelError(f"{triage_folder}: is a risk model, MSKCDS_TRIAGE_MODEL needs a triage model")
    risks = []
    for name in settings.risk_models:
        folder = settings.model_folder(name, model_dir)
        risk = load_model_folder(folder)
        if not isinstance(risk, RiskModelFile):
            raise ClinicalModelError(f"{folder}: is a triage model, MSKCDS_RISK_MODELS needs risk models")
        risks.append(risk)
    return ClinicalModels(triage, risks)
