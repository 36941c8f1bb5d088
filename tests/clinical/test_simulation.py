"""The simulated cohort: reproducible, and realistic where the literature says what realistic is."""

import numpy as np
import pandas as pd
import pytest

from app.clinical.reference import HEALTHY_THICKNESS_MM
from app.clinical.simulation import effects, simulate_cohort


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate_cohort(20000, seed=3)


def test_same_seed_same_cohort() -> None:
    pd.testing.assert_frame_equal(simulate_cohort(200, seed=9), simulate_cohort(200, seed=9))
    assert not simulate_cohort(200, seed=9).equals(simulate_cohort(200, seed=10))


def test_reference_table_is_the_simulation_s() -> None:
    assert effects()["cartilage"]["reference_thickness_mm"] == HEALTHY_THICKNESS_MM


def test_healthy_plates_have_literature_thickness(cohort: pd.DataFrame) -> None:
    healthy = cohort[cohort["sim_kl"] == 0]
    for plate, reference in HEALTHY_THICKNESS_MM.items():
        mean = healthy[f"cartilage_thickness_mean:{plate}"].mean()
        assert mean == pytest.approx(reference, rel=0.06), plate  # sex mix and individual variation
    assert healthy["denuded_area_pct:MT"].median() == 0.0
    assert 0.8 < healthy["meniscus_extrusion:MM"].mean() < 2.0  # normal: well below 3 mm (Costa 2004)


def test_kl_mix_and_outcome_rates(cohort: pd.DataFrame) -> None:
    shares = np.bincount(cohort["sim_kl"], minlength=5) / len(cohort)
    assert shares == pytest.approx([0.39, 0.18, 0.26, 0.13, 0.04], abs=0.02)
    assert cohort["incident_oa"].notna().mean() == pytest.approx(shares[0] + shares[1])
    tkr_by_48 = ((cohort["tkr"] == 1) & (cohort["tkr_months"] <= 48)).mean()
    assert 0.02 < tkr_by_48 < 0.05
    severe = cohort["sim_kl"] == 4
    assert cohort.loc[severe, "cartilage_thickness_mean:MT"].mean() < 0.75 * HEALTHY_THICKNESS_MM["MT"]
    assert cohort.loc[severe, "denuded_area_pct:MT"].median() > 1.0
