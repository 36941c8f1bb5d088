"""Protocol specs: named defaults, the override syntax, JSON files, and their error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.imaging.phantom import PROTOCOLS, ProtocolError, parse_protocol
from app.imaging.phantom.protocols import resolve_protocols


def test_defaults_mimic_the_real_exams() -> None:
    dess, t2, t1rho = (PROTOCOLS[n] for n in ("dess", "t2-mese", "t1rho-cubequant"))
    assert (dess.slices, dess.matrix, dess.mr_acquisition_type, len(dess.echo_times_ms)) == (160, 384, "3D", 2)
    assert dess.echo_times_ms[1] == pytest.approx(2 * dess.repetition_time_ms - dess.echo_times_ms[0])
    assert len(t2.echo_times_ms) >= 6 and t2.mr_acquisition_type == "2D" and t2.slice_spacing_mm > t2.slice_thickness_mm
    assert t1rho.spin_lock_times_ms == (1.0, 10.0, 30.0, 60.0) and t1rho.separate_series
    assert t1rho.times_ms == t1rho.spin_lock_times_ms and dess.times_ms == dess.echo_times_ms


def test_override_syntax() -> None:
    spec = parse_protocol("dess:matrix=256,slices=96,noise=0.02")
    assert (spec.matrix, spec.slices, spec.noise, spec.pixel_mm) == (256, 96, 0.02, PROTOCOLS["dess"].pixel_mm)
    assert parse_protocol("t2-mese:te=8/16/24/32/40/48").echo_times_ms == (8, 16, 24, 32, 40, 48)
    assert parse_protocol("t1rho-cubequant:tsl=0/20/40,name=t1rho-b,series=9").spin_lock_times_ms == (0, 20, 40)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flair", "unknown protocol 'flair'; known: dess, t2-mese, t1rho-cubequant"),
        (
            "dess:matrx=256",
            "bad protocol override 'matrx=256' in 'dess:matrx=256'; write key=value with key one of: matrix",
        ),
        ("dess:matrix=big", "protocol 'dess:matrix=big': matrix: Input should be a valid integer"),
        ("dess:te=5/10/15", "dess: a DESS acquisition has exactly two echoes"),
        ("t2-mese:te=30/20", "echo_times_ms must be non-negative and strictly increasing"),
        ("t2-mese:tr=20", "t2-mese: echo times must be shorter than TR (20.0 ms)"),
    ],
)
def test_bad_protocols_are_refused_with_a_message(text: str, message: str) -> None:
    with pytest.raises(ProtocolError) as error:
        parse_protocol(text)
    assert message in str(error.value)


def test_json_protocol_files(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    custom = PROTOCOLS["dess-small"].model_copy(update={"name": "my-dess", "noise": 0.05})
    path.write_text(custom.model_dump_json())
    assert parse_protocol(str(path)) == custom
    both = tmp_path / "both.json"
    both.write_text(json.dumps([custom.model_dump(mode="json"), PROTOCOLS["t2-mese-small"].model_dump(mode="json")]))
    assert [s.name for s in resolve_protocols([str(both)])] == ["my-dess", "t2-mese-small"]
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x"}')
    with pytest.raises(ProtocolError, match=r"protocol file .*broken\.json: signal_model: Field required"):
        resolve_protocols([str(broken)])


def test_a_study_needs_unique_names_and_series_numbers() -> None:
    with pytest.raises(ProtocolError, match=r"protocol names must be unique in one study, got \['dess', 'dess'\]"):
        resolve_protocols(["dess", "dess"])
    with pytest.raises(ProtocolError, match=r"series numbers must be unique in one study, got \[3, 3\]"):
        resolve_protocols(["dess", "dess:name=dess-b"])
