"""DicomwebClient against a real Orthanc with its DICOMweb plugin (authentication on)."""

from __future__ import annotations

from datetime import date

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from app.clients.dicomweb import DicomwebClient
from app.clients.errors import UpstreamAuthError, UpstreamNotFound
from tests.integration.servers import OrthancServer
from tests.integration.synthetic import SeriesSpec, StudySpec, build_study, pixel_pattern

pytestmark = pytest.mark.integration

Study = tuple[StudySpec, list[pydicom.Dataset]]


def client_for(orthanc: OrthancServer, **kwargs: object) -> DicomwebClient:
    return DicomwebClient(orthanc.dicomweb_url, user=orthanc.user, password=orthanc.password, **kwargs)  # type: ignore[arg-type]


def uids(datasets: list[pydicom.Dataset]) -> set[str]:
    return {str(ds.StudyInstanceUID) for ds in datasets}


async def test_search_studies_by_each_criterion(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, _ = knee_study
    async with client_for(orthanc) as client:
        assert uids(await client.search_studies(patient_id=spec.patient_id)) == {spec.study_instance_uid}
        assert uids(await client.search_studies(accession_number=spec.accession_number)) == {spec.study_instance_uid}
        assert spec.study_instance_uid in uids(await client.search_studies(modalities_in_study="MR"))
        assert await client.search_studies(patient_id=spec.patient_id, modalities_in_study="CT") == []
        assert uids(await client.search_studies(patient_id=spec.patient_id, body_part_examined="KNEE")) == {
            spec.study_instance_uid
        }
        assert await client.search_studies(patient_id=spec.patient_id, body_part_examined="HIP") == []
        assert uids(await client.search_studies(study_date=date(2024, 3, 15))) == {spec.study_instance_uid}
        assert uids(await client.search_studies(study_date=(date(2024, 3, 1), date(2024, 3, 31)))) == {
            spec.study_instance_uid
        }
        assert await client.search_studies(patient_id=spec.patient_id, study_date=(date(2024, 3, 16), None)) == []


async def test_series_description_patterns_are_matched_client_side(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, _ = knee_study
    # The quirk: Orthanc matches nothing when the wildcard arrives percent-encoded (as httpx sends it).
    quirk = httpx.get(
        f"{orthanc.dicomweb_url}/studies/{spec.study_instance_uid}/series",
        params={"SeriesDescription": "Sag*"},
        auth=orthanc.auth,
    )
    assert "%2A" in str(quirk.url)
    assert (quirk.json() if quirk.content else []) == []
    async with client_for(orthanc) as client:
        dess = await client.search_series(spec.study_instance_uid, series_description="*dess*")
        both = await client.search_series(spec.study_instance_uid, series_description="Sag*")
        knee_mr = await client.search_series(spec.study_instance_uid, modality="MR", body_part_examined="KNEE")
    assert [str(s.SeriesDescription) for s in dess] == ["Sag 3D DESS WE"]
    assert sorted(str(s.SeriesDescription) for s in both) == ["Sag 3D DESS WE", "Sag T2 Map"]
    assert len(knee_mr) == 2
    assert {str(s.BodyPartExamined) for s in knee_mr} == {"KNEE"}


async def test_series_metadata_has_attributes_but_no_pixels(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, datasets = knee_study
    t2_series = str(next(ds for ds in datasets if ds.SeriesDescription == "Sag T2 Map").SeriesInstanceUID)
    async with client_for(orthanc) as client:
        metadata = await client.series_metadata(spec.study_instance_uid, t2_series)
    assert len(metadata) == 8
    assert all("PixelData" not in ds for ds in metadata)
    assert {float(ds.EchoTime) for ds in metadata} == {10.0}
    assert sorted(int(ds.InstanceNumber) for ds in metadata) == list(range(1, 9))
    assert [float(v) for v in metadata[0].ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]


async def test_retrieve_series_returns_every_pixel_intact(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, datasets = knee_study
    dess_series = str(datasets[0].SeriesInstanceUID)
    async with client_for(orthanc, max_concurrency=3) as client:
        retrieved = await client.retrieve_series(spec.study_instance_uid, dess_series)
    assert [int(ds.InstanceNumber) for ds in retrieved] == list(range(1, 9))
    for k, ds in enumerate(retrieved):
        np.testing.assert_array_equal(ds.pixel_array, pixel_pattern(0, k, 32, 32))
    assert {str(ds.SOPInstanceUID) for ds in retrieved} == {
        str(ds.SOPInstanceUID) for ds in datasets if ds.SeriesInstanceUID == dess_series
    }


async def test_retrieve_chosen_instances_concurrently(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, datasets = knee_study
    chosen = [datasets[5], datasets[1], datasets[3]]
    async with client_for(orthanc, max_concurrency=2) as client:
        retrieved = await client.retrieve_instances(
            spec.study_instance_uid, str(datasets[0].SeriesInstanceUID), [str(ds.SOPInstanceUID) for ds in chosen]
        )
    assert [int(ds.InstanceNumber) for ds in retrieved] == [2, 4, 6]
    np.testing.assert_array_equal(retrieved[2].pixel_array, pixel_pattern(0, 5, 32, 32))


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The real transport, noting each request's Accept-Encoding and the answer's Content-Encoding."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str | None, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        encoding = request.headers.get("accept-encoding")
        self.seen.append((request.url.path.rsplit("/", 1)[-1], encoding, response.headers.get("content-encoding")))
        return response


async def test_json_is_fetched_gzipped_and_pixels_uncompressed(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, datasets = knee_study
    transport = RecordingTransport()
    async with client_for(orthanc, transport=transport) as client:
        await client.series_metadata(spec.study_instance_uid, str(datasets[0].SeriesInstanceUID))
        await client.retrieve_series(spec.study_instance_uid, str(datasets[0].SeriesInstanceUID))
    assert transport.seen == [
        ("metadata", "gzip, deflate", "gzip"),
        (str(datasets[0].SeriesInstanceUID), "identity", None),
    ]


async def test_retrieve_study_returns_all_series(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, datasets = knee_study
    async with client_for(orthanc) as client:
        retrieved = await client.retrieve_study(spec.study_instance_uid)
    assert sorted(str(ds.SOPInstanceUID) for ds in retrieved) == sorted(str(ds.SOPInstanceUID) for ds in datasets)


async def test_stow_rs_round_trip_including_datasets_without_file_meta(orthanc: OrthancServer) -> None:
    spec = StudySpec(patient_id="MSKCDS-STOW", accession_number="ACC-STOW", series=(SeriesSpec("Sag PD", slices=3),))
    datasets = build_study(spec)
    del datasets[1].file_meta  # as built in memory by code that never wrote a file: no preamble, no meta
    async with client_for(orthanc) as client:
        response = await client.store_instances(datasets)
        series_uid = str(datasets[0].SeriesInstanceUID)
        retrieved = await client.retrieve_series(spec.study_instance_uid, series_uid)
    assert len(response.ReferencedSOPSequence) == 3
    assert [int(ds.InstanceNumber) for ds in retrieved] == [1, 2, 3]
    for k, ds in enumerate(retrieved):
        np.testing.assert_array_equal(ds.pixel_array, pixel_pattern(0, k, 32, 32))
        assert ds.PatientID == "MSKCDS-STOW"


async def test_wrong_password_is_an_auth_error(orthanc: OrthancServer) -> None:
    async with DicomwebClient(orthanc.dicomweb_url, user=orthanc.user, password="wrong") as client:
        with pytest.raises(UpstreamAuthError) as caught:
            await client.search_studies(patient_id="anything")
    assert str(caught.value) == (
        f"QIDO-RS study search: {orthanc.dicomweb_url}/studies refused the credentials (HTTP 401)"
    )
    assert caught.value.status == 401


async def test_unknown_instance_is_not_found(orthanc: OrthancServer, knee_study: Study) -> None:
    spec, datasets = knee_study
    series = str(datasets[0].SeriesInstanceUID)
    missing = generate_uid()
    async with client_for(orthanc) as client:
        with pytest.raises(UpstreamNotFound) as caught:
            await client.retrieve_instance(spec.study_instance_uid, series, missing)
    assert str(caught.value) == (
        f"WADO-RS instance retrieval: not found at {orthanc.dicomweb_url}/studies/{spec.study_instance_uid}"
        f"/series/{series}/instances/{missing} (HTTP 404)"
    )
