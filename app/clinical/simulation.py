"""The simulated knee cohort the demonstration models are fitted on: one generating model, documented.

All effect sizes live in ``data/simulation_effects.json`` with their literature sources; this module is the
arithmetic that turns them into knees. Each knee has a latent structural severity ``S`` (from age, BMI, sex and
chance; KL grade = S cut at fixed points + reading noise) and a latent progression propensity ``R``. Biomarkers
follow from S (thinning, denuded bone, meniscal extrusion; a medial root tear adds extrusion), measured with
noise; the prior exam follows from
the yearly loss exp(mu + s*S + sd*R) %. Outcomes are logistic (incident OA) or proportional-hazards (TKR)
functions of the demographics and of the *true* structure, plus an unobserved term, so models that see only
noisy measurements land near published discrimination rather than near 1.0.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr

from app.clinical.cohort import PRIOR_PREFIX
from schemas.biomarkers import CARTILAGE_PLATES, MENISCUS_REGIONS, BiomarkerName

Population = Literal["oai", "referral"]
POPULATIONS: tuple[Population, ...] = ("oai", "referral")
MEDIAL_PLATES = ("MT", "cMF")
FEMOROTIBIAL_PLATES = ("MT", "cMF", "LT", "cLF")


@lru_cache
def effects() -> dict[str, Any]:
    """The generating model's parameters (``data/simulation_effects.json``)."""
    return json.loads(files("app.clinical").joinpath("data/simulation_effects.json").read_text())


def _truncated_normal(rng: np.random.Generator, spec: dict[str, float], n: int) -> np.ndarray:
    values = rng.normal(spec["mean"], spec["sd"], n)
    while True:
        bad = (values < spec["low"]) | (values > spec["high"])
        if not bad.any():
            return values
        values[bad] = rng.normal(spec["mean"], spec["sd"], int(bad.sum()))


def _key(name: BiomarkerName, region: str) -> str:
    return f"{name.value}:{region}"


