"""WADO-RS series retrieval: msk-cds's DicomwebClient against dicomweb-client, same series, same Orthanc.

Starts its own Orthanc (tests/integration/servers.py; its HTTP settings are Orthanc's defaults, printed
below) on a free loopback port, stores one synthetic MR series (160 slices of 384 x 384 by default,
16 bit), then runs the readers ``--repeats`` times, interleaved (the order rotates every repeat), and
prints each one's median wall time, its own CPU time and Orthanc's CPU time (from /proc), and its
speed-up over dicomweb-client (synchronous, requests-based: the anchor) from the same run: the median
of the per-repeat wall ratios ("paired": each pair measured at the same moment, under the same load),
the ratio of the median wall times, and the ratio of the median CPU times:

* msk-cds ``retrieve_series``: one streamed request, read through aiohttp (the client's transport), run
  from synchronous code with ``run_sync`` as the CLI and the workers do;
* the same through httpx's own HTTP/1.1 transport (the transport msk-cds used before), for attribution;
* msk-cds one request per instance, at most ``--concurrency`` at once (one row per value given), the
  instance list taken from the series metadata fetched beforehand (untimed: the pipeline has it already,
  from choosing the series);
* dicomweb-client ``retrieve_series``.

Every run's datasets must equal dicomweb-client's, element by element (pixel data included, file meta
too; checked outside the timing). Reference rows split msk-cds's time: the body's transfer alone (read,
not parsed; also through httpx's own transport), the parsing alone (multipart and pydicom, from bytes in
memory), and of that pydicom alone (``dcmread`` of each part's bytes). The load average is printed
before and after: on a shared machine wall times move with it; CPU times and the paired ratio move
less. Run from the repository root:

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/wado_retrieve.py [--repeats 15] [--concurrency 1,8,32]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pydicom
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass

from app.clients.dicomweb import MULTIPART_DICOM, DicomwebClient, dataset_from_part10
from app.clients.http import run_sync, tls_context
from app.clients.multipart import iter_parts, parse_content_type
from app.clients.transport import AiohttpTransport
from tests.integration.servers import OrthancServer
from tests.integration.synthetic import SeriesSpec, StudySpec, build_study, part10

ANCHOR = "dicomweb-client"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Samples:
    """One reader's measurements, one entry per repeat."""

    wall: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)

    def add(self, run: Callable[[], object], server_pid: int) -> object:
        server, wall, cpu = process_cpu_s(server_pid), time.perf_counter(), time.process_time()
        result = run()
        self.wall.append(time.perf_counter() - wall)
        self.client_cpu.append(time.process_time() - cpu)
        self.server_cpu.append(process_cpu_s(server_pid) - server)
        return result

    def line(self, name: str, anchor: Samples | None) -> str:
        """Medians; speed-ups over the anchor: the median of the per-repeat wall ratios (each pair measured
        at the same moment, under the same load), the ratio of the median walls, the ratio of the median CPUs."""
        wall, cpu = statistics.median(self.wall), statistics.median(self.client_cpu)
        speed_up = " " * 11 + "-" + " " * 11
        if anchor is not None:
            paired = statistics.median(a / b for a, b in zip(anchor.wall, self.wall, strict=True))
            of_medians = statistics.median(anchor.wall) / wall
            speed_up = f"{paired:4.2f}x / {of_medians:4.2f}x / {statistics.median(anchor.client_cpu) / cpu:4.2f}x"
        return (
            f"{name:44s} {wall:6.3f} s  {cpu:6.3f} s  {statistics.median(self.server_cpu):6.3f} s  {speed_up}"
            f"   {min(self.wall):.3f}-{max(self.wall):.3f} s"
        )


