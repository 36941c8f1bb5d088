"""The one label convention of msk-cds.

Every label map the project reads, writes, trains on or measures uses these values. Maps produced by
other tools are translated on the way in with :data:`EXTERNAL_LABEL_MAPS` (or a user-supplied JSON
mapping), never interpreted with their own numbers.

Values 0-9 are the knee convention fixed by the client. Values from 10 up are other knee tissues and
pathology; later anatomies (hip, shoulder, lumbar spine, thigh) take values from 20 up.
"""

from __future__ import annotations

from enum import IntEnum


class Label(IntEnum):
    """Label values in a msk-cds label map."""

    BACKGROUND = 0
    FEMUR = 1
    TIBIA = 2
    PATELLA = 3
    FEMORAL_CARTILAGE = 4
    MEDIAL_TIBIAL_CARTILAGE = 5
    LATERAL_TIBIAL_CARTILAGE = 6
    PATELLAR_CARTILAGE = 7
    MEDIAL_MENISCUS = 8
    LATERAL_MENISCUS = 9
    # Other knee tissues and findings.
    MUSCLE = 10
    SUBCUTANEOUS_FAT = 11
    JOINT_FLUID = 12  # synovial fluid / effusion
    BONE_MARROW_LESION = 13
    FIBULA = 14
    OSTEOPHYTE = 15
    NERVE = 16

    @property
    def display_name(self) -> str:
        """Human-readable name, e.g. ``"medial tibial cartilage"``."""
        return self.name.lower().replace("_", " ")


BONES: frozenset[Label] = frozenset({Label.FEMUR, Label.TIBIA, Label.PATELLA})
CARTILAGE: frozenset[Label] = frozenset(
    {
        Label.FEMORAL_CARTILAGE,
        Label.MEDIAL_TIBIAL_CARTILAGE,
        Label.LATERAL_TIBIAL_CARTILAGE,
        Label.PATELLAR_CARTILAGE,
    }
)
MENISCI: frozenset[Label] = frozenset({Label.MEDIAL_MENISCUS, Label.LATERAL_MENISCUS})

#: The cartilage plate that rests on each bone: thickness is measured from this bone's surface.
CARTILAGE_BONE: dict[Label, Label] = {
    Label.FEMORAL_CARTILAGE: Label.FEMUR,
    Label.MEDIAL_TIBIAL_CARTILAGE: Label.TIBIA,
    Label.LATERAL_TIBIAL_CARTILAGE: Label.TIBIA,
    Label.PATELLAR_CARTILAGE: Label.PATELLA,
}

#: Label maps written by other tools, translated to this convention. Unlisted source values become 0.
EXTERNAL_LABEL_MAPS: dict[str, dict[int, Label]] = {
    # pymskt / OAI DESS example maps (github.com/gattia/pymskt, data/ folder).
    "pymskt": {
        1: Label.FEMORAL_CARTILAGE,
        2: Label.MEDIAL_TIBIAL_CARTILAGE,
        3: Label.LATERAL_TIBIAL_CARTILAGE,
        4: Label.PATELLAR_CARTILAGE,
        5: Label.FEMUR,
        6: Label.TIBIA,
        7: Label.PATELLA,
        8: Label.FIBULA,
        9: Label.LATERAL_MENISCUS,
        10: Label.MEDIAL_MENISCUS,
    },
}


def parse_label_mapping(raw: dict[str, int | str]) -> dict[int, Label]:
    """Validate a user-supplied mapping ``{"source value": target}`` (target: value or Label name).

    Raises:
        ValueError: with the offending entry, when a key is not an integer or a target is unknown.
    """
    mapping: dict[int, Label] = {}
    for key, target in raw.items():
        try:
            source = int(key)
        except ValueError:
            raise ValueError(f"label mapping key {key!r} is not an integer label value") from None
        try:
            mapping[source] = Label[target.upper()] if isinstance(target, str) else Label(target)
        except (KeyError, ValueError):
            names = ", ".join(label.name.lower() for label in Label)
            raise ValueError(
                f"label mapping target {target!r} (for source {source}) is not a msk-cds label; "
                f"use a value 0-{max(Label)} or one of: {names}"
            ) from None
    return mapping
