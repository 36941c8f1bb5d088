"""What the segmentation chain prompts for, and how its classes become the project's labels.

A 2D sagittal slice does not say whether it shows the medial or the lateral compartment: that comes from
the slice's position in the knee and from laterality. The detector and SAM therefore work with
*prompt classes* that merge medial and lateral tissues (one tibial cartilage, one meniscus), and the 3D
post-processing splits them with patient geometry (:mod:`app.segmentation.postprocess`). Everything else
maps one to one onto :class:`schemas.labels.Label`.
"""

from __future__ import annotations

from enum import IntEnum

from schemas.labels import Label


class PromptClass(IntEnum):
    """One box per class per slice; the value is the detector's output channel."""

    FEMUR = 0
    TIBIA = 1
    PATELLA = 2
    FEMORAL_CARTILAGE = 3
    TIBIAL_CARTILAGE = 4
    PATELLAR_CARTILAGE = 5
    MENISCUS = 6


#: Project label(s) each prompt class covers (two where 3D geometry splits medial from lateral).
CLASS_LABELS: dict[PromptClass, tuple[Label, ...]] = {
    PromptClass.FEMUR: (Label.FEMUR,),
    PromptClass.TIBIA: (Label.TIBIA,),
    PromptClass.PATELLA: (Label.PATELLA,),
    PromptClass.FEMORAL_CARTILAGE: (Label.FEMORAL_CARTILAGE,),
    PromptClass.TIBIAL_CARTILAGE: (Label.MEDIAL_TIBIAL_CARTILAGE, Label.LATERAL_TIBIAL_CARTILAGE),
    PromptClass.PATELLAR_CARTILAGE: (Label.PATELLAR_CARTILAGE,),
    PromptClass.MENISCUS: (Label.MEDIAL_MENISCUS, Label.LATERAL_MENISCUS),
}

#: Bones are one solid object each; the post-processor keeps only their largest 3D component.
SOLID_CLASSES: frozenset[PromptClass] = frozenset({PromptClass.FEMUR, PromptClass.TIBIA, PromptClass.PATELLA})
