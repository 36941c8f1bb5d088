"""The shipped default models: they load and verify, read like their cards, contain no pickle, and rebuild."""

import json
import shutil
from pathlib import Path

import pytest

from app.checksums import sha256_of
from app.clinical import ClinicalModelError, load_clinical_models
from app.clinical.defaults import RISK_MODELS, TRIAGE_MODEL, build_default_models
from app.clinical.model_files import RiskModelFile, TriageModelFile
from app.clinical.model_io import load_model_folder
from app.clinical.reference import HEALTHY_THICKNESS_MM
from app.settings import REPO_ROOT
from schemas.analysis import Demographics
from schemas.biomarkers import Biomarker, BiomarkerSet

MODELS = REPO_ROOT / "models"
FOLDERS = [TRIAGE_MODEL, *RISK_MODELS]
PICKLE_PROTOCOLS = {bytes([0x80, p]) for p in range(2, 6)}


def healthy_knee() -> BiomarkerSet:
    """What a grade-0 knee measures like: reference thickness, no denuded bone, meniscus in place."""
    values = []
    for plate, thickness in HEALTHY_THICKNESS_MM.items():
        values += [Biomarker.of("cartilage_thickness_mean", plate, thickness),
                   Biomarker.of("cartilage_thickness_p5", plate, 0.42 * thickness),
                   Biomarker.of("denuded_area_pct", plate, 0.0)]
    values += [Biomarker.of("meniscus_extrusion", "MM", 1.5), Biomarker.of("meniscus_extrusion", "LM", 0.8),
               Biomarker.of("meniscus_thickness_mean", "MM", 2.3), Biomarker.of("meniscus_thickness_mean", "LM", 2.2)]
    return BiomarkerSet(laterality="right", laterality_source="dicom", biomarkers=values)


def damaged_knee() -> BiomarkerSet:
    """What a grade-4 knee measures like: full-thickness defects, medial thinning, extruded meniscus."""
    knee = healthy_knee().as_features() | {
        "cartilage_thickness_mean:MT": 0.95, "cartilage_thickness_mean:cMF": 1.0, "cartilage_thickness_p5:MT": 0.0,
        "cartilage_thickness_p5:cMF": 0.0, "denuded_area_pct:cMF": 6.3, "denuded_area_pct:MT": 0.4,
        "meniscus_extrusion:MM": 4.6}
    return BiomarkerSet(laterality="left", laterality_source="dicom", biomarkers=[
        Biomarker.of(k.split(":")[0], k.split(":")[1], v) for k, v in knee.items()])


def test_default_models_load_with_their_versions() -> None:
    models = load_clinical_models()
    assert models.versions == {"triage-knee": "1.0.0", "risk-incident-oa": "1.0.0", "risk-tkr": "1.0.0"}


def test_healthy_knee_is_not_urgent_and_damaged_knee_is() -> None:
    models = load_clinical_models()
    healthy = models.triage(healthy_knee())
    assert (healthy.priority, healthy.stage) == ("deprioritised", "biomarker-classifier")
    damaged = models.triage(damaged_knee())
    assert (damaged.priority, damaged.stage, damaged.stage_index) == ("urgent", "full-thickness-cartilage-loss", 0)
    assert damaged.reasons == ["Full-thickness cartilage loss (denuded bone) over 6.30 % of the central "
                               "(weight-bearing) medial femur plate (urgent above 1.64 %)"]


def test_default_risks_rank_the_damaged_knee_higher() -> None:
    models = load_clinical_models()
    person = Demographics(age_years=64, sex="female", bmi=30.5)
    healthy = {r.outcome: r for r in models.risk(healthy_knee(), person)}
    damaged = {r.outcome: r for r in models.risk(damaged_knee(), person)}
    assert set(healthy) == {"incident_oa", "tkr"}
    assert damaged["tkr"].probability > 3 * healthy["tkr"].probability
    for result in (*healthy.values(), *damaged.values()):
        assert result.ci_low <= result.probability <= result.ci_high and not result.used_prior
        assert result.demographics_only_probability == healthy[result.outcome].demographics_only_probability


