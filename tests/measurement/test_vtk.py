"""Legacy VTK polydata: files written here in each layout are read back exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.measurement.vtk import VtkFormatError, read_polydata

POINTS = np.array([[0.0, 0.0, 0.0], [1.5, 0.0, -2.25], [0.0, 3.125, 1.0], [-4.0, 5.5, 6.75]])
THICKNESS = np.array([0.0, 2.25, 1.5, 3.75])
REGION = np.array([0, 1, 1, 3])


def ascii_file(version: str = "4.2") -> bytes:
    lines = [f"# vtk DataFile Version {version}", "written by the test", "ASCII", "DATASET POLYDATA"]
    lines += [
        f"POINTS {len(POINTS)} double",
        " ".join(f"{v:g}" for v in POINTS[:2].ravel()),
        " ".join(f"{v:g}" for v in POINTS[2:].ravel()),
    ]
    if version.startswith("5"):
        lines += ["POLYGONS 3 6", "OFFSETS vtktypeint64", "0 3 6", "CONNECTIVITY vtktypeint64", "0 1 2 1 2 3"]
    else:
        lines += ["POLYGONS 2 8", "3 0 1 2", "3 1 2 3"]
    lines += ["", f"POINT_DATA {len(POINTS)}", "SCALARS thickness%20(mm) double 1", "LOOKUP_TABLE default"]
    lines += [" ".join(f"{v:g}" for v in THICKNESS)]
    lines += ["FIELD FieldData 1", f"cartilage_region 1 {len(POINTS)} int", " ".join(str(v) for v in REGION)]
    return ("\n".join(lines) + "\n").encode()


def binary_file() -> bytes:
    head = b"# vtk DataFile Version 3.0\nbinary\nBINARY\nDATASET POLYDATA\n"
    body = f"POINTS {len(POINTS)} float\n".encode() + POINTS.astype(">f4").tobytes() + b"\n"
    body += b"POLYGONS 2 8\n" + np.array([3, 0, 1, 2, 3, 1, 2, 3], dtype=">i4").tobytes() + b"\n"
    body += f"POINT_DATA {len(POINTS)}\nSCALARS thickness%20(mm) double\nLOOKUP_TABLE default\n".encode()
    body += THICKNESS.astype(">f8").tobytes() + b"\n"
    body += f"FIELD FieldData 1\ncartilage_region 1 {len(POINTS)} vtktypeint64\n".encode()
    body += REGION.astype(">i8").tobytes() + b"\n"
    return head + body


@pytest.mark.parametrize(
    "content", [ascii_file("4.2"), ascii_file("5.1"), binary_file()], ids=["ascii", "ascii-v5", "binary"]
)
def test_points_and_point_data_read_back(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mesh.vtk"
    path.write_bytes(content)
    mesh = read_polydata(path)
    np.testing.assert_allclose(mesh.points, POINTS, rtol=1e-6)
    assert set(mesh.point_data) == {"thickness (mm)", "cartilage_region"}
    np.testing.assert_array_equal(mesh.point_data["thickness (mm)"], THICKNESS)
    np.testing.assert_array_equal(mesh.point_data["cartilage_region"], REGION)


def test_non_polydata_and_truncated_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "grid.vtk"
    path.write_bytes(b"# vtk DataFile Version 4.2\nx\nASCII\nDATASET STRUCTURED_POINTS\n")
    with pytest.raises(VtkFormatError, match="only DATASET POLYDATA is supported, got 'DATASET STRUCTURED_POINTS'"):
        read_polydata(path)
    path.write_bytes(binary_file()[:-20])
    with pytest.raises(VtkFormatError, match="file ends inside a binary block of 4 vtktypeint64 values"):
        read_polydata(path)
    path.write_bytes(b"not vtk at all\n\n\n\n")
    with pytest.raises(VtkFormatError, match="is not a legacy VTK file"):
        read_polydata(path)
