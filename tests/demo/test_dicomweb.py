"""The demo's DICOMweb service, read by msk-cds's own DICOMweb client: the same acquisitions as the files."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi import FastAPI

from app.clients.dicomweb import DicomwebClient
from app.clients.errors import UpstreamNotFound
from app.clients.http import run_sync
from app.demo.dicomweb import DicomFolder, dicomweb_router
from app.demo.server import free_port, serving
from app.imaging import load_acquisitions, select_series


@pytest.fixture(scope="module")
def dicomweb_url(phantom_dir):
    app = FastAPI()
    app.include_router(dicomweb_router(DicomFolder(phantom_dir)), prefix="/dicomweb")
    with serving(app, "127.0.0.1", free_port()) as base:
        yield f"{base}/dicomweb"


def test_metadata_then_chosen_series_give_the_files_acquisition(phantom_dir, dicomweb_url) -> None:
    expected = select_series(load_acquisitions(phantom_dir)).morphology
    study = expected.study_instance_uid

    async def fetch():
        async with DicomwebClient(dicomweb_url) as client:
            metadata = await client.study_metadata(study)
            chosen = select_series(load_acquisitions(metadata, pixels=False)).morphology
            datasets = [ds for uid in chosen.series_instance_uids for ds in await client.retrieve_series(study, uid)]
            return metadata, datasets

    metadata, datasets = run_sync(fetch())
    assert all("PixelData" not in ds for ds in metadata)
    morphology = select_series(load_acquisitions(datasets)).morphology
    assert morphology.series_instance_uids == expected.series_instance_uids
    np.testing.assert_array_equal(morphology.echoes.array, expected.echoes.array)
    np.testing.assert_array_equal(morphology.echoes.affine, expected.echoes.affine)


def test_unknown_study_is_a_404(dicomweb_url) -> None:
    async def fetch():
        async with DicomwebClient(dicomweb_url) as client:
            await client.study_metadata("1.2.3.4")

    with pytest.raises(UpstreamNotFound):
        run_sync(fetch())


def test_inspect_reads_a_study_url_as_metadata_only(phantom_dir, dicomweb_url, monkeypatch) -> None:
    """`mskcds inspect URL` lists the same acquisitions as `mskcds inspect FOLDER`."""
    import json

    from typer.testing import CliRunner

    from app.cli import cli
    from app.settings import get_settings

    monkeypatch.setenv("MSKCDS_DICOMWEB_ALLOWLIST", json.dumps([dicomweb_url]))
    get_settings.cache_clear()
    study = select_series(load_acquisitions(phantom_dir)).morphology.study_instance_uid
    runner = CliRunner()
    from_url = runner.invoke(cli, ["inspect", f"{dicomweb_url}/studies/{study}", "--json"])
    from_files = runner.invoke(cli, ["inspect", str(phantom_dir), "--json"])
    assert from_url.exit_code == 0, from_url.output
    assert json.loads(from_url.stdout) == json.loads(from_files.stdout)
    missing = runner.invoke(cli, ["inspect", f"{dicomweb_url}/studies/1.2.3.4"])
    assert missing.exit_code == 1
    get_settings.cache_clear()
