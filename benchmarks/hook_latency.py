"""Hook latency for cached results under load: 50 concurrent clients, JWT verification on.

Starts the real service (``mskcds serve``: uvicorn, ``--workers 2`` by default, the jti replay cache in
the local Redis) on a free loopback port, with a CDS client whose JWK Set is served from a local HTTP
server (fetched once, then cached, as in production). One hook call makes the service analyse the study
(this script's analyzer stands in for the segmentation pipeline, which is not what is measured); once
the result is stored, every ``patient-view`` call is answered from it: JWT verification (ES384, jti
replay check in Redis), request parsing, prefetch facts, triage and risk with the clinical models
(``MSKCDS_MODEL_DIR``), cards, one JSON log line.

Runs, all with every request carrying its own JWT (signed before the timed runs: a replayed one would
be refused), over ``--concurrency`` kept-alive connections:

- *repeat patient*, saturation (closed loop: each client sends its next call when the last is answered)
  and paced at ``--rate`` (open loop: call i is due at i / rate and its latency counts from then, so
  waiting behind a slow call is included: no coordinated omission). The same patient and prefetch
  each time, as an EHR sends while a clinician works on one chart: prefetch facts and cards are reused;
- *distinct patients*, saturation: every call a new patient (id and birth date) with the same stored
  study: prefetch parsing, clinical models and cards run on every call (the cold path);
- ``GET /health``, saturation: the framework's floor, measured in the same run (baseline).

Besides wall-clock figures (which on a shared machine say as much about the other jobs as about this
service) it prints CPU per request, which other load barely changes: the server's processes (from
/proc), the load generator's (this process), and Redis's (``INFO cpu``, the whole server, so other
users of it count too); and the 1-minute load average before and after each run. The load generator
is a small epoll HTTP/1.1 client on pre-built requests (~0.05 ms of CPU per request), as it shares the
cores with the server. Asserts nothing.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/hook_latency.py [--requests 3000] [--workers 2]
    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/hook_latency.py --in-process [--requests 3000]

``--in-process`` measures instead the CPU time of one call driven straight into the ASGI app (no
server, no HTTP client, sequential): min and median over rounds of 200 calls, beside ``GET /health``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from schemas.analysis import AnalysisResult, SeriesUsed  # noqa: E402
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet  # noqa: E402

SERVICE = "mskcds-knee-patient-view"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchAnalyzer:
    """Answers every study with one measured right knee (stands in for segmentation + measurement)."""

    model_versions: ClassVar[dict[str, str]] = {"bench-analyzer": "1"}

    def __call__(self, ref: Any) -> AnalysisResult:
        thickness = {"cMF": 1.6, "cLF": 1.9, "MT": 1.5, "LT": 2.1, "P": 2.3, "TrF": 2.0}
        values = [(BiomarkerName.CARTILAGE_THICKNESS_MEAN, r, v) for r, v in thickness.items()]
        values += [(BiomarkerName.CARTILAGE_THICKNESS_P5, r, 0.6 * thickness[r]) for r in ("cMF", "cLF", "MT", "LT")]
        values += [(BiomarkerName.DENUDED_AREA_PCT, r, 2.0) for r in ("cMF", "cLF", "MT", "LT")]
        extrusion, meniscus, bone = (BiomarkerName.MENISCUS_EXTRUSION, BiomarkerName.MENISCUS_THICKNESS_MEAN,
                                     BiomarkerName.BONE_VOLUME)
        values += [(extrusion, "MM", 2.4), (extrusion, "LM", 1.1), (meniscus, "MM", 2.8), (meniscus, "LM", 3.0),
                   (bone, "femur", 140000.0), (bone, "tibia", 90000.0)]
        biomarkers = BiomarkerSet(laterality="right", laterality_source="dicom",
                                  biomarkers=[Biomarker.of(n, r, v) for n, r, v in values])
        return AnalysisResult(study_instance_uid=ref.study_instance_uid, model_versions=self.model_versions,
                              series=[SeriesUsed(role="morphology", series_instance_uids=["1.2.3.4.5.1"])],
                              measurements=biomarkers, created_at=datetime.now(UTC))


ANALYZER = BenchAnalyzer()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def hook_bodies(count: int, *, distinct_patients: bool) -> list[bytes]:
    """``patient-view`` bodies (the API tests' patient with a right-knee MRI), each with its own hookInstance;
    with ``distinct_patients`` each names another patient (id and birth date), so nothing is reused."""
    from tests.api.fhir_data import BIRTH_DATE, PATIENT_ID, hook_body

    bodies = []
    for i in range(count):
        text = json.dumps(hook_body())
        if distinct_patients:
            birth = f"{1930 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}"
            text = text.replace(PATIENT_ID, f"bench-{i}").replace(BIRTH_DATE, birth)
        bodies.append(text.encode())
    return bodies


# --- the load generator ------------------------------------------------------------------------------

def raw_request(method: str, host: str, path: str, body: bytes | None, token: str | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def _complete(buffer: bytearray) -> int | None:
    """The HTTP status once ``buffer`` holds a whole response (Content-Length framed), else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
    line_end = head.find(b"\r\n", at + 2)
    length = int(head[at + 17:line_end if line_end > 0 else len(head)])
    if len(buffer) < end + 4 + length:
        return None
    if len(buffer) > end + 4 + length:
        raise RuntimeError("more bytes than one response on a connection with one request in flight")
    return int(buffer[9:12])


def drive(port: int, requests: Sequence[bytes], concurrency: int, rate: float | None = None) -> dict[str, Any]:
    """Send prepared requests over ``concurrency`` kept-alive connections; latency of each, in seconds.

    ``rate`` None: closed loop (each free connection sends the next request at once: saturation).
    ``rate`` R: open loop, request i due at ``i / R`` s, sent by the first free connection, latency
    counted from its due time. One thread, epoll, blocking sends of pre-built bytes: cheap on the CPU
    the server needs.
    """
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(concurrency)]
    selector = selectors.DefaultSelector()
    for index, connection in enumerate(connections):
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(connection, selectors.EVENT_READ, index)
    buffers = [bytearray() for _ in connections]
    due = [0.0] * concurrency
    free = deque(range(concurrency))  # first free, first used: every connection stays busy (keep-alive)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    start = time.perf_counter()
    try:
        while len(latencies) < len(requests):
            now = time.perf_counter()
            while free and sent < len(requests):
                due_at = start + sent / rate if rate else now
                if due_at > now:
                    break
                index = free.popleft()
                due[index] = due_at
                connections[index].sendall(requests[sent])
                sent += 1
            timeout = None
            if rate and free and sent < len(requests):
                timeout = max(0.0, start + sent / rate - time.perf_counter())
            for key, _ in selector.select(timeout):
                index = key.data
                chunk = connections[index].recv(262144)
                if not chunk:
                    raise RuntimeError("the server closed a kept-alive connection")
                buffers[index] += chunk
                status = _complete(buffers[index])
                if status is None:
                    continue
                latencies.append(time.perf_counter() - due[index])
                statuses[status] = statuses.get(status, 0) + 1
                buffers[index].clear()
                free.append(index)
        elapsed = time.perf_counter() - start
    finally:
        selector.close()
        for connection in connections:
            connection.close()
    return {"n": len(latencies), "failures": len(latencies) - statuses.get(200, 0), "statuses": statuses,
            "rps": len(latencies) / elapsed, "p50": 1000 * percentile(latencies, 50),
            "p95": 1000 * percentile(latencies, 95), "p99": 1000 * percentile(latencies, 99),
            "mean": 1000 * statistics.fmean(latencies)}


