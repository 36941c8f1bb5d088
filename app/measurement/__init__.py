"""Measurement layer: a knee label map (+ echo series) -> biomarkers. Pure: no I/O, no model, no torch.

Imports only :mod:`schemas`, numpy and scipy (matplotlib lazily, for map pictures). The label map may be
on any grid; geometry always comes from the affines (RAS mm).
"""

from app.measurement.knee import KneeMeasurement, measure, measure_knee

__all__ = ["KneeMeasurement", "measure", "measure_knee"]
