"""Measurement layer: a knee label map (+ echo series) -> biomarkers. No model, no torch, no network.

Imports only :mod:`schemas`, numpy and scipy (matplotlib lazily, for map pictures). The label map may be
on any grid; geometry always comes from the affines (RAS mm). Files are touched only by :mod:`.io`
(label maps in, maps out) and :mod:`.vtk` (another tool's mesh results, for comparisons); everything
else is pure functions of arrays.
"""

from app.measurement.knee import KneeMeasurement, measure, measure_knee

__all__ = ["KneeMeasurement", "measure", "measure_knee"]
