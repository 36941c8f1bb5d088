"""Real upstream servers for tests: Orthanc (+ DICOMweb plugin) and the FHIR server in tools/fhir-server.

Each server runs as its own process on a free loopback port, with its own temporary storage, and is
stopped when the test session ends. Nothing here fakes a server; faults a real server cannot produce on
demand live in :mod:`tests.integration.faults`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt

REPO_ROOT = Path(__file__).resolve().parents[2]
ORTHANC_BINARY = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
FHIR_SERVER_DIR = REPO_ROOT / "tools" / "fhir-server"
START_TIMEOUT_S = 60.0


class ServerUnavailable(RuntimeError):
    """A test server is not installed or did not start; the message says how to fix it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)  # a fault test may have paused it
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


@dataclass
class OrthancServer:
    """Orthanc 1.10 with its DICOMweb plugin, HTTP Basic authentication on and the DICOM port off."""

    workdir: Path
    user: str = "mskcds"
    password: str = "orthanc-test-password"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    def start(self) -> OrthancServer:
        for path in (ORTHANC_BINARY, DICOMWEB_PLUGIN):
            if not path.exists():
                raise ServerUnavailable(
                    f"{path} is missing: run `make test-servers` (installs Debian's orthanc and orthanc-dicomweb)"
                )
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "mskcds-test",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.user: self.password},
            "DicomServerEnabled": False,
            "DicomPort": free_port(),  # not listened on (DICOM server off); set so the default 4242 is never bound
            "HttpCompressionEnabled": True,
            "TcpNoDelay": True,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "StudiesMetadata": "Full"},
        }
        config_path = self.workdir / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=2))
        log = self.workdir / "orthanc.log"
        self.process = subprocess.Popen(
            [str(ORTHANC_BINARY), str(config_path)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerUnavailable(f"Orthanc exited with {self.process.returncode}:\n{_log_tail(log)}")
            try:
                if httpx.get(f"{self.url}/system", auth=self.auth, timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerUnavailable(f"Orthanc did not answer within {START_TIMEOUT_S} s:\n{_log_tail(log)}")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def upload(self, dicom_files: list[bytes]) -> None:
        """Store Part 10 files through Orthanc's own REST API (independent of the client under test)."""
        with httpx.Client(auth=self.auth, timeout=60.0) as client:
            for data in dicom_files:
                response = client.post(f"{self.url}/instances", content=data)
                response.raise_for_status()

    def clear(self) -> None:
        """Delete every patient (and so every study) stored."""
        with httpx.Client(auth=self.auth, timeout=60.0) as client:
            for patient in client.get(f"{self.url}/patients").json():
                client.delete(f"{self.url}/patients/{patient}").raise_for_status()


@dataclass
class FhirServer:
    """The FHIR R4 server of tools/fhir-server (Medplum's router, in memory), bearer-token authentication on."""

    workdir: Path
    secret: str = "fhir-test-signing-secret-of-32-bytes!"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir/R4"

    def token(self, lifetime_s: float = 3600.0, subject: str = "mskcds") -> str:
        """An HS256 bearer token the server accepts (expired already when ``lifetime_s`` <= 0)."""
        expires = datetime.now(UTC) + timedelta(seconds=lifetime_s)
        return jwt.encode({"sub": subject, "exp": int(expires.timestamp())}, self.secret, algorithm="HS256")

    def start(self) -> FhirServer:
        node = shutil.which("node")
        if node is None:
            raise ServerUnavailable("node is not on PATH: install Node.js >= 20.19 (the FHIR test server runs on it)")
        if not (FHIR_SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
            raise ServerUnavailable(f"{FHIR_SERVER_DIR}/node_modules is missing: run `make test-servers` (npm ci)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "fhir-server.log"
        self.process = subprocess.Popen(
            [node, str(FHIR_SERVER_DIR / "server.mjs"), "--port", str(self.port), "--secret", self.secret],
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
            cwd=FHIR_SERVER_DIR,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()  # "listening <port>" once ready (blocks until then)
        if not line.startswith("listening "):
            self.stop()
            raise ServerUnavailable(f"the FHIR test server did not start: {line!r}\n{_log_tail(log)}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def pause(self) -> None:
        """Stop the process (SIGSTOP): connections are accepted by the kernel, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
