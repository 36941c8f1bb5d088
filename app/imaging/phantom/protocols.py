"""Acquisition protocols of the phantom: geometry, timing and image-quality parameters.

A :class:`ProtocolSpec` says everything needed to synthesise one acquisition and write it as DICOM.
The named defaults mimic the real exams this project must read:

- ``dess``: OAI-style sagittal 3D double-echo steady state, 160 x 384 x 384, 0.36 x 0.36 x 0.7 mm,
  both echoes in one series (EchoNumbers 1 and 2, TE2 = 2 TR - TE1 as scanners report it);
- ``t2-mese``: OAI-style 2D multi-echo spin echo, 7 echoes (10-70 ms) in ONE series, 3 mm slices
  with a 0.5 mm gap;
- ``t1rho-cubequant``: GE CubeQuant-style 3D fast spin echo with spin-lock preparation, one series per
  spin-lock time (1, 10, 30, 60 ms, stored in EchoTime as GE does) sharing one SeriesNumber,
  3 mm slices reconstructed every 1.5 mm.

``*-small`` variants are the same acquisitions at low resolution, for tests.

Overrides on the command line (``--protocol``) use ``NAME[:key=value,...]``; lists are separated by
``/``, e.g. ``dess:matrix=256,slices=96,noise=0.02`` or ``t2-mese:te=8/16/24/32/40/48``. A path to a
JSON file holding one ProtocolSpec object (or a list of them) is accepted too.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SignalModel = Literal["dess", "mese", "t1rho"]


class ProtocolSpec(BaseModel):
    """One acquisition: sagittal grid, sequence timing, image-quality degradations, DICOM identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    signal_model: SignalModel
    series_description: str
    series_number: int = Field(ge=1)
    mr_acquisition_type: Literal["2D", "3D"]
    scanning_sequence: str = Field(description="DICOM (0018,0020), e.g. GR, SE")
    sequence_variant: str = Field(description="DICOM (0018,0021), e.g. SS, SK, MP")
    scan_options: str = Field(default="", description="DICOM (0018,0022), e.g. FS")
    # --- geometry -------------------------------------------------------------------------------
    matrix: int = Field(ge=16, le=1024, description="rows = columns")
    pixel_mm: float = Field(gt=0.05, le=5.0)
    slices: int = Field(ge=1, le=1024)
    slice_thickness_mm: float = Field(gt=0.05, le=20.0)
    slice_spacing_mm: float = Field(gt=0.05, le=30.0, description="centre to centre; > thickness leaves a gap")
    # --- timing ---------------------------------------------------------------------------------
    echo_times_ms: tuple[float, ...] = Field(min_length=1)
    repetition_time_ms: float = Field(gt=0)
    flip_angle_deg: float = Field(gt=0, le=180)
    spin_lock_times_ms: tuple[float, ...] = Field(default=(), description="T1rho only; written as EchoTime")
    separate_series: bool = Field(default=False, description="one series per time point, shared SeriesNumber")
    # --- image quality --------------------------------------------------------------------------
    noise: float = Field(default=0.02, ge=0, le=1, description="Rician sigma relative to fluid's first-echo signal")
    bias: float = Field(default=0.2, ge=0, le=0.9, description="coil sensitivity: relative drop across the FOV")
    blur: float = Field(default=0.6, ge=0, le=10, description="Gaussian sigma (pixels) along phase encoding")
    fat_suppression: float = Field(default=0.0, ge=0, le=1, description="fraction of fat signal removed")
    partial_volume_samples: int = Field(default=0, ge=0, le=8, description="samples through a slice; 0 = auto")

    @model_validator(mode="after")
    def _consistent(self) -> ProtocolSpec:
        for label, times in (("echo_times_ms", self.echo_times_ms), ("spin_lock_times_ms", self.spin_lock_times_ms)):
            if any(t < 0 for t in times) or any(b <= a for a, b in itertools.pairwise(times)):
                raise ValueError(f"{self.name}: {label} must be non-negative and strictly increasing, got {times}")
        if self.signal_model == "dess" and len(self.echo_times_ms) != 2:
            raise ValueError(f"{self.name}: a DESS acquisition has exactly two echoes, got {self.echo_times_ms}")
        if self.signal_model == "mese" and len(self.echo_times_ms) < 2:
            raise ValueError(f"{self.name}: a multi-echo spin echo needs at least two echoes")
        if self.signal_model == "t1rho":
            if len(self.spin_lock_times_ms) < 2:
                raise ValueError(f"{self.name}: a T1rho acquisition needs at least two spin-lock times")
            if len(self.echo_times_ms) != 1:
                raise ValueError(f"{self.name}: T1rho has one readout echo time, got {self.echo_times_ms}")
        elif self.spin_lock_times_ms:
            raise ValueError(f"{self.name}: spin_lock_times_ms only applies to signal_model 't1rho'")
        if max(self.echo_times_ms) >= self.repetition_time_ms and self.signal_model != "dess":
            raise ValueError(f"{self.name}: echo times must be shorter than TR ({self.repetition_time_ms} ms)")
        return self

    @property
    def times_ms(self) -> tuple[float, ...]:
        """The times that distinguish the volumes: spin-lock times for T1rho, echo times otherwise."""
        return self.spin_lock_times_ms if self.signal_model == "t1rho" else self.echo_times_ms

    @property
    def fov_mm(self) -> float:
        return self.matrix * self.pixel_mm


