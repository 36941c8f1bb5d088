"""The clinical layer's exceptions: a bad model file, a study the models cannot score."""

from __future__ import annotations


class ClinicalModelError(ValueError):
    """A model folder is missing, corrupt (sha256 mismatch) or not a valid model file.

    Raised at load time so the service fails to start instead of scoring with a wrong model.
    """


class MissingFeatureError(ValueError):
    """The inputs lack a feature the model needs (e.g. BMI unknown, a plate not measured)."""

    def __init__(self, model_id: str, missing: list[str]) -> None:
        self.model_id = model_id
        self.missing = missing
        super().__init__(f"{model_id} needs {', '.join(missing)}, which the study or request does not provide")


class CohortError(ValueError):
    """A training or evaluation table is unusable (missing column, unknown code, empty after filtering)."""
