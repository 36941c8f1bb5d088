"""Study references, job ids and model keys: what may enter a job, and how jobs are named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.analysis import StudyRef, job_id_for, model_key_for
from app.analysis.allowlist import NotAllowlisted, check_allowlisted
from app.settings import Settings
from tests.analysis.conftest import FHIR, PACS, make_ref


def test_study_ref_normalises_base_urls() -> None:
    ref = StudyRef(study_instance_uid="1.2.840.113619.2.1", dicomweb_url=PACS + "/", fhir_url=FHIR + "/")
    assert (ref.dicomweb_url, ref.fhir_url, ref.patient_reference) == (PACS, FHIR, None)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "study_instance_uid",
            "1.2.03",
            "'1.2.03' is not a DICOM UID (digits and dots, no leading zeros, e.g. 1.2.840.1)",
        ),
        (
            "study_instance_uid",
            "../1.2",
            "'../1.2' is not a DICOM UID (digits and dots, no leading zeros, e.g. 1.2.840.1)",
        ),
        ("dicomweb_url", "file:///etc/passwd", "'file:///etc/passwd' is not an http(s) base URL"),
        ("patient_reference", "Smith^John", "'Smith^John' is not a FHIR Patient reference such as 'Patient/123'"),
    ],
)
def test_study_ref_refuses_bad_values(field: str, value: str, message: str) -> None:
    values = make_ref().model_dump() | {field: value}
    with pytest.raises(ValidationError) as caught:
        StudyRef(**values)
    assert caught.value.errors()[0]["msg"] == f"Value error, {message}"


def test_study_ref_has_no_room_for_a_name() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        StudyRef(**make_ref().model_dump(), patient_name="Smith^John")


def test_study_uid_longer_than_64_characters_refused() -> None:
    with pytest.raises(ValidationError, match="at most 64 characters"):
        StudyRef(study_instance_uid="1." + "2" * 63, dicomweb_url=PACS)


def test_model_key_lists_every_model_sorted() -> None:
    assert model_key_for({"triage": "1.0", "knee-sam": "2.1.0"}) == "knee-sam=2.1.0;triage=1.0"
    with pytest.raises(ValueError, match="model_versions is empty"):
        model_key_for({})


def test_job_id_is_the_same_for_the_same_study_and_models_only() -> None:
    uid = make_ref().study_instance_uid
    assert job_id_for(uid, "a=1") == job_id_for(uid, "a=1")
    assert job_id_for(uid, "a=1") != job_id_for(uid, "a=2")
    assert job_id_for(uid, "a=1") != job_id_for(uid + "1", "a=1")


def test_allowlist_accepts_configured_and_listed_servers() -> None:
    ref = make_ref()
    check_allowlisted(ref, Settings(dicomweb_allowlist=[PACS + "/"], fhir_url=FHIR))
    check_allowlisted(ref, Settings(dicomweb_url=PACS, fhir_allowlist=[FHIR]))


def test_allowlist_refuses_other_servers() -> None:
    ref = make_ref()
    with pytest.raises(NotAllowlisted) as caught:
        check_allowlisted(ref, Settings(dicomweb_allowlist=["http://pacs.test/other"], fhir_allowlist=[FHIR]))
    assert str(caught.value) == f"DICOMweb server {PACS} is not allowlisted: add it to MSKCDS_DICOMWEB_ALLOWLIST"
    with pytest.raises(NotAllowlisted) as caught:
        check_allowlisted(ref, Settings(dicomweb_allowlist=[PACS]))
    assert str(caught.value) == f"FHIR server {FHIR} is not allowlisted: add it to MSKCDS_FHIR_ALLOWLIST"
