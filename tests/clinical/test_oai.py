"""OAI ASCII ingestion on export files built here in the OAI layout (codes, missing values, header case)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.clinical.cohort import knee_biomarkers
from app.clinical.errors import CohortError
from app.clinical.model_files import RiskModelFile, TriageModelFile
from app.clinical.model_io import load_model_folder
from app.clinical.oai import OaiRequest, coded_number, load_oai_cohort, read_oai_table
from app.clinical.registry import ClinicalModels
from app.clinical.simulation import simulate_cohort
from schemas.analysis import Demographics
from tests.clinical.oai_files import contact_months, oai_id, write_oai_export


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    return simulate_cohort(2500, seed=11)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory, source: pd.DataFrame) -> Path:
    directory = tmp_path_factory.mktemp("oai")
    write_oai_export(directory, source)
    return directory


def test_missing_codes_and_coded_cells(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("id|SIDE|V00AGE|P01BMI|V00XRKL\n"
                                    "1|1: Right|61|.: Missing Form/Incomplete Workbook|2\n"
                                    "2|2: Left|.A: Not Expected| |.T: Technical Problems\n")
    table = read_oai_table(tmp_path / "t.txt")
    assert list(table.columns) == ["ID", "SIDE", "V00AGE", "P01BMI", "V00XRKL"]
    assert table["P01BMI"].isna().all() and table.loc[1, ["V00AGE", "V00XRKL"]].isna().all()
    assert [coded_number(v) for v in table["SIDE"]] == [1.0, 2.0]
    assert coded_number("3: Replacement adjudicated, confirmed") == 3.0
    with pytest.raises(CohortError, match="cannot read 'Right' as a number or an OAI code"):
        coded_number("Right")


def test_cohort_from_oai_files(export: Path, source: pd.DataFrame) -> None:
    frame, log = load_oai_cohort(export, OaiRequest(current_visit="03", prior_visit="00"))
    assert len(frame) == len(source)
    assert log[0] == "kMRI_QCart_Eckstein03: 2500 knees"
    first = frame.set_index("subject_id").loc[oai_id(0)]
    assert first["oai_readprj"] == "22"  # the project that also read the prior visit, not 66
    assert first["side"] == source["side"][0]
    assert first["cartilage_thickness_mean:MT"] == pytest.approx(source["cartilage_thickness_mean:MT"][0], abs=1e-4)
    assert first["prior:cartilage_thickness_mean:cMF"] == pytest.approx(
        source["prior:cartilage_thickness_mean:cMF"][0], abs=1e-4)
    assert first["months_since_prior"] == 24
    assert first["age_years"] == pytest.approx(round(source["age_years"][0] - 2, 1) + 2)
    assert first["sex"] == source["sex"][0]
    assert first["oai_kl"] == source["sim_kl"][0]  # central reading (project 15), not project 37's grade 4
    second = frame.set_index("subject_id").loc[oai_id(1)]
    assert np.isnan(second["bmi"])  # ".: Missing Form/Incomplete Workbook"
    third = frame.set_index("subject_id").loc[oai_id(2)]
    assert np.isnan(third["prior:cartilage_thickness_mean:MT"])  # ".A: Not Expected"
    fourth = frame.set_index("subject_id").loc[oai_id(3)]
    assert fourth["tkr"] == source["tkr"][3]  # "failed to confirm" is not a replacement


def test_outcomes_from_oai_files(export: Path, source: pd.DataFrame) -> None:
    frame, _ = load_oai_cohort(export, OaiRequest(current_visit="03", prior_visit="00"))
    events = source["tkr"] == 1
    assert (frame["tkr"] == 1).sum() == events.sum()
    replaced = frame["tkr"] == 1
    assert frame.loc[replaced, "tkr_months"].to_numpy() == pytest.approx(
        source.loc[events, "tkr_months"].to_numpy(), abs=0.02)  # whole days
    censored = source.index[~events][0]
    assert frame["tkr_months"][censored] == contact_months(source["tkr_months"][censored])
    at_risk = source["sim_kl"] <= 1
    assert frame["incident_oa"][at_risk].tolist() == source["incident_oa"][at_risk].tolist()
    assert frame["incident_oa_months"][at_risk].eq(48).all()
    assert frame["incident_oa"][~at_risk].isna().all()


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(CohortError) as error:
        load_oai_cohort(tmp_path, OaiRequest())
    assert str(error.value) == f"{tmp_path}: no kMRI_QCart_Eckstein03.txt (matched case-insensitively)"


@pytest.mark.slow
def test_train_risk_on_oai_files_writes_a_model_that_loads_and_scores(export: Path, tmp_path: Path,
                                                                     source: pd.DataFrame) -> None:
    out = tmp_path / "risk-tkr-oai"
    result = CliRunner().invoke(cli, ["train-risk", "--oai-dir", str(export), "--outcome", "tkr", "--method", "cox",
                                      "--current-visit", "03", "--prior-visit", "00", "--out", str(out),
                                      "--model-id", "risk-tkr-oai", "--version", "2.0.0", "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    assert "not in the cohort, left out: meniscus_extrusion:MM" in result.output
    model = load_model_folder(out)
    assert isinstance(model, RiskModelFile)
    assert (model.model_id, model.version, model.method, model.training.source) == ("risk-tkr-oai", "2.0.0", "cox",
                                                                                   "oai")
    assert "change:cartilage_thickness_mean:cMF" in model.variants["imaging_change"].linear.keys
    assert model.metrics["imaging_change"]["auc"].estimate > model.metrics["demographics"]["auc"].estimate
    assert model.training.command == (  # the invocation, then the defaults that applied
        f"mskcds train-risk --oai-dir {export} --outcome tkr --method cox --current-visit 03 --prior-visit 00 "
        f"--out {out} --model-id risk-tkr-oai --version 2.0.0 --bootstrap 20 --horizon-months 48 --xr-project 15 "
        "--test-fraction 0.3 --seed 0")

    triage_out = tmp_path / "triage-oai"
    result = CliRunner().invoke(cli, ["train-triage", "--oai-dir", str(export), "--current-visit", "03",
                                      "--urgent-kl", "3", "--out", str(triage_out), "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    triage = load_model_folder(triage_out)
    assert isinstance(triage, TriageModelFile)
    assert [s.name for s in triage.stages] == ["full-thickness-cartilage-loss", "severe-cartilage-thinning",
                                               "biomarker-classifier"]

    models = ClinicalModels(triage, [model])
    row = source.iloc[5]
    risk = models.risk(knee_biomarkers(row), Demographics(age_years=row["age_years"], sex=row["sex"], bmi=row["bmi"]),
                       knee_biomarkers(row, prior=True), row["months_since_prior"])
    assert risk[0].used_prior and risk[0].model_id == "risk-tkr-oai" and 0 < risk[0].probability < 1
    assert models.triage(knee_biomarkers(row)).model_id == "triage-knee"