def simulate_cohort(n: int, seed: int, population: Population = "oai") -> pd.DataFrame:
    """``n`` simulated knees (one per subject) as a canonical cohort table, plus ``sim_*`` truth columns."""
    params = effects()
    pop = params["populations"][population]
    sev, cart, men, out = params["severity"], params["cartilage"], params["meniscus"], params["outcomes"]
    rng = np.random.default_rng(seed)

    age = np.round(_truncated_normal(rng, pop["age"], n), 1)
    female = rng.random(n) < pop["female_fraction"]
    bmi = np.round(_truncated_normal(rng, pop["bmi"], n), 1)
    severity = (
        pop["severity_shift"]
        + sev["age_per_decade"] * (age - sev["reference_age"]) / 10
        + sev["bmi_per_5"] * (bmi - sev["reference_bmi"]) / 5
        + sev["female"] * female
        + sev["residual_sd"] * rng.standard_normal(n)
    )
    kl = np.searchsorted(sev["kl_cutpoints"], severity + sev["kl_reading_sd"] * rng.standard_normal(n))
    progression = rng.standard_normal(n)
    months_prior = np.round(rng.uniform(pop["prior_months"]["low"], pop["prior_months"]["high"], n))
    sex_factor = np.where(female, cart["sex_factor"]["female"], cart["sex_factor"]["male"])
    area_factor = np.where(female, cart["area_sex_factor"]["female"], cart["area_sex_factor"]["male"])

    columns: dict[str, Any] = {
        "subject_id": [f"sim-{population}-{seed}-{i:06d}" for i in range(n)],
        "side": np.where(rng.random(n) < 0.5, "right", "left"),
        "age_years": age,
        "sex": np.where(female, "female", "male"),
        "bmi": bmi,
        "months_since_prior": months_prior,
    }
    knee_offset = cart["knee_sd"] * rng.standard_normal(n)
    den, focal = cart["denuded"], rng.random(n) < pop["focal_defect_probability"]
    focal_plate = rng.integers(0, len(CARTILAGE_PLATES), n)
    true_thickness: dict[str, np.ndarray] = {}
    true_denuded: dict[str, np.ndarray] = {}
    true_loss: dict[str, np.ndarray] = {}
    loss_rate: dict[str, np.ndarray] = {}
    rate = cart["annual_loss_pct"]
    yearly_pct = np.exp(rate["mu"] + rate["per_severity"] * severity + rate["sd"] * progression)
    for index, plate in enumerate(CARTILAGE_PLATES):
        weight = cart["loss_weight"][plate]
        reference = cart["reference_thickness_mm"][plate] * sex_factor
        loss = weight * cart["max_loss_fraction"] * ndtr((severity - cart["loss_midpoint"]) / cart["loss_scale"])
        intact = reference * np.exp(knee_offset + cart["plate_sd"] * rng.standard_normal(n)) * (1 - loss)
        denuded = (weight * den["max_pct"] * ndtr((severity - den["midpoint"]) / den["scale"])
                   * np.exp(den["lognormal_sd"] * rng.standard_normal(n)))
        denuded = np.where(denuded < den["floor_pct"], 0.0, denuded)
        denuded = denuded + np.where(focal & (focal_plate == index),
                                     rng.uniform(den["focal_low_pct"], den["focal_high_pct"], n), 0.0)
        denuded = np.minimum(denuded, 60.0)
        thickness = intact * (1 - denuded / 100)
        loss_rate[plate] = weight * yearly_pct
        prior_thickness = thickness / (1 - loss_rate[plate] / 100) ** (months_prior / 12)
        true_thickness[plate], true_denuded[plate], true_loss[plate] = thickness, denuded, loss

        noise = cart["measurement_sd_mm"]
        measured = np.maximum(thickness + noise * rng.standard_normal(n), 0.05)
        spurious = (rng.random(n) < cart["spurious_denuded"]["probability"]) * rng.exponential(
            cart["spurious_denuded"]["mean_pct"], n)
        measured_denuded = denuded * np.exp(0.15 * rng.standard_normal(n)) + spurious
        p5_spec = cart["p5_fraction"]
        p5 = intact * rng.normal(p5_spec["mean"], p5_spec["sd"], n) * np.clip(
            1 - measured_denuded / p5_spec["zero_from_denuded_pct"], 0, 1)
        area = cart["subchondral_area_mm2"][plate] * area_factor * rng.normal(1, 0.08, n)
        columns[_key(BiomarkerName.CARTILAGE_THICKNESS_MEAN, plate)] = measured
        columns[_key(BiomarkerName.CARTILAGE_THICKNESS_MEDIAN, plate)] = measured * cart["median_factor"]
        columns[_key(BiomarkerName.CARTILAGE_THICKNESS_P5, plate)] = np.maximum(p5, 0.0)
        columns[_key(BiomarkerName.CARTILAGE_THICKNESS_MAX, plate)] = intact * rng.normal(
            cart["max_factor"]["mean"], cart["max_factor"]["sd"], n)
        columns[_key(BiomarkerName.CARTILAGE_VOLUME, plate)] = measured * area
        columns[_key(BiomarkerName.CARTILAGE_SURFACE_AREA, plate)] = area * cart["surface_factor"] * (1 - denuded / 100)
        columns[_key(BiomarkerName.DENUDED_AREA_PCT, plate)] = np.minimum(measured_denuded, 100.0)
        columns[PRIOR_PREFIX + _key(BiomarkerName.CARTILAGE_THICKNESS_MEAN, plate)] = np.maximum(
            prior_thickness + noise * rng.standard_normal(n), 0.05)

    root_tear = rng.random(n) < pop["root_tear_probability"]
    tear_extrusion = np.where(root_tear, rng.normal(men["root_tear_extrusion_mm"]["mean"],
                                                    men["root_tear_extrusion_mm"]["sd"], n), 0.0)
    true_extrusion: dict[str, np.ndarray] = {}
    for region in MENISCUS_REGIONS:
        ext = men["extrusion_mm"][region]
        true_extrusion[region] = np.maximum(
            ext["mean"] + ext["per_severity"] * severity + ext["per_5_bmi"] * (bmi - sev["reference_bmi"]) / 5
            + ext["sd"] * rng.standard_normal(n) + (tear_extrusion if region == "MM" else 0.0), 0.0)
        thick = men["thickness_mm"][region]
        meniscus_thickness = (thick["mean"] * sex_factor * (1 - thick["loss_at_severe"] * ndtr(severity - 1.5))
                              + thick["sd"] * rng.standard_normal(n))
        columns[_key(BiomarkerName.MENISCUS_EXTRUSION, region)] = np.maximum(
            true_extrusion[region] + men["measurement_sd_mm"] * rng.standard_normal(n), 0.0)
        columns[_key(BiomarkerName.MENISCUS_THICKNESS_MEAN, region)] = np.maximum(meniscus_thickness, 0.3)
        columns[_key(BiomarkerName.MENISCUS_VOLUME, region)] = (
            men["volume_mm3"][region] * area_factor * rng.normal(1, 0.12, n))

    # Outcomes from the true structure (what a perfect measurement would see) and the demographics.
    reference_medial = sum(cart["reference_thickness_mm"][p] for p in MEDIAL_PLATES) * sex_factor
    medial_deficit = 1 - sum(true_thickness[p] for p in MEDIAL_PLATES) / reference_medial
    medial_loss = np.mean([loss_rate[p] for p in MEDIAL_PLATES], axis=0)
    max_denuded = np.max([true_denuded[p] for p in FEMOROTIBIAL_PLATES], axis=0)

    def linear(spec: dict[str, float]) -> np.ndarray:
        return (
            spec["age_per_decade"] * (age - sev["reference_age"]) / 10
            + spec["female"] * female
            + spec["bmi_per_5"] * (bmi - sev["reference_bmi"]) / 5
            + spec["medial_deficit_per_10pct"] * medial_deficit * 10
            + spec["mm_extrusion_per_mm"] * (true_extrusion["MM"] - men["extrusion_mm"]["MM"]["mean"])
            + spec["medial_loss_per_pct_year"] * medial_loss
            + spec.get("denuded_per_pct", 0.0) * max_denuded
            + spec["unobserved_sd"] * rng.standard_normal(n)
        )

    incident = out["incident_oa"]
    at_risk = kl <= 1
    p_incident = 1 / (1 + np.exp(-(incident["intercept"] + linear(incident))))
    columns["incident_oa"] = np.where(at_risk, (rng.random(n) < p_incident).astype(float), np.nan)

    tkr = out["tkr"]
    hazard = tkr["baseline_hazard_per_month"] * np.exp(linear(tkr))
    event_time = rng.exponential(1 / hazard)
    censor_time = np.minimum(tkr["follow_up_months"],
                             rng.exponential(12 / tkr["loss_to_follow_up_per_year"], n))
    columns["tkr"] = (event_time <= censor_time).astype(float)
    columns["tkr_months"] = np.round(np.minimum(event_time, censor_time), 2)

    urgent = out["urgent"]
    any_plate_denuded = np.max(np.stack(list(true_denuded.values())), axis=0)
    any_plate_loss = np.max(np.stack(list(true_loss.values())), axis=0)
    columns["urgent"] = ((any_plate_loss >= urgent["cartilage_loss_fraction"])
                         | (any_plate_denuded >= urgent["denuded_pct"]) | root_tear).astype(float)
    columns["sim_severity"] = severity
    columns["sim_kl"] = kl
    columns["sim_progression"] = progression
    columns["sim_root_tear"] = root_tear.astype(float)
    return pd.DataFrame(columns)
