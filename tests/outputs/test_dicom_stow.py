"""Orthanc accepts the SEG and the SR by STOW-RS, and serves them back intact (WADO-RS)."""

from __future__ import annotations

from collections.abc import Iterator

import highdicom as hd
import pytest

from app.clients.dicomweb import DicomwebClient
from app.outputs.dicom_seg import build_segmentation
from app.outputs.dicom_sr import build_measurement_report
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet
from tests.integration.servers import OrthancServer
from tests.integration.synthetic import part10
from tests.outputs.dicom_examples import ALGORITHM, knee_labels, source_series

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    server = OrthancServer(tmp_path_factory.mktemp("orthanc-stow")).start()
    try:
        yield server
    finally:
        server.stop()


async def test_orthanc_stores_seg_and_sr(orthanc: OrthancServer) -> None:
    sources = source_series()
    orthanc.upload([part10(ds) for ds in sources])  # the PACS holds the segmented series
    study = str(sources[0].StudyInstanceUID)
    seg = build_segmentation(knee_labels(), sources, ALGORITHM)
    biomarkers = BiomarkerSet(
        laterality="right",
        laterality_source="dicom",
        biomarkers=[
            Biomarker.of(BiomarkerName.CARTILAGE_THICKNESS_MEAN, "cMF", 2.1),
            Biomarker.of(BiomarkerName.BONE_VOLUME, "femur", 152000.0),
        ],
    )
    sr = build_measurement_report(biomarkers, seg, sources, ALGORITHM)

    async with DicomwebClient(orthanc.dicomweb_url, user=orthanc.user, password=orthanc.password) as client:
        response = await client.store_instances([seg, sr], study_instance_uid=study)
        stored = {str(item.ReferencedSOPInstanceUID) for item in response.ReferencedSOPSequence}
        assert stored == {seg.SOPInstanceUID, sr.SOPInstanceUID}
        series = {str(ds.Modality): str(ds.SeriesInstanceUID) for ds in await client.search_series(study)}
        assert series == {"MR": sources[0].SeriesInstanceUID, "SEG": seg.SeriesInstanceUID, "SR": sr.SeriesInstanceUID}
        (seg_back,) = await client.retrieve_series(study, seg.SeriesInstanceUID)
        (sr_back,) = await client.retrieve_series(study, sr.SeriesInstanceUID)

    assert seg_back.PixelData == seg.PixelData  # the frames come back bit for bit
    segmentation = hd.seg.Segmentation.from_dataset(seg_back)
    pixels = segmentation.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], combine_segments=True)
    assert pixels.shape == knee_labels().array.shape
    assert [item.SegmentLabel for item in segmentation.SegmentSequence] == [
        item.SegmentLabel for item in seg.SegmentSequence
    ]
    report = hd.sr.Comprehensive3DSR.from_dataset(sr_back)
    values = sorted(
        m.value for g in report.content.get_volumetric_roi_measurement_groups() for m in g.get_measurements()
    )
    assert values == [2.1, 152000.0]
