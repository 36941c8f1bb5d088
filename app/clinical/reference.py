"""Healthy reference values the triage wording and thresholds are anchored to (literature, sex-pooled).

Mean cartilage thickness over the total subchondral bone area (ThCtAB.Me) in knees without radiographic OA:
MT, cMF, LT, cLF from Eckstein et al., Osteoarthritis Cartilage 2010;18:1275-83 (Framingham "normals");
P from Eckstein et al., Osteoarthritis Cartilage 2001;9:101-11 (healthy men 2.76 mm, lowered for a mixed-sex
population); TrF is an assumption (no large reference cohort). The simulated cohort uses the same table
(``data/simulation_effects.json``; a test keeps them equal).
"""

from __future__ import annotations

HEALTHY_THICKNESS_MM: dict[str, float] = {"MT": 1.73, "cMF": 1.86, "LT": 2.09, "cLF": 1.77, "TrF": 2.2, "P": 2.6}

#: Meniscal extrusion of 3 mm or more is pathological (Costa et al., AJR 2004;183:17-23).
PATHOLOGICAL_EXTRUSION_MM = 3.0