def with_pixels(datasets: list[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """The datasets, after touching every PixelData (so no reader can leave pixels unread)."""
    assert all(len(ds.PixelData) for ds in datasets)
    return datasets


def same_datasets(got: list[pydicom.Dataset], expected: list[pydicom.Dataset], name: str) -> None:
    """Same instances, every element equal (pixel data included), same file meta."""
    theirs = {str(ds.SOPInstanceUID): ds for ds in expected}
    assert len(got) == len(expected) and {str(ds.SOPInstanceUID) for ds in got} == theirs.keys(), name
    for ds in got:
        other = theirs[str(ds.SOPInstanceUID)]
        assert ds == other and ds.file_meta == other.file_meta, f"{name}: {ds.SOPInstanceUID} differs"


def series_files(args: argparse.Namespace) -> tuple[list[bytes], str]:
    """The Part 10 files of the series to retrieve, and how to describe it."""
    if args.series_dir is None:
        spec = StudySpec(series=(SeriesSpec("Sag 3D DESS", slices=args.slices, rows=args.size, columns=args.size),))
        files = [part10(ds) for ds in build_study(spec)]
        return files, f"synthetic, {args.slices} slices of {args.size}x{args.size} (16 bit)"
    files = [path.read_bytes() for path in sorted(args.series_dir.iterdir()) if path.is_file()]
    first = pydicom.dcmread(io.BytesIO(files[0]), stop_before_pixels=True)
    return (
        files,
        f"{args.series_dir}, {len(files)} instances of {first.Rows}x{first.Columns}, {len(first)} elements each",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=160)
    parser.add_argument("--size", type=int, default=384, help="rows = columns of each slice")
    parser.add_argument(
        "--series-dir",
        type=Path,
        help="retrieve this real series (a folder of its Part 10 files) instead of the synthetic one, e.g. the "
        "real GE DESS echo the tests unpack: ~/.cache/mskcds-test-data/dess/DESS/01",
    )
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[8],
        help="per-instance readers: bounds on parallel requests, comma-separated (default 8)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        orthanc = OrthancServer(Path(workdir)).start()
        try:
            assert orthanc.process is not None
            server_pid = orthanc.process.pid
            files, description = series_files(args)
            orthanc.upload(files)
            datasets = [pydicom.dcmread(io.BytesIO(data)) for data in files]
            study, series = str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)
            assert {str(ds.SeriesInstanceUID) for ds in datasets} == {series}, "--series-dir: one series only"
            series_url = f"{orthanc.dicomweb_url}/studies/{study}/series/{series}"
            megabytes = sum(len(ds.PixelData) for ds in datasets) / 1e6
            settings = httpx.get(f"{orthanc.url}/system", auth=orthanc.auth).json()

            def client(**kwargs: object) -> DicomwebClient:
                return DicomwebClient(
                    orthanc.dicomweb_url,
                    user=orthanc.user,
                    password=orthanc.password,
                    **kwargs,  # type: ignore[arg-type]
                )

            async def series_uids() -> list[str]:
                async with client() as dicomweb:
                    return [str(ds.SOPInstanceUID) for ds in await dicomweb.series_metadata(study, series)]

            instance_uids = run_sync(series_uids())

            async def ours(httpx_transport: bool = False) -> list[pydicom.Dataset]:
                transport = httpx.AsyncHTTPTransport(verify=tls_context()) if httpx_transport else None
                async with client(transport=transport) as dicomweb:
                    return with_pixels(await dicomweb.retrieve_series(study, series))

            async def ours_per_instance(concurrency: int) -> list[pydicom.Dataset]:
                async with client(max_concurrency=concurrency) as dicomweb:
                    return with_pixels(await dicomweb.retrieve_instances(study, series, instance_uids))

            def per_instance(concurrency: int) -> Callable[[], list[pydicom.Dataset]]:
                return lambda: run_sync(ours_per_instance(concurrency))

            def anchor() -> list[pydicom.Dataset]:
                session = create_session_from_user_pass(orthanc.user, orthanc.password)
                return with_pixels(
                    DICOMwebClient(url=orthanc.dicomweb_url, session=session).retrieve_series(study, series)
                )

            readers: dict[str, Callable[[], list[pydicom.Dataset]]] = {
                "msk-cds retrieve_series (aiohttp transport)": lambda: run_sync(ours()),
                "msk-cds retrieve_series (httpx transport)": lambda: run_sync(ours(httpx_transport=True)),
                **{f"msk-cds per instance, {n} at once": per_instance(n) for n in args.concurrency},
                ANCHOR: anchor,
            }

            # References that split msk-cds's time: the transfer alone, the parsing alone.
            async def transfer(httpx_transport: bool = False) -> tuple[str, list[bytes]]:
                transport: httpx.AsyncBaseTransport = (
                    httpx.AsyncHTTPTransport(verify=tls_context())
                    if httpx_transport
                    else AiohttpTransport(max_connections=1, tls=tls_context())
                )
                async with (
                    httpx.AsyncClient(auth=orthanc.auth, transport=transport) as http,
                    http.stream("GET", series_url, headers={"Accept": MULTIPART_DICOM}) as response,
                ):
                    return response.headers["content-type"], [chunk async for chunk in response.aiter_bytes()]

            content_type, chunks = run_sync(transfer())

            async def parse() -> list[pydicom.Dataset]:
                boundary = parse_content_type(content_type).boundary
                return [dataset_from_part10(part.content, "parse") async for part in iter_parts(body(), boundary)]

            async def split() -> list[bytes]:
                boundary = parse_content_type(content_type).boundary
                return [part.content async for part in iter_parts(body(), boundary)]

            async def body() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk

            contents = run_sync(split())
            references: dict[str, Callable[[], object]] = {
                "  of which the transfer (read, not parsed)": lambda: run_sync(transfer()),
                "  the same transfer, httpx's own transport": lambda: run_sync(transfer(httpx_transport=True)),
                "  of which the parsing (multipart + pydicom)": lambda: run_sync(parse()),
                "    of which pydicom (dcmread of each part)": lambda: [
                    dataset_from_part10(content, "parse") for content in contents
                ],
            }

            expected = anchor()
            runs: dict[str, Callable[[], object]] = {**readers, **references}
            samples = {name: Samples() for name in runs}
            names = list(runs)
            load_before = os.getloadavg()
            for repeat in range(args.repeats):
                for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                    result = samples[name].add(runs[name], server_pid)
                    if name in readers:  # untimed: every run's datasets, element by element
                        same_datasets(result, expected, name)  # type: ignore[arg-type]
                    del result
            load_after = os.getloadavg()
        finally:
            orthanc.stop()

    print(f"series: {description}, {megabytes:.1f} MB of pixels")
    print(
        f"Orthanc {settings.get('Version')} + DICOMweb plugin on loopback, HTTP settings left at Orthanc's defaults "
        "(KeepAlive true, TcpNoDelay true, HttpThreadsCount 50); pixel data asked for uncompressed by every reader"
    )
    cpus = os.cpu_count()
    print(f"load average (1 min) before / after the runs: {load_before[0]:.1f} / {load_after[0]:.1f}, {cpus} CPUs")
    print(
        f"{'medians of ' + str(args.repeats) + ' interleaved repeats':44s} {'wall':>8s}  {'our CPU':>8s}  "
        f"{'Orthanc':>8s}  speed-up: paired / wall / CPU  wall range"
    )
    for name, sample in samples.items():
        print(sample.line(name, samples[ANCHOR] if name in readers and name != ANCHOR else None))


if __name__ == "__main__":
    main()