@pytest.mark.parametrize("name", FOLDERS)
def test_model_cards_state_provenance_and_hash(name: str) -> None:
    folder = MODELS / name
    model = load_model_folder(folder)
    readme = (folder / "README.md").read_text()
    assert f"`model.json` sha256: `{sha256_of(folder / 'model.json')}`" in readme
    assert "Demonstration coefficients fitted on a simulated cohort, not on patients" in readme
    assert "retrain on OAI or local data with `mskcds train-risk`" in readme
    assert "produced by: `mskcds build-clinical-models --out models`" in readme
    assert model.training.source == "simulated" and model.metrics


@pytest.mark.parametrize("name", FOLDERS)
def test_no_pickle_in_model_folders(name: str) -> None:
    for path in (MODELS / name).iterdir():
        head = path.read_bytes()[:4]
        assert head[:2] not in PICKLE_PROTOCOLS and head != b"PK\x03\x04", path  # pickle, or torch's zip of pickles
        json.loads(path.read_text()) if path.suffix == ".json" else path.read_text()
    for path in MODELS.rglob("*"):
        assert path.suffix not in {".pkl", ".pickle", ".joblib"}, path


def test_clinical_code_never_unpickles() -> None:
    for path in (REPO_ROOT / "app" / "clinical").rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "joblib" not in text and "torch.load" not in text, path


def test_tampered_default_model_stops_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(MODELS, tmp_path / "models", ignore=shutil.ignore_patterns("knee-*"))
    path = tmp_path / "models" / "risk-tkr" / "model.json"
    path.write_text(path.read_text().replace('"horizon_months": 48', '"horizon_months": 60'))
    tampered = r"risk-tkr/model.json: sha256 \w+ differs from \w+ in model_card.json"
    with pytest.raises(ClinicalModelError, match=tampered):
        load_clinical_models(tmp_path / "models")
    monkeypatch.setenv("MSKCDS_RISK_MODELS", '["risk-incident-oa"]')
    from app.settings import get_settings

    get_settings.cache_clear()
    assert load_clinical_models(tmp_path / "models").versions == {"triage-knee": "1.0.0", "risk-incident-oa": "1.0.0"}


@pytest.mark.slow
def test_default_models_rebuild_reproducibly(tmp_path: Path) -> None:
    build_default_models(tmp_path, n_boot=2)
    for name in FOLDERS:
        shipped, rebuilt = load_model_folder(MODELS / name), load_model_folder(tmp_path / name)
        if isinstance(shipped, TriageModelFile):
            assert isinstance(rebuilt, TriageModelFile)
            for ours, theirs in zip(rebuilt.stages[:-1], shipped.stages[:-1], strict=True):
                assert (ours.name, ours.threshold) == (theirs.name, pytest.approx(theirs.threshold, rel=1e-6))
            assert rebuilt.classifier.urgent_threshold == pytest.approx(shipped.classifier.urgent_threshold, rel=1e-4)
            assert rebuilt.classifier.linear.coefficients == pytest.approx(
                shipped.classifier.linear.coefficients, rel=1e-6, abs=1e-9)
            point = {k: v.estimate for k, v in rebuilt.metrics["test"].items()}
            assert point == {k: v.estimate for k, v in shipped.metrics["test"].items()}
        else:
            assert isinstance(shipped, RiskModelFile) and isinstance(rebuilt, RiskModelFile)
            for variant in shipped.variants:
                assert rebuilt.variants[variant].linear.coefficients == pytest.approx(
                    shipped.variants[variant].linear.coefficients, rel=1e-6, abs=1e-9)
            assert {g: m["auc"].estimate for g, m in rebuilt.metrics.items()} == {
                g: m["auc"].estimate for g, m in shipped.metrics.items()}