_DESS = ProtocolSpec(
    name="dess",
    signal_model="dess",
    series_description="SAG 3D DESS WE",
    series_number=3,
    mr_acquisition_type="3D",
    scanning_sequence="GR",
    sequence_variant="SS",
    matrix=384,
    pixel_mm=0.3646,
    slices=160,
    slice_thickness_mm=0.7,
    slice_spacing_mm=0.7,
    echo_times_ms=(4.7, 27.9),
    repetition_time_ms=16.3,
    flip_angle_deg=25.0,
    noise=0.02,
    bias=0.2,
    blur=0.6,
    fat_suppression=0.9,  # water excitation
)
_T2 = ProtocolSpec(
    name="t2-mese",
    signal_model="mese",
    series_description="SAG T2 MAP MESE",
    series_number=5,
    mr_acquisition_type="2D",
    scanning_sequence="SE",
    sequence_variant="SK",
    matrix=384,
    pixel_mm=0.3125,
    slices=27,
    slice_thickness_mm=3.0,
    slice_spacing_mm=3.5,
    echo_times_ms=(10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0),
    repetition_time_ms=2700.0,
    flip_angle_deg=90.0,
    noise=0.015,
    bias=0.2,
    blur=0.5,
)
_T1RHO = ProtocolSpec(
    name="t1rho-cubequant",
    signal_model="t1rho",
    series_description="SAG CUBEQUANT T1RHO",
    series_number=7,
    mr_acquisition_type="3D",
    scanning_sequence="SE",
    sequence_variant="SK\\MP",
    scan_options="FS",
    matrix=320,
    pixel_mm=0.4375,
    slices=56,
    slice_thickness_mm=3.0,
    slice_spacing_mm=1.5,
    echo_times_ms=(12.0,),
    repetition_time_ms=1302.0,
    flip_angle_deg=90.0,
    spin_lock_times_ms=(1.0, 10.0, 30.0, 60.0),
    separate_series=True,
    noise=0.015,
    bias=0.25,
    blur=0.8,
    fat_suppression=0.85,
)


def _small(spec: ProtocolSpec, **changes: object) -> ProtocolSpec:
    return spec.model_copy(update={"name": f"{spec.name}-small", **changes})


