"""A reader for legacy VTK polydata (``.vtk``): points and point data, ASCII or binary.

Enough of the format (VTK User's Guide, "Simple Legacy Formats") to read a surface mesh with per-point
values written by other knee tools (pymskt writes its thickness results this way): ``POINTS``, cell
sections that are skipped (``VERTICES``, ``LINES``, ``POLYGONS``, ``TRIANGLE_STRIPS``, both the classic
and the version 5 ``OFFSETS`` / ``CONNECTIVITY`` layout), and ``POINT_DATA`` attributes ``SCALARS`` and
``FIELD`` arrays. Binary data is big-endian, as the format prescribes. Array names are URL-decoded
(VTK writes ``thickness (mm)`` as ``thickness%20(mm)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from numpy.typing import NDArray

#: VTK type names -> big-endian numpy types.
_TYPES: dict[str, str] = {
    "bit": ">u1",
    "unsigned_char": ">u1",
    "char": ">i1",
    "unsigned_short": ">u2",
    "short": ">i2",
    "unsigned_int": ">u4",
    "int": ">i4",
    "unsigned_long": ">u8",
    "long": ">i8",
    "vtktypeint64": ">i8",
    "vtktypeuint64": ">u8",
    "vtkidtype": ">i8",
    "float": ">f4",
    "double": ">f8",
}
_CELL_SECTIONS = ("VERTICES", "LINES", "POLYGONS", "TRIANGLE_STRIPS")


class VtkFormatError(ValueError):
    """The file is not legacy VTK polydata this reader understands; the message says where."""


@dataclass(frozen=True)
class PolyData:
    """Mesh points (in the file's coordinates, mm) and named per-point arrays."""

    points: NDArray[np.float64]  # (n, 3)
    point_data: dict[str, NDArray[np.float64]]  # name -> (n,) or (n, components)


class _Stream:
    """Keyword lines and data blocks from a legacy VTK file, ASCII or binary."""

    def __init__(self, data: bytes, binary: bool, position: int) -> None:
        self.data, self.binary, self.position = data, binary, position

    def line(self) -> str | None:
        """The next non-empty line, or None at the end."""
        while self.position < len(self.data):
            end = self.data.find(b"\n", self.position)
            end = len(self.data) if end < 0 else end
            text = self.data[self.position : end].decode("ascii", errors="replace").strip()
            self.position = end + 1
            if text:
                return text
        return None

    def values(self, count: int, vtk_type: str) -> NDArray:
        dtype = _TYPES.get(vtk_type.lower())
        if dtype is None:
            raise VtkFormatError(f"unsupported VTK data type {vtk_type!r}")
        if self.binary:
            size = count * np.dtype(dtype).itemsize
            block = self.data[self.position : self.position + size]
            if len(block) < size:
                raise VtkFormatError(f"file ends inside a binary block of {count} {vtk_type} values")
            self.position += size
            return np.frombuffer(block, dtype=dtype).astype(np.float64 if dtype[1] == "f" else np.int64)
        tokens: list[bytes] = []
        while len(tokens) < count:
            end = self.data.find(b"\n", self.position)
            end = len(self.data) if end < 0 else end
            if self.position >= len(self.data):
                raise VtkFormatError(f"file ends after {len(tokens)} of {count} {vtk_type} values")
            tokens += self.data[self.position : end].split()
            self.position = end + 1
        if len(tokens) != count:
            raise VtkFormatError(f"expected {count} {vtk_type} values, a line holds {len(tokens) - count} extra")
        return np.array([float(t) for t in tokens])


def read_polydata(path: Path | str) -> PolyData:
    """Read the points and point data of a legacy VTK polydata file."""
    data = Path(path).read_bytes()
    header = data.split(b"\n", 4)
    if len(header) < 5 or not header[0].startswith(b"# vtk DataFile"):
        raise VtkFormatError(f"{path} is not a legacy VTK file (no '# vtk DataFile' header)")
    encoding = header[2].strip().upper()
    if encoding not in (b"ASCII", b"BINARY"):
        raise VtkFormatError(f"{path}: third line must be ASCII or BINARY, got {encoding.decode(errors='replace')!r}")
    if header[3].strip().upper() != b"DATASET POLYDATA":
        raise VtkFormatError(
            f"{path}: only DATASET POLYDATA is supported, got {header[3].strip().decode(errors='replace')!r}"
        )
    stream = _Stream(data, encoding == b"BINARY", sum(len(part) + 1 for part in header[:4]))
    points: NDArray[np.float64] | None = None
    point_data: dict[str, NDArray[np.float64]] = {}
    in_point_data = False
    while (line := stream.line()) is not None:
        words = line.split()
        keyword = words[0].upper()
        if keyword == "POINTS":
            points = stream.values(3 * int(words[1]), words[2]).reshape(-1, 3)
        elif keyword in _CELL_SECTIONS:
            _skip_cells(stream, int(words[1]), int(words[2]))
        elif keyword == "POINT_DATA":
            in_point_data = True
        elif keyword == "CELL_DATA":
            in_point_data = False
            break  # cell attributes are not needed; point data, if any, came before
        elif keyword == "SCALARS" and in_point_data:
            components = int(words[3]) if len(words) > 3 else 1
            lookup = stream.line()
            if lookup is None or not lookup.upper().startswith("LOOKUP_TABLE"):
                raise VtkFormatError(f"{path}: SCALARS {words[1]} is not followed by a LOOKUP_TABLE line")
            point_data[unquote(words[1])] = _shaped(
                stream.values(_count(points, path) * components, words[2]), components
            )
        elif keyword == "FIELD" and in_point_data:
            for _ in range(int(words[2])):
                array_line = stream.line()
                if array_line is None:
                    raise VtkFormatError(f"{path}: file ends inside FIELD {words[1]}")
                array_name, array_components, tuples, vtk_type = array_line.split()[:4]
                values = stream.values(int(array_components) * int(tuples), vtk_type)
                point_data[unquote(array_name)] = _shaped(values, int(array_components))
        elif keyword in ("METADATA", "INFORMATION", "NAME", "DATA"):
            continue  # VTK 5 metadata blocks: nothing to read for points and values
        elif in_point_data and keyword in ("VECTORS", "NORMALS", "TEXTURE_COORDINATES", "TENSORS", "COLOR_SCALARS"):
            raise VtkFormatError(f"{path}: point attribute {keyword} is not supported")
    return PolyData(_points(points, path), point_data)


def _skip_cells(stream: _Stream, cells: int, size: int) -> None:
    """Skip a cell section: classic ``n size`` + size values, or VTK 5 OFFSETS and CONNECTIVITY blocks."""
    position = stream.position
    following = stream.line()
    if following is not None and following.upper().startswith("OFFSETS"):
        stream.values(cells, following.split()[1])
        connectivity = stream.line()
        if connectivity is None or not connectivity.upper().startswith("CONNECTIVITY"):
            raise VtkFormatError("OFFSETS block without the CONNECTIVITY block after it")
        stream.values(size, connectivity.split()[1])
        return
    stream.position = position
    stream.values(size, "int")


def _shaped(values: NDArray, components: int) -> NDArray[np.float64]:
    return values if components == 1 else values.reshape(-1, components)


def _count(points: NDArray | None, path: Path | str) -> int:
    return len(_points(points, path))


def _points(points: NDArray | None, path: Path | str) -> NDArray[np.float64]:
    if points is None:
        raise VtkFormatError(f"{path} has no POINTS section")
    return points
