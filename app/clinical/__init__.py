"""Clinical decision layer: the triage cascade and OA / TKR risk models, whose model files are plain JSON.

Reads only biomarkers (``schemas.biomarkers``) and demographics; never imports segmentation.
"""

from app.clinical.errors import ClinicalModelError, CohortError, MissingFeatureError
from app.clinical.registry import ClinicalModels, load_clinical_models

__all__ = ["ClinicalModelError", "ClinicalModels", "CohortError", "MissingFeatureError", "load_clinical_models"]