#: Named protocols; the first three are the default study.
PROTOCOLS: dict[str, ProtocolSpec] = {
    spec.name: spec
    for spec in (
        _DESS,
        _T2,
        _T1RHO,
        _small(_DESS, matrix=96, pixel_mm=1.4, slices=40, slice_thickness_mm=2.8, slice_spacing_mm=2.8, blur=0.3),
        _small(_T2, matrix=80, pixel_mm=1.6, slices=10, slice_thickness_mm=4.0, slice_spacing_mm=10.0, blur=0.3),
        _small(_T1RHO, matrix=64, pixel_mm=2.0, slices=14, slice_thickness_mm=6.0, slice_spacing_mm=6.0, blur=0.3),
    )
}
DEFAULT_PROTOCOLS: tuple[str, ...] = ("dess", "t2-mese", "t1rho-cubequant")
SMALL_PROTOCOLS: tuple[str, ...] = ("dess-small", "t2-mese-small", "t1rho-cubequant-small")

#: Short keys of the override syntax -> ProtocolSpec fields.
OVERRIDE_KEYS: dict[str, str] = {
    "matrix": "matrix",
    "pixel": "pixel_mm",
    "slices": "slices",
    "thickness": "slice_thickness_mm",
    "spacing": "slice_spacing_mm",
    "te": "echo_times_ms",
    "tr": "repetition_time_ms",
    "flip": "flip_angle_deg",
    "tsl": "spin_lock_times_ms",
    "noise": "noise",
    "bias": "bias",
    "blur": "blur",
    "fs": "fat_suppression",
    "series": "series_number",
    "description": "series_description",
    "name": "name",
}
_LIST_FIELDS = {"echo_times_ms", "spin_lock_times_ms"}


class ProtocolError(ValueError):
    """A protocol name, override or file that cannot be used; the message says how to write it."""


def parse_protocol(text: str) -> ProtocolSpec:
    """``NAME``, ``NAME:key=value,...`` or the path of a JSON file holding one ProtocolSpec."""
    if text.endswith(".json"):
        specs = load_protocol_file(Path(text))
        if len(specs) != 1:
            raise ProtocolError(f"{text} holds {len(specs)} protocols; pass it where a list is accepted")
        return specs[0]
    name, _, overrides = text.partition(":")
    if name not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)} (or a .json file)")
    update: dict[str, object] = {}
    for item in filter(None, overrides.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in OVERRIDE_KEYS:
            raise ProtocolError(
                f"bad protocol override {item!r} in {text!r}; write key=value with key one of: "
                f"{', '.join(OVERRIDE_KEYS)}"
            )
        field = OVERRIDE_KEYS[key.strip()]
        update[field] = tuple(v for v in value.split("/") if v) if field in _LIST_FIELDS else value.strip()
    try:
        return ProtocolSpec.model_validate({**PROTOCOLS[name].model_dump(), **update})
    except ValidationError as error:
        raise ProtocolError(f"protocol {text!r}: {_first_error(error)}") from None


def load_protocol_file(path: Path) -> list[ProtocolSpec]:
    """ProtocolSpec objects from a JSON file (one object or a list)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ProtocolError(f"cannot read protocol file {path}: {error}") from None
    items = raw if isinstance(raw, list) else [raw]
    try:
        return [ProtocolSpec.model_validate(item) for item in items]
    except ValidationError as error:
        raise ProtocolError(f"protocol file {path}: {_first_error(error)}") from None


def resolve_protocols(
    protocols: list[ProtocolSpec | str] | tuple[ProtocolSpec | str, ...] | None,
) -> list[ProtocolSpec]:
    """Specs for ``generate_phantom``: defaults when None; names, override strings and files expanded."""
    items = list(DEFAULT_PROTOCOLS) if protocols is None else list(protocols)
    specs: list[ProtocolSpec] = []
    for item in items:
        if isinstance(item, ProtocolSpec):
            specs.append(item)
        elif item.endswith(".json"):
            specs.extend(load_protocol_file(Path(item)))
        else:
            specs.append(parse_protocol(item))
    if not specs:
        raise ProtocolError("at least one protocol is needed")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ProtocolError(f"protocol names must be unique in one study, got {names}; rename with name=...")
    numbers = [spec.series_number for spec in specs]
    if len(set(numbers)) != len(numbers):
        raise ProtocolError(f"series numbers must be unique in one study, got {numbers}; change with series=...")
    return specs


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]
