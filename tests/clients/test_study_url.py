"""DICOMweb study URLs: split into service base and Study Instance UID."""

from __future__ import annotations

import pytest

from app.clients.study_url import StudyUrl, is_study_url, parse_study_url


def test_parse_study_url() -> None:
    assert parse_study_url("https://pacs.example/dicom-web/studies/1.2.840.10008.1/") == StudyUrl(
        base_url="https://pacs.example/dicom-web", study_instance_uid="1.2.840.10008.1"
    )
    assert parse_study_url("http://127.0.0.1:8042/studies/1.2.3").base_url == "http://127.0.0.1:8042"
    assert is_study_url("https://x/studies/1") and not is_study_url("/data/knee")


@pytest.mark.parametrize(
    "url",
    ["https://pacs.example/dicom-web/series/1.2.3", "https://pacs.example/studies/1.2.x", "/data/studies/1.2.3"],
)
def test_not_a_study_url(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_study_url(url)
    assert str(caught.value) == (
        f"{url!r} is not a DICOMweb study URL: expected http(s)://HOST/.../studies/STUDY_INSTANCE_UID"
    )
