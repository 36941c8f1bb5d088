"""Running the triage cascade on one knee: the first rule-in stage that fires decides, else the classifier.

Rule-in stages look for findings a radiologist reads as important on their own (full-thickness cartilage loss,
severe thinning, pathological meniscal extrusion). A study reaching the classifier with incomplete
measurements is never deprioritised: missing inputs mean "routine", with the reason said.
"""

from __future__ import annotations

from app.clinical.features import parse_feature_key
from app.clinical.linear import logistic, missing_features, score
from app.clinical.model_files import ClassifierStage, ThresholdStage, TriageModelFile
from app.clinical.vocabulary import format_value, region_words
from schemas.biomarkers import UNITS, Biomarker, BiomarkerSet
from schemas.clinical import TriageResult

DECIDING_BIOMARKERS = 3


def _crosses(stage: ThresholdStage, value: float) -> bool:
    return value > stage.threshold if stage.direction == "above" else value < stage.threshold


def threshold_hits(stage: ThresholdStage, features: dict[str, float]) -> list[tuple[Biomarker, str]]:
    """The biomarkers (``as_features()`` values) that cross the stage's threshold, each with its sentence."""
    unit = UNITS[stage.biomarker].value
    hits = []
    for region in stage.regions:
        value = features.get(f"{stage.biomarker.value}:{region}")
        if value is None:
            continue
        reference = stage.reference[region] if stage.reference else None
        compared = value / reference if reference else value
        if not _crosses(stage, compared):
            continue
        text = stage.reason.format(
            region=region_words(region),
            value=format_value(value, unit),
            threshold=f"{stage.threshold:.0%}" if reference else format_value(stage.threshold, unit),
            reference=format_value(reference, unit) if reference else "",
            fraction=f"{compared:.0%}" if reference else "",
        )
        hits.append((Biomarker.of(stage.biomarker, region, value), text[0].upper() + text[1:]))
    return hits


class TriageModel:
    """A validated cascade, ready to place studies on the worklist."""

    def __init__(self, file: TriageModelFile) -> None:
        self.file = file

    def _result(self, index: int, priority: str, reasons: list[str], deciding: list[Biomarker],
                probability: float | None = None) -> TriageResult:
        return TriageResult(
            priority=priority,  # type: ignore[arg-type]
            stage=self.file.stages[index].name,
            stage_index=index,
            reasons=reasons,
            deciding_biomarkers=deciding,
            probability_urgent=probability,
            model_id=self.file.model_id,
            model_version=self.file.version,
        )

    def decide(self, biomarkers: BiomarkerSet) -> TriageResult:
        """Priority, deciding stage and reasons for one knee."""
        features = biomarkers.as_features()
        for index, stage in enumerate(self.file.stages):
            if isinstance(stage, ThresholdStage):
                hits = threshold_hits(stage, features)
                if hits:
                    return self._result(index, "urgent", [text for _, text in hits], [b for b, _ in hits])
                continue
            return self._classify(index, stage, features)
        raise AssertionError("a validated cascade ends with a classifier stage")

    def _classify(self, index: int, stage: ClassifierStage, values: dict[str, float]) -> TriageResult:
        missing = missing_features(stage.linear, values)
        cleared = "No rule-in stage found full-thickness cartilage loss, severe thinning or pathological extrusion"
        if missing:
            return self._result(index, "routine", [
                f"{cleared}; the classifier could not run because {', '.join(missing)} "
                "was not measured, and a study is never deprioritised on incomplete measurements"
            ], [])
        result = score(stage.linear, values)
        probability = logistic(result.lp)
        ranked = sorted(result.contributions.items(), key=lambda item: item[1], reverse=True)
        drivers = [key for key, contribution in ranked[:DECIDING_BIOMARKERS] if contribution > 0]
        deciding = []
        for key in drivers:
            parsed = parse_feature_key(key)
            assert parsed.name is not None and parsed.region is not None
            deciding.append(Biomarker.of(parsed.name, parsed.region, values[key]))
        described = "; ".join(
            f"{parse_feature_key(b.key).words} {format_value(b.value, b.unit.value)}" for b in deciding
        )
        bounds = f"deprioritised below {stage.deprioritise_threshold:.2f}, urgent from {stage.urgent_threshold:.2f}"
        if probability >= stage.urgent_threshold:
            priority = "urgent"
            reasons = [f"Pattern of cartilage and meniscus measurements typical of important damage: classifier "
                       f"probability {probability:.2f} ({bounds})"]
        elif probability < stage.deprioritise_threshold:
            priority = "deprioritised"
            reasons = [f"{cleared}; classifier probability of important damage {probability:.2f} ({bounds})"]
        else:
            priority = "routine"
            reasons = [f"{cleared}; classifier probability of important damage {probability:.2f} ({bounds})"]
        if described and priority != "deprioritised":
            reasons.append(f"Measurements that raised the probability most: {described}")
        return self._result(index, priority, reasons, deciding if priority != "deprioritised" else [], probability)
