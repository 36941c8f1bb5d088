"""The demo, start to end: a phantom knee study, the service on its embedded default, an EHR calling it.

1. a phantom knee MRI study is generated once into the cache (DICOM files + exact truth);
2. the service starts with SQLite and its in-process worker, JWT verification on (the demo EHR's key
   is configured out-of-band), and a read-only DICOMweb service over the study;
3. the demo EHR fires ``order-sign`` for a knee MRI order: the study is not analysed yet, so the
   answer is the "analysis in progress" card and the study is queued;
4. the worker fetches the study through the DICOMweb client, segments, measures and triages it; the EHR
   calls again until the triage and risk cards arrive, and they are printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pydicom

from app.demo.ehr import DemoEhr
from app.demo.patient import order_sign_request, prefetch
from app.imaging.phantom import generate_phantom, write_phantom

ORDER_SIGN_SERVICE = "mskcds-knee-order-sign"
DICOMWEB_PATH = "/demo/dicomweb"
#: The demo study: a right knee with moderate osteoarthritis (grade 3), DESS + T2 mapping.
PHANTOM_SEED, PHANTOM_SIDE, PHANTOM_GRADE, PHANTOM_PROTOCOLS = 7, "right", 3, ("dess", "t2-mese")


@dataclass(frozen=True)
class DemoStudy:
    folder: Path
    study_instance_uid: str
    study_date: date


def prepare_study(cache_dir: Path) -> DemoStudy:
    """The demo's phantom study, generated on first use and kept in ``cache_dir/demo-study``."""
    folder = cache_dir / "demo-study"
    truth = folder / "truth.json"
    if not truth.exists():
        phantom = generate_phantom(PHANTOM_SEED, PHANTOM_SIDE, PHANTOM_GRADE, PHANTOM_PROTOCOLS)
        staging = folder.with_name("demo-study.partial")
        write_phantom(phantom, staging, preview=True)
        staging.rename(folder)
    first = next(p for p in sorted(folder.rglob("*.dcm")))
    header = pydicom.dcmread(first, stop_before_pixels=True)
    study_date = date.fromisoformat(f"{header.StudyDate[:4]}-{header.StudyDate[4:6]}-{header.StudyDate[6:]}")
    return DemoStudy(folder=folder, study_instance_uid=str(header.StudyInstanceUID), study_date=study_date)


@dataclass
class HookCall:
    """What one hook call returned."""

    status: int
    cards: list[dict[str, Any]]

    @property
    def analysed(self) -> bool:
        """The triage card arrived (the in-progress card mentions triage too, so match its summary's start)."""
        return any(card.get("summary", "").startswith("Knee MRI triage:") for card in self.cards)

    @property
    def pending(self) -> bool:
        """The study is still queued or being analysed."""
        return any(card.get("summary", "").startswith("Knee MRI analysis in progress") for card in self.cards)


class DemoEhrClient:
    """Calls the service as the demo EHR: signed JWT, order-sign for the demo patient's knee MRI."""

    def __init__(self, base_url: str, ehr: DemoEhr, study: DemoStudy) -> None:
        self.base_url = base_url
        self.ehr = ehr
        self.prefetch = prefetch(study.study_instance_uid, study.study_date, base_url + DICOMWEB_PATH)

    def order_sign(self) -> HookCall:
        url = f"{self.base_url}/cds-services/{ORDER_SIGN_SERVICE}"
        response = httpx.post(url, json=order_sign_request(self.prefetch), timeout=30,
                              headers={"Authorization": f"Bearer {self.ehr.token(url)}"})
        body = response.json()
        return HookCall(status=response.status_code, cards=body.get("cards", []) if response.is_success else [body])

    def until_analysed(self, timeout_s: float, every_s: float, on_wait: Callable[[float], None]) -> HookCall:
        """Call again every ``every_s`` seconds until the analysis is no longer pending (or ``timeout_s`` passes)."""
        start = time.monotonic()
        while True:
            call = self.order_sign()
            if not call.pending or call.status != 200 or time.monotonic() - start > timeout_s:
                return call
            on_wait(time.monotonic() - start)
            time.sleep(every_s)