# --- CPU accounting ----------------------------------------------------------------------------------

def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants that are alive (from /proc)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


class CpuMeter:
    """CPU seconds spent by the server's processes, this process (the load generator) and Redis."""

    def __init__(self, server_pid: int, redis_url: str | None) -> None:
        self.server_pid = server_pid
        self.redis = None
        if redis_url:
            import redis

            self.redis = redis.Redis.from_url(redis_url)

    def sample(self) -> tuple[float, float, float | None]:
        redis_s = None
        if self.redis is not None:
            info = self.redis.info("cpu")
            redis_s = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return process_tree_cpu_s(self.server_pid), time.process_time(), redis_s


def measured(meter: CpuMeter, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    load_before = load_average()
    before = meter.sample()
    figures = run()
    after = meter.sample()
    n = figures["n"]
    figures.update(server_ms=1000 * (after[0] - before[0]) / n, generator_ms=1000 * (after[1] - before[1]) / n,
                   redis_ms=None if before[2] is None else 1000 * (after[2] - before[2]) / n,  # type: ignore[operator]
                   load=(load_before, load_average()))
    return figures


# --- the server run ----------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per timed run")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=300.0, help="offered load of the paced run (req/s)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (>1 uses Redis for jti replay)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--in-process", action="store_true",
                        help="instead: CPU time of sequential calls straight into the app (no server)")
    args = parser.parse_args()
    if args.in_process:
        asyncio.run(service_time(args.requests))
        return

    import httpx

    from tests.api.fhir_data import DICOMWEB, FHIR_SERVER
    from tests.cds_hooks.client import CdsTestClient, JwksServer

    client = CdsTestClient(iss="https://ehr.bench.test/")
    port = free_port()
    base, host = f"http://127.0.0.1:{port}", f"127.0.0.1:{port}"
    path = f"/cds-services/{SERVICE}"
    redis_url = args.redis if args.workers > 1 else ""
    with tempfile.TemporaryDirectory() as tmp, JwksServer(client.jwks()).running() as jwks:
        client.jku = jwks.url
        env = {**os.environ, "PYTHONPATH": str(REPO), "MSKCDS_PUBLIC_BASE_URL": base,
               "MSKCDS_CDS_CLIENTS": json.dumps([{"iss": client.iss, "jku": jwks.url}]),
               "MSKCDS_FHIR_ALLOWLIST": json.dumps([FHIR_SERVER]), "MSKCDS_DICOMWEB_ALLOWLIST": json.dumps([DICOMWEB]),
               "MSKCDS_CACHE_DIR": tmp, "MSKCDS_ANALYZER": "benchmarks.hook_latency:ANALYZER",
               "MSKCDS_REPLAY_CACHE_URL": redis_url}
        log = Path(tmp) / "server.log"
        with log.open("w") as log_file:
            server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port),
                                       "--workers", str(args.workers)], env=env, cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=log_file)
            try:
                wait_until_answered_from_the_result(base, path, client, server, log, httpx)
                n = args.requests
                print(f"signing {3 * n + 8 * args.concurrency} JWTs (ES384) before the timed runs ...",
                      file=sys.stderr)

                def hooks(bodies: list[bytes]) -> list[bytes]:
                    return [raw_request("POST", host, path, body, client.token(base + path)) for body in bodies]

                warm_up = hooks(hook_bodies(8 * args.concurrency, distinct_patients=False))
                repeat_sat = hooks(hook_bodies(n, distinct_patients=False))
                repeat_paced = hooks(hook_bodies(n, distinct_patients=False))
                distinct = hooks(hook_bodies(n, distinct_patients=True))
                health = [raw_request("GET", host, "/health", None, None)] * n
                meter = CpuMeter(server.pid, redis_url or None)
                drive(port, warm_up, args.concurrency)  # connections, every worker's caches
                figures = {
                    "hooks, repeat patient, saturation": measured(
                        meter, lambda: drive(port, repeat_sat, args.concurrency)),
                    f"hooks, repeat patient, paced {args.rate:.0f}/s": measured(
                        meter, lambda: drive(port, repeat_paced, args.concurrency, rate=args.rate)),
                    "hooks, distinct patients, saturation": measured(
                        meter, lambda: drive(port, distinct, args.concurrency)),
                    "GET /health, saturation (baseline)": measured(
                        meter, lambda: drive(port, health, args.concurrency)),
                }
            finally:
                server.terminate()
                server.wait(timeout=30)
    report(figures, args)


