"""A study's acquisitions over DICOMweb, downloading only the series the analysis uses.

Series are chosen on WADO-RS metadata (headers, no pixel data) by the same selection that later runs
on the pixels, so localisers, reformats and sequences the analysis does not read are never transferred:
a clinical knee exam holds 6-10 series, of which the analysis needs one to three.
"""

from __future__ import annotations

import asyncio

from app.clients.dicomweb import DicomwebClient
from app.clients.http import run_sync
from app.imaging import StudySelection, load_acquisitions, select_series
from app.settings import Settings


def series_to_fetch(selection: StudySelection) -> list[str]:
    """The SeriesInstanceUIDs of the chosen acquisitions (several per acquisition for GE's split echoes)."""
    chosen = (selection.morphology, selection.t2, selection.t1rho)
    return [uid for acquisition in chosen if acquisition is not None for uid in acquisition.series_instance_uids]


async def fetch_selection(client: DicomwebClient, study_instance_uid: str) -> StudySelection:
    """Metadata -> selection -> the chosen series' instances -> the selection with pixels.

    Raises the imaging layer's ``LoaderError`` / ``SeriesSelectionError`` (ValueErrors) for a study
    that cannot be analysed, and the clients' ``UpstreamError`` for transport failures.
    """
    metadata = await client.study_metadata(study_instance_uid)
    chosen = select_series(load_acquisitions(metadata, pixels=False))
    per_series = await asyncio.gather(
        *(client.retrieve_series(study_instance_uid, uid) for uid in series_to_fetch(chosen))
    )
    return select_series(load_acquisitions([dataset for datasets in per_series for dataset in datasets]))


def open_selection(settings: Settings, dicomweb_url: str, study_instance_uid: str) -> StudySelection:
    """Synchronous :func:`fetch_selection` with the configured credentials (workers and the CLI)."""

    async def fetch() -> StudySelection:
        async with DicomwebClient.from_settings(settings, dicomweb_url) as client:
            return await fetch_selection(client, study_instance_uid)

    return run_sync(fetch())
