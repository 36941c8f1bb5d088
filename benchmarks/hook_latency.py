"""Hook latency for cached results under load: 50 concurrent clients, JWT verification on.

Starts the real service (``mskcds serve``, a uvicorn process) on a free loopback port, with a CDS client
whose JWK Set is served from a local HTTP server (fetched once, then cached, as in production). One hook
call makes the service analyse the study (this script's analyzer stands in for the segmentation
pipeline, which is not what is measured); once the result is stored, every ``patient-view`` call is
answered from it: JWT verification (ES384, jti replay check), request parsing, prefetch parsing (FHIR
R4 resources), result cache, risk computed with the clinical models, cards.

Each request carries its own JWT (a replayed one would be refused), all signed before the timed run.
Baseline measured in the same run with the same load generator: ``GET /health`` (the framework's floor).
The load generator runs on the same machine (2 cores shared with the server), so figures are
conservative. Prints p50 / p95 / p99 latency and throughput; asserts nothing.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/hook_latency.py [--requests 3000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from schemas.analysis import AnalysisResult, SeriesUsed  # noqa: E402
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet  # noqa: E402

SERVICE = "mskcds-knee-patient-view"


class BenchAnalyzer:
    """Answers every study with one measured right knee (stands in for segmentation + measurement)."""

    model_versions: ClassVar[dict[str, str]] = {"bench-analyzer": "1"}

    def __call__(self, ref: Any) -> AnalysisResult:
        names = [(BiomarkerName.CARTILAGE_THICKNESS_MEAN, r, v) for r, v in
                 (("cMF", 1.6), ("cLF", 1.9), ("MT", 1.5), ("LT", 2.1), ("P", 2.3), ("TrF", 2.0))]
        names += [(BiomarkerName.BONE_VOLUME, "femur", 140000.0), (BiomarkerName.BONE_VOLUME, "tibia", 90000.0)]
        biomarkers = BiomarkerSet(laterality="right", laterality_source="dicom",
                                  biomarkers=[Biomarker.of(n, r, v) for n, r, v in names])
        return AnalysisResult(study_instance_uid=ref.study_instance_uid, model_versions=self.model_versions,
                              series=[SeriesUsed(role="morphology", series_instance_uids=["1.2.3.4.5.1"])],
                              measurements=biomarkers, created_at=datetime.now(UTC))


ANALYZER = BenchAnalyzer()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def load(url: str, bodies: list[bytes | None], tokens: list[str | None], concurrency: int) -> dict[str, float]:
    """Send every request with ``concurrency`` clients; latency per request and overall throughput."""
    import httpx

    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                i = queue.get_nowait()
                headers = {"Content-Type": "application/json"}
                if tokens[i]:
                    headers["Authorization"] = f"Bearer {tokens[i]}"
                start = time.perf_counter()
                if bodies[i] is None:
                    response = await client.get(url, headers=headers)
                else:
                    response = await client.post(url, content=bodies[i], headers=headers)
                latencies.append(time.perf_counter() - start)
                failures += response.status_code != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"n": len(latencies), "failures": failures, "rps": len(latencies) / elapsed,
            "p50": 1000 * percentile(latencies, 50), "p95": 1000 * percentile(latencies, 95),
            "p99": 1000 * percentile(latencies, 99), "mean": 1000 * statistics.fmean(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (>1 uses Redis for jti replay)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    from tests.api.fhir_data import DICOMWEB, FHIR_SERVER, hook_body
    from tests.cds_hooks.client import CdsTestClient, JwksServer

    client = CdsTestClient(iss="https://ehr.bench.test/")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    path = f"/cds-services/{SERVICE}"
    with tempfile.TemporaryDirectory() as tmp, JwksServer(client.jwks()).running() as jwks:
        client.jku = jwks.url
        env = {**os.environ, "PYTHONPATH": str(REPO), "MSKCDS_PUBLIC_BASE_URL": base,
               "MSKCDS_CDS_CLIENTS": json.dumps([{"iss": client.iss, "jku": jwks.url}]),
               "MSKCDS_FHIR_ALLOWLIST": json.dumps([FHIR_SERVER]), "MSKCDS_DICOMWEB_ALLOWLIST": json.dumps([DICOMWEB]),
               "MSKCDS_CACHE_DIR": tmp, "MSKCDS_ANALYZER": "benchmarks.hook_latency:ANALYZER",
               "MSKCDS_REPLAY_CACHE_URL": args.redis if args.workers > 1 else ""}
        log = Path(tmp) / "server.log"
        with log.open("w") as log_file:
            server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port),
                                       "--workers", str(args.workers)], env=env, cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=log_file)
            try:
                figures = asyncio.run(run(base, path, client, hook_body, args, server, log))
            finally:
                server.terminate()
                server.wait(timeout=30)
    print(f"hook latency, {args.requests} requests, {args.concurrency} concurrent clients, JWT verification on, "
          f"{args.workers} uvicorn worker(s), {os.cpu_count()} CPU cores shared with the load generator")
    print(f"{'endpoint':<34}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'failed':>8}")
    for name, f in figures.items():
        print(f"{name:<34}{f['rps']:>8.0f}{f['p50']:>9.1f}{f['p95']:>9.1f}{f['p99']:>9.1f}{f['failures']:>8.0f}")
    hook = figures[f"POST {path}"]
    print(f"target p95 < 50 ms: {'met' if hook['p95'] < 50 else 'NOT met'}; "
          f"target >= 300 req/s: {'met' if hook['rps'] >= 300 else 'NOT met'}")


async def run(base: str, path: str, client: Any, hook_body: Any, args: argparse.Namespace,
              server: subprocess.Popen, log: Path) -> dict[str, dict[str, float]]:
    import httpx

    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"the service did not start:\n{log.read_text()[-3000:]}")
            try:
                if (await http.get(f"{base}/ready")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        for _ in range(600):  # first call queues the analysis; wait until hooks are answered from the result
            response = await http.post(base + path, json=hook_body(),
                                       headers={"Authorization": f"Bearer {client.token(base + path)}"})
            response.raise_for_status()
            if response.json()["cards"] and "risk" in response.json()["cards"][0]["summary"]:
                break
            await asyncio.sleep(0.2)
        else:
            raise SystemExit("the analysis result never appeared")
    n = args.requests
    bodies = [json.dumps(hook_body()).encode() for _ in range(n)]
    tokens = [client.token(base + path) for _ in range(n)]
    await load(base + path, bodies[:200], tokens[:200], args.concurrency)  # warm-up (connections, caches)
    hook = await load(base + path, bodies[200:], tokens[200:], args.concurrency)
    health = await load(base + "/health", [None] * (n - 200), [None] * (n - 200), args.concurrency)
    return {f"POST {path}": hook, "GET /health (baseline)": health}


if __name__ == "__main__":
    main()