def wait_until_answered_from_the_result(base: str, path: str, client: Any, server: subprocess.Popen,
                                        log: Path, httpx: Any) -> None:
    """Wait for readiness, then call until the stored analysis answers (the first call queues it)."""
    from tests.api.fhir_data import hook_body

    with httpx.Client(timeout=10) as http:
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"the service did not start (clinical models in MSKCDS_MODEL_DIR?):\n"
                                 f"{log.read_text()[-3000:]}")
            try:
                if http.get(f"{base}/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        for _ in range(600):
            response = http.post(base + path, json=hook_body(),
                                 headers={"Authorization": f"Bearer {client.token(base + path)}"})
            response.raise_for_status()
            if any(" risk within " in card["summary"] for card in response.json()["cards"]):
                return
            time.sleep(0.2)
    raise SystemExit("the analysis result never appeared")


def report(figures: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"hook latency, {args.requests} requests per run, {args.concurrency} concurrent clients, JWT (ES384) "
          f"verification on, {args.workers} uvicorn worker(s), {os.cpu_count()} CPU cores shared with the load "
          "generator (and whatever else runs on the machine)")
    print(f"{'run':<40}{'req/s':>7}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'failed':>7}"
          f"{'server':>8}{'loadgen':>8}{'redis':>7}  load avg")
    print(f"{'':<40}{'':>7}{'':>8}{'':>8}{'':>8}{'':>7}{'CPU ms per request':>23}")
    for name, f in figures.items():
        redis_ms = "-" if f["redis_ms"] is None else f"{f['redis_ms']:.3f}"
        print(f"{name:<40}{f['rps']:>7.0f}{f['p50']:>8.1f}{f['p95']:>8.1f}{f['p99']:>8.1f}{f['failures']:>7}"
              f"{f['server_ms']:>8.3f}{f['generator_ms']:>8.3f}{redis_ms:>7}  {f['load'][0]:.1f} -> {f['load'][1]:.1f}")
        if f["failures"]:
            print(f"  statuses: {f['statuses']}")
    saturated, paced = (figures[k] for k in list(figures)[:2])
    per_hook = saturated["server_ms"] + (saturated["redis_ms"] or 0.0)
    with_generator = per_hook + saturated["generator_ms"]
    print(f"CPU per repeat-patient hook: server {saturated['server_ms']:.3f} ms + Redis "
          f"{saturated['redis_ms'] or 0.0:.3f} ms (+ load generator {saturated['generator_ms']:.3f} ms): two free "
          f"cores hold ~{2000 / with_generator:.0f} req/s with this load generator on them, "
          f"~{2000 / per_hook:.0f} req/s without")
    print(f"target >= 300 req/s (saturation): {'met' if saturated['rps'] >= 300 else 'NOT met'} here; "
          f"target p95 < 50 ms (paced at {args.rate:.0f}/s): {'met' if paced['p95'] < 50 else 'NOT met'} here")
    print(f"closed loop: latency = clients / throughput (Little's law): {args.concurrency} saturating clients "
          f"see ~{1000 * args.concurrency / saturated['rps']:.0f} ms at {saturated['rps']:.0f} req/s")


# --- in-process service time -------------------------------------------------------------------------

async def _asgi_call(app: Any, method: str, path: str, body: bytes, token: str | None) -> tuple[int, bytes]:
    """One request straight into the ASGI app: no server, no client library."""
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the app never needs a disconnect here
        raise AssertionError

    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    headers = [(b"host", b"cds.bench"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("cds.bench", 80)}
    await app(scope, receive, send)
    return answer["status"], answer["body"]


async def _cpu_per_call(calls: Sequence[Callable[[], Any]], rounds_of: int = 200) -> tuple[float, float]:
    """(min, median) over rounds of ``rounds_of`` calls of the CPU ms per call."""
    per_round = []
    for start in range(0, len(calls) - rounds_of + 1, rounds_of):
        cpu = time.process_time()
        for call in calls[start:start + rounds_of]:
            await call()
        per_round.append(1000 * (time.process_time() - cpu) / rounds_of)
    return min(per_round), statistics.median(per_round)


async def service_time(n: int) -> None:
    """CPU time of one cached-result hook, driven straight into the ASGI app (sequential calls)."""
    from app.log import configure_logging
    from app.main import create_app
    from app.settings import Settings
    from tests.api.fhir_data import DICOMWEB, FHIR_SERVER, STUDY_UID
    from tests.cds_hooks.client import CdsTestClient

    client = CdsTestClient(iss="https://ehr.bench.test/")
    base, path = "http://cds.bench", f"/cds-services/{SERVICE}"
    n = max(n, 400)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(public_base_url=base, cds_clients=[{"iss": client.iss, "jwks": client.jwks()}],
                            fhir_allowlist=[FHIR_SERVER], dicomweb_allowlist=[DICOMWEB], cache_dir=tmp,
                            analyzer="benchmarks.hook_latency:ANALYZER")
        configure_logging(settings.log_level, settings.log_json)  # as `mskcds serve` does: JSON lines, INFO
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            [first] = hook_bodies(1, distinct_patients=False)
            await _asgi_call(app, "POST", path, first, client.token(base + path))
            await app.state.runtime.analysis.wait_for(STUDY_UID, 60)
            print(f"signing {2 * n} JWTs ...", file=sys.stderr)
            runs = {"repeat patient": hook_bodies(n, distinct_patients=False),
                    "distinct patients": hook_bodies(n, distinct_patients=True)}
            signed = {name: [(body, client.token(base + path)) for body in bodies] for name, bodies in runs.items()}

            def hook_call(body: bytes, token: str) -> Callable[[], Any]:
                async def call() -> None:
                    status, answer = await _asgi_call(app, "POST", path, body, token)
                    assert status == 200 and answer.count(b'"summary"') == 3, answer[:500]
                return call

            async def health() -> None:
                await _asgi_call(app, "GET", "/health", b"", None)

            figures = {f"POST {path}, {name}": await _cpu_per_call([hook_call(*item) for item in items])
                       for name, items in signed.items()}
            figures["GET /health (framework floor)"] = await _cpu_per_call([health] * n)
    print(f"CPU per call, {n} sequential in-process calls per run (ASGI app driven directly; JWT ES384 verified, "
          "triage, OA + TKR risk, 3 cards, one JSON log line), min and median over rounds of 200:")
    for name, (low, median) in figures.items():
        print(f"  {name:<62} min {low:.3f} ms, median {median:.3f} ms")


if __name__ == "__main__":
    main()
