"""The clinical commands end to end on small simulated cohorts, and their error paths."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.clinical.model_files import RiskModelFile, TriageModelFile
from app.clinical.model_io import load_model_folder

runner = CliRunner()


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cohorts")
    paths = {"oai": folder / "oai.csv", "referral": folder / "referral.csv"}
    for population, n in (("oai", 3000), ("referral", 2400)):
        result = runner.invoke(cli, ["simulate-cohort", "--out", str(paths[population]), "--n", str(n), "--seed", "5",
                                     "--population", population])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"wrote {n} simulated {population} knees to {paths[population]}"
    return paths


@pytest.mark.slow
def test_train_and_evaluate_risk(cohorts: dict[str, Path], tmp_path: Path) -> None:
    out, report = tmp_path / "risk-incident-oa", tmp_path / "report"
    result = runner.invoke(cli, ["train-risk", "--cohort", str(cohorts["oai"]), "--outcome", "incident_oa",
                                 "--out", str(out), "--bootstrap", "30"])
    assert result.exit_code == 0, result.output
    model = load_model_folder(out)
    assert isinstance(model, RiskModelFile) and model.method == "logistic"
    assert "| AUC gap | difference (95 % CI) |" in result.output

    result = runner.invoke(cli, ["evaluate-risk", "--model", str(out), "--cohort", str(cohorts["oai"]),
                                 "--report", str(report), "--bootstrap", "30"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in report.iterdir()) == ["calibration.png", "decision_curve.png", "report.md",
                                                        "roc.png"]
    assert (report / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (report / "report.md").read_text()
    assert "| imaging_change minus demographics |" in text and "![roc](roc.png)" in text
    assert f"Produced by: `mskcds evaluate-risk --model {out}" in text


@pytest.mark.slow
def test_train_and_evaluate_triage(cohorts: dict[str, Path], tmp_path: Path) -> None:
    out, report = tmp_path / "triage", tmp_path / "report"
    result = runner.invoke(cli, ["train-triage", "--cohort", str(cohorts["referral"]), "--out", str(out),
                                 "--bootstrap", "30"])
    assert result.exit_code == 0, result.output
    assert isinstance(load_model_folder(out), TriageModelFile)
    result = runner.invoke(cli, ["evaluate-triage", "--model", str(out), "--cohort", str(cohorts["referral"]),
                                 "--report", str(report), "--bootstrap", "30", "--minutes-per-read", "10"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in report.iterdir()) == ["report.md", "triage_stages.png"]
    assert "| reader hours saved per 1000 |" in (report / "report.md").read_text()


def test_one_cohort_source_is_required(cohorts: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(cli, ["train-risk", "--outcome", "tkr", "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: give exactly one of --cohort (CSV) or --oai-dir (OAI ASCII files)"


def test_unknown_outcome_is_refused(cohorts: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(cli, ["train-risk", "--cohort", str(cohorts["oai"]), "--outcome", "death",
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --outcome must be incident_oa or tkr, --method cox or logistic"


def test_corrupt_model_is_reported_without_traceback(cohorts: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(cli, ["evaluate-risk", "--model", str(tmp_path), "--cohort", str(cohorts["oai"]),
                                 "--report", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: {tmp_path}: no model_card.json; a model folder needs its card (name, "
                                     "version, sha256)")


def test_too_small_cohort_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("subject_id,age_years,sex,bmi,tkr\n1,60,female,25,0\n")
    result = runner.invoke(cli, ["train-risk", "--cohort", str(tmp_path / "c.csv"), "--outcome", "tkr",
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: 1 subjects cannot be split into parts of [0.7, 0.3]: a part would be empty"


def test_cox_without_follow_up_times_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("subject_id,age_years,sex,bmi,cartilage_thickness_mean:MT,tkr\n"
                                    "1,60,female,25,1.7,0\n2,70,male,31,1.2,1\n")
    result = runner.invoke(cli, ["train-risk", "--cohort", str(tmp_path / "c.csv"), "--outcome", "tkr",
                                 "--method", "cox", "--out", str(tmp_path / "m"), "--test-fraction", "0.5"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: a Cox model needs 'tkr_months' (months to event or censoring)"
