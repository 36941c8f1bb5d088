"""Scoring one knee with a risk model file: probability with CI, demographics-only twin, top factors."""

from __future__ import annotations

from app.clinical.errors import MissingFeatureError
from app.clinical.features import assess_prior, demographic_features, parse_feature_key
from app.clinical.linear import LinearScore, missing_features, probability_interval, score
from app.clinical.model_files import LinearModel, RiskModelFile, RiskVariant
from app.clinical.vocabulary import format_value
from schemas.analysis import Demographics
from schemas.biomarkers import BiomarkerSet
from schemas.clinical import RiskFactor, RiskResult

TOP_FACTORS = 5


def factor_text(key: str, value: float, mean: float, contribution: float) -> str:
    """``"mean cartilage thickness of the medial tibia 1.31 mm (cohort average 1.72 mm) raises the risk"``."""
    effect = "raises" if contribution > 0 else "lowers"
    if key == "sex_female":
        return f"{'female' if value >= 0.5 else 'male'} sex {effect} the risk"
    parsed = parse_feature_key(key)
    return (
        f"{parsed.words} {format_value(value, parsed.unit)} (cohort average {format_value(mean, parsed.unit)}) "
        f"{effect} the risk"
    )


def top_factors(model: LinearModel, result: LinearScore, n: int = TOP_FACTORS) -> list[RiskFactor]:
    """The ``n`` inputs that moved this person's linear predictor most away from the cohort average."""
    specs = {f.key: f for f in model.features}
    ranked = sorted(result.contributions.items(), key=lambda item: abs(item[1]), reverse=True)[:n]
    return [
        RiskFactor(
            feature=key,
            value=result.clipped[key],
            unit=specs[key].unit,
            contribution=round(contribution, 4),
            text=factor_text(key, result.clipped[key], specs[key].mean, contribution),
        )
        for key, contribution in ranked
    ]


class RiskModel:
    """One outcome's risk model (nested variants: demographics, + imaging, + biomarker change)."""

    def __init__(self, file: RiskModelFile) -> None:
        self.file = file

    @property
    def change_keys(self) -> list[str]:
        variant = self.file.variants.get("imaging_change")
        if variant is None:
            return []
        return [k for k in variant.linear.keys if parse_feature_key(k).kind == "change"]

    def _require(self, variant: RiskVariant, values: dict[str, float]) -> None:
        missing = missing_features(variant.linear, values)
        if missing:
            raise MissingFeatureError(self.file.model_id, missing)

    def score(
        self,
        biomarkers: BiomarkerSet,
        demographics: Demographics,
        prior: BiomarkerSet | None = None,
        months_since_prior: float | None = None,
    ) -> RiskResult:
        """Score with the richest variant the inputs allow; a missing prior falls back to baseline imaging."""
        values = {**biomarkers.as_features(), **demographic_features(demographics)}
        demographics_variant = self.file.variants["demographics"]
        self._require(demographics_variant, values)
        chosen = self.file.variants["imaging"]
        notes: list[str] = []
        used_prior = False
        if self.change_keys:
            assessment = assess_prior(
                biomarkers, prior, months_since_prior, self.change_keys, self.file.change_window_months
            )
            if assessment.usable:
                values.update(assessment.changes)
                chosen, used_prior = self.file.variants["imaging_change"], True
            else:
                assert assessment.note is not None
                notes.append(assessment.note)
        elif prior is not None:
            notes.append("this model has no biomarker-change variant: the prior exam was not used")
        self._require(chosen, values)
        result = score(chosen.linear, values)
        probability, low, high = probability_interval(chosen.linear, chosen.baseline, result)
        dem = demographics_variant
        dem_probability, _, _ = probability_interval(dem.linear, dem.baseline, score(dem.linear, values))
        return RiskResult(
            outcome=self.file.outcome,
            horizon_months=self.file.horizon_months,
            probability=probability,
            ci_low=low,
            ci_high=high,
            demographics_only_probability=dem_probability,
            top_factors=top_factors(chosen.linear, result),
            method=self.file.method,
            used_prior=used_prior,
            notes=notes,
            model_id=self.file.model_id,
            model_version=self.file.version,
        )
