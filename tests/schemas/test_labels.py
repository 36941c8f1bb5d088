import pytest

from schemas.labels import EXTERNAL_LABEL_MAPS, Label, parse_label_mapping


def test_client_knee_convention() -> None:
    assert [(label.name, label.value) for label in Label][:10] == [
        ("BACKGROUND", 0),
        ("FEMUR", 1),
        ("TIBIA", 2),
        ("PATELLA", 3),
        ("FEMORAL_CARTILAGE", 4),
        ("MEDIAL_TIBIAL_CARTILAGE", 5),
        ("LATERAL_TIBIAL_CARTILAGE", 6),
        ("PATELLAR_CARTILAGE", 7),
        ("MEDIAL_MENISCUS", 8),
        ("LATERAL_MENISCUS", 9),
    ]


def test_pymskt_mapping_matches_its_readme() -> None:
    pymskt = EXTERNAL_LABEL_MAPS["pymskt"]
    assert pymskt[1] is Label.FEMORAL_CARTILAGE and pymskt[5] is Label.FEMUR and pymskt[10] is Label.MEDIAL_MENISCUS


def test_parse_mapping_accepts_names_and_values() -> None:
    assert parse_label_mapping({"7": "femur", "8": 2}) == {7: Label.FEMUR, 8: Label.TIBIA}


@pytest.mark.parametrize(
    ("raw", "message"),
    [({"x": 1}, "key 'x' is not an integer"), ({"1": "kneecap"}, "target 'kneecap' .* is not a msk-cds label")],
)
def test_parse_mapping_errors(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_label_mapping(raw)
