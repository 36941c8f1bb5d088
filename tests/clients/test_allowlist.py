"""Allowlists match whole path segments on the same origin."""

from __future__ import annotations

import pytest

from app.clients.allowlist import is_allowed, require_allowed
from app.clients.errors import NotAllowlisted

ALLOWLIST = ["https://ehr.example.org/fhir/R4", "http://pacs.local:8042/dicom-web/"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://ehr.example.org/fhir/R4", True),
        ("https://EHR.example.org:443/fhir/R4/", True),
        ("https://ehr.example.org/fhir/R4/Patient/1", True),
        ("https://ehr.example.org/fhir/R4x", False),
        ("https://ehr.example.org/fhir", False),
        ("http://ehr.example.org/fhir/R4", False),
        ("https://ehr.example.org.evil.com/fhir/R4", False),
        ("http://pacs.local:8042/dicom-web/studies/1.2.3", True),
        ("http://pacs.local:8043/dicom-web", False),
        ("ftp://pacs.local/dicom-web", False),
        ("not a url", False),
    ],
)
def test_is_allowed(url: str, allowed: bool) -> None:
    assert is_allowed(url, ALLOWLIST) is allowed


def test_require_allowed_names_the_setting() -> None:
    assert require_allowed("https://ehr.example.org/fhir/R4", ALLOWLIST, "fhir") == "https://ehr.example.org/fhir/R4"
    with pytest.raises(NotAllowlisted) as caught:
        require_allowed("https://other.example/fhir", ALLOWLIST, "fhir")
    assert str(caught.value) == (
        "fhir URL https://other.example/fhir is not allowlisted (add its base URL to MSKCDS_FHIR_ALLOWLIST)"
    )
