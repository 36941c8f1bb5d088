"""WADO-RS series retrieval: msk-cds's DicomwebClient against dicomweb-client, same series, same Orthanc.

Starts its own Orthanc (tests/integration/servers.py) on a free loopback port, stores one synthetic MR
series (160 slices of 384 x 384 by default, 16 bit), then alternates the readers ``--repeats`` times
and prints each one's median wall time and its ratio to dicomweb-client: msk-cds's ``retrieve_series``
(one streamed request), msk-cds fetching the instances one request each (QIDO-RS listing, then at most
``--concurrency`` at once), and dicomweb-client's ``retrieve_series``. All must return the same
instances with the same pixels. Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/wado_retrieve.py [--slices 160] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass

from app.clients.dicomweb import DicomwebClient
from tests.integration.servers import OrthancServer
from tests.integration.synthetic import SeriesSpec, StudySpec, build_study, part10


def timed(run: Callable[[], list[pydicom.Dataset]]) -> tuple[float, float, list[pydicom.Dataset]]:
    """Wall seconds, this process's CPU seconds (the reader's own work, Orthanc's excluded), result."""
    start, start_cpu = time.perf_counter(), time.process_time()
    datasets = run()
    return time.perf_counter() - start, time.process_time() - start_cpu, datasets


def by_uid(datasets: list[pydicom.Dataset]) -> dict[str, pydicom.Dataset]:
    return {str(ds.SOPInstanceUID): ds for ds in datasets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=160)
    parser.add_argument("--size", type=int, default=384, help="rows = columns of each slice")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8, help="msk-cds client's bound on parallel requests")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        orthanc = OrthancServer(Path(workdir)).start()
        try:
            spec = StudySpec(series=(SeriesSpec("Sag 3D DESS", slices=args.slices, rows=args.size, columns=args.size),))
            datasets = build_study(spec)
            orthanc.upload([part10(ds) for ds in datasets])
            study, series = spec.study_instance_uid, str(datasets[0].SeriesInstanceUID)
            megabytes = sum(len(ds.PixelData) for ds in datasets) / 1e6
            print(f"series: {args.slices} slices of {args.size}x{args.size} (16 bit), {megabytes:.1f} MB of pixels")

            async def ours_async() -> list[pydicom.Dataset]:
                async with DicomwebClient(
                    orthanc.dicomweb_url, user=orthanc.user, password=orthanc.password, max_concurrency=args.concurrency
                ) as client:
                    return await client.retrieve_series(study, series)

            async def ours_per_instance_async() -> list[pydicom.Dataset]:
                async with DicomwebClient(
                    orthanc.dicomweb_url, user=orthanc.user, password=orthanc.password, max_concurrency=args.concurrency
                ) as client:
                    instances = await client.search_instances(study, series)
                    return await client.retrieve_instances(study, series, [str(i.SOPInstanceUID) for i in instances])

            def ours() -> list[pydicom.Dataset]:
                return asyncio.run(ours_async())

            def ours_per_instance() -> list[pydicom.Dataset]:
                return asyncio.run(ours_per_instance_async())

            def anchor() -> list[pydicom.Dataset]:
                session = create_session_from_user_pass(orthanc.user, orthanc.password)
                return DICOMwebClient(url=orthanc.dicomweb_url, session=session).retrieve_series(study, series)

            readers = {
                "msk-cds DicomwebClient": ours,
                "msk-cds per instance": ours_per_instance,
                "dicomweb-client": anchor,
            }
            times: dict[str, list[float]] = {name: [] for name in readers}
            cpu: dict[str, list[float]] = {name: [] for name in readers}
            for _ in range(args.repeats):
                for name, run in readers.items():
                    seconds, cpu_seconds, got = timed(run)
                    times[name].append(seconds)
                    cpu[name].append(cpu_seconds)
                    assert len(got) == args.slices, f"{name} returned {len(got)} instances"
            # Same instances, same pixels.
            mine, theirs = by_uid(ours()), by_uid(anchor())
            assert mine.keys() == theirs.keys()
            for uid, ds in mine.items():
                np.testing.assert_array_equal(ds.pixel_array, theirs[uid].pixel_array)
        finally:
            orthanc.stop()

    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        runs = ", ".join(f"{v:.3f}" for v in values)
        print(
            f"{name:24s} median {medians[name]:.3f} s, client CPU {statistics.median(cpu[name]):.3f} s  (runs: {runs})"
        )
    for name in ("msk-cds DicomwebClient", "msk-cds per instance"):
        ratio = medians["dicomweb-client"] / medians[name]
        print(f"speed-up of {name}: {ratio:.2f}x (dicomweb-client median / its median)")


if __name__ == "__main__":
    main()
