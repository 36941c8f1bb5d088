"""Label map (+ echo series) -> the knee's biomarkers: the measurement layer's entry point.

:func:`measure` is the contract every other layer uses (a :class:`~schemas.biomarkers.BiomarkerSet`);
:func:`measure_knee` returns the same biomarkers with what they were computed from (per-point
thickness, regions, relaxation maps, fit reports, notes on what could not be measured), which the CLI
uses for maps and reports.

Biomarkers per region (names from :mod:`schemas.biomarkers`):

- cartilage plates and their aggregates and subregions: thickness mean / median / 5th percentile /
  max over the total subchondral bone area tAB (denuded bone counts as 0 mm, percentiles and mean are
  area-weighted), ``cartilage_surface_area`` = tAB in mm^2, ``denuded_area_pct`` = denuded share of tAB,
  ``cartilage_volume`` (voxels; a region's voxels are those whose nearest tAB point lies in it);
- ``MFTC`` / ``LFTC`` (MT + cMF, LT + cLF), as in OAI Chondrometrics reports: thickness mean is the *sum*
  of the two plates' means (cartilage in the joint space), volume and area are sums;
- bones ``femur`` / ``tibia`` / ``patella``: ``bone_volume`` (within the field of view);
- menisci ``MM`` / ``LM``: volume, mean thickness, extrusion (:mod:`app.measurement.menisci`);
- with echo series: ``t2_mean`` / ``t2_sd`` and ``t1rho_mean`` / ``t1rho_sd`` over the voxels of the
  series that are at least 90 % cartilage by volume (:func:`pure_cartilage`), with the label map
  resampled onto the series' grid through the affines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from app.measurement.geometry import check_orthogonal, label_fractions, resample_nearest, to_world
from app.measurement.menisci import meniscus_extrusion_mm, meniscus_thickness_mm, meniscus_volume_mm3
from app.measurement.regions import (
    KneeFrame,
    RegionError,
    femoral_plates,
    femoral_subregions,
    knee_frame,
    tibial_subregions,
)
from app.measurement.relaxometry import (
    T1RHO_RANGE_MS,
    T2_RANGE_MS,
    RelaxationMap,
    relaxation_map,
)
from app.measurement.statistics import weighted_mean, weighted_percentile
from app.measurement.thickness import PlateThickness, ThicknessMethod, plate_thickness
from schemas.biomarkers import Biomarker, BiomarkerName, BiomarkerSet, Laterality, LateralitySource
from schemas.labels import CARTILAGE, CARTILAGE_BONE, Label
from schemas.volume import EchoSeries, Volume

#: The plate (Eckstein name) each cartilage label is, before subdivision.
PLATE_OF_LABEL: dict[Label, str] = {
    Label.FEMORAL_CARTILAGE: "F",
    Label.MEDIAL_TIBIAL_CARTILAGE: "MT",
    Label.LATERAL_TIBIAL_CARTILAGE: "LT",
    Label.PATELLAR_CARTILAGE: "P",
}
BONE_REGION: dict[Label, str] = {Label.FEMUR: "femur", Label.TIBIA: "tibia", Label.PATELLA: "patella"}
MENISCUS_REGION: dict[Label, str] = {Label.MEDIAL_MENISCUS: "MM", Label.LATERAL_MENISCUS: "LM"}
#: Femorotibial compartments: the plates whose thicknesses add up.
COMPARTMENTS: dict[str, tuple[str, str]] = {"MFTC": ("MT", "cMF"), "LFTC": ("LT", "cLF")}
#: Share of a relaxometry voxel's volume that must be one cartilage plate for the voxel to count.
PURE_FRACTION = 0.9
#: A relaxation time is reported for a region only with at least this many valid voxels.
MIN_RELAXOMETRY_VOXELS = 10


@dataclass(frozen=True)
class PlateRegions:
    """One cartilage label's thickness with the Eckstein region of every tAB point."""

    cartilage: Label
    thickness: PlateThickness
    plate: NDArray[np.str_]  # per point: "MT", "LT", "P", "TrF", "cMF", "cLF", "pMF" or "pLF"
    subregion: NDArray[np.str_]  # per point: e.g. "cMT", "icMF"; "" where the plate has none

    def masks(self) -> Iterator[tuple[str, NDArray[np.bool_]]]:
        """``(region name, point mask)`` for every region this plate contributes to."""
        everything = np.ones(len(self.plate), dtype=bool)
        if self.cartilage != Label.FEMORAL_CARTILAGE:
            yield PLATE_OF_LABEL[self.cartilage], everything
        else:
            yield "F", everything
            yield "MF", np.isin(self.plate, ("cMF", "pMF"))
            yield "LF", np.isin(self.plate, ("cLF", "pLF"))
            for name in ("cMF", "cLF", "TrF"):
                yield name, self.plate == name
        for name in np.unique(self.subregion[self.subregion != ""]):
            yield str(name), self.subregion == name


@dataclass(frozen=True)
class KneeMeasurement:
    """Biomarkers of one knee and what they were computed from."""

    biomarkers: BiomarkerSet
    frame: KneeFrame | None
    plates: dict[Label, PlateRegions]
    relaxation: dict[str, RelaxationMap]  # "t2", "t1rho"
    notes: tuple[str, ...]  # what could not be measured, and why


def measure(
    labels: Volume,
    laterality: Laterality,
    laterality_source: LateralitySource,
    *,
    t2: EchoSeries | None = None,
    t1rho: EchoSeries | None = None,
) -> BiomarkerSet:
    """The knee's biomarkers from a label map in the msk-cds convention (+ optional echo series)."""
    return measure_knee(labels, laterality, laterality_source, t2=t2, t1rho=t1rho).biomarkers


def measure_knee(
    labels: Volume,
    laterality: Laterality,
    laterality_source: LateralitySource,
    *,
    t2: EchoSeries | None = None,
    t1rho: EchoSeries | None = None,
    thickness_method: ThicknessMethod = "normal",
) -> KneeMeasurement:
    """Like :func:`measure`, keeping per-point thickness, regions and relaxation maps."""
    check_orthogonal(labels)
    notes: list[str] = []
    frame: KneeFrame | None = None
    if (labels.array == Label.FEMORAL_CARTILAGE).any():
        try:
            frame = knee_frame(labels, laterality)
        except RegionError as error:
            notes.append(f"femoral regions not measured: {error}")
    plates = _plates(labels, laterality, frame, thickness_method, notes)
    biomarkers = [*_morphology(labels, plates), *_bones_and_menisci(labels, laterality)]
    relaxation: dict[str, RelaxationMap] = {}
    for key, series, valid_range, names in (
        ("t2", t2, T2_RANGE_MS, (BiomarkerName.T2_MEAN, BiomarkerName.T2_SD)),
        ("t1rho", t1rho, T1RHO_RANGE_MS, (BiomarkerName.T1RHO_MEAN, BiomarkerName.T1RHO_SD)),
    ):
        if series is not None:
            fitted, regional = _relaxometry(labels, series, valid_range, plates, names, notes)
            relaxation[key] = fitted
            biomarkers.extend(regional)
    result = BiomarkerSet(laterality=laterality, laterality_source=laterality_source, biomarkers=biomarkers)
    return KneeMeasurement(result, frame, plates, relaxation, tuple(notes))


def _plates(
    labels: Volume, laterality: Laterality, frame: KneeFrame | None, method: ThicknessMethod, notes: list[str]
) -> dict[Label, PlateRegions]:
    plates: dict[Label, PlateRegions] = {}
    for cartilage, bone in CARTILAGE_BONE.items():
        if not (labels.array == cartilage).any():
            continue
        thickness = plate_thickness(labels, cartilage, bone, method)
        if thickness is None:
            notes.append(f"{cartilage.display_name} thickness not measured: no {bone.display_name} surface under it")
            continue
        xyz = thickness.bone_surface.xyz
        subregion = np.full(len(xyz), "", dtype="<U4")
        if cartilage == Label.FEMORAL_CARTILAGE and frame is None:
            plate = np.full(len(xyz), "F", dtype="<U3")  # no landmarks (noted): the whole plate only
        elif cartilage == Label.FEMORAL_CARTILAGE and frame is not None:
            plate = femoral_plates(xyz, frame)
            for name in ("cMF", "cLF"):
                central = plate == name
                if central.any():
                    subregion[central] = np.char.add(femoral_subregions(xyz[central], frame), name)
        else:
            name = PLATE_OF_LABEL[cartilage]
            plate = np.full(len(xyz), name, dtype="<U3")
            if cartilage in (Label.MEDIAL_TIBIAL_CARTILAGE, Label.LATERAL_TIBIAL_CARTILAGE):
                medial = cartilage == Label.MEDIAL_TIBIAL_CARTILAGE
                sub = tibial_subregions(xyz, thickness.bone_surface.area_mm2, laterality, medial)
                subregion = np.char.add(sub, name)
        plates[cartilage] = PlateRegions(cartilage, thickness, plate, subregion)
    return plates


def _region_of_voxels(plate: PlateRegions, xyz: NDArray[np.float64]) -> Iterator[tuple[str, NDArray[np.bool_]]]:
    """Regions of points off the bone surface (cartilage voxels): those of their nearest tAB point."""
    nearest = cKDTree(plate.thickness.bone_surface.xyz).query(xyz, workers=-1)[1]
    projected = PlateRegions(plate.cartilage, plate.thickness, plate.plate[nearest], plate.subregion[nearest])
    yield from projected.masks()


def _morphology(labels: Volume, plates: dict[Label, PlateRegions]) -> list[Biomarker]:
    out: list[Biomarker] = []
    means: dict[str, float] = {}
    volumes: dict[str, float] = {}
    areas: dict[str, tuple[float, float]] = {}
    for cartilage in sorted(CARTILAGE):
        voxels = np.argwhere(labels.array == cartilage)
        if not len(voxels):
            continue
        if cartilage not in plates:
            name = PLATE_OF_LABEL[cartilage]
            volumes[name] = len(voxels) * labels.voxel_volume_mm3
            out.append(Biomarker.of(BiomarkerName.CARTILAGE_VOLUME, name, round(volumes[name], 1)))
            continue
        plate = plates[cartilage]
        thickness = plate.thickness.thickness_mm
        area = plate.thickness.bone_surface.area_mm2
        voxel_regions = dict(_region_of_voxels(plate, to_world(labels.affine, voxels)))
        for name, mask in plate.masks():
            if not mask.any():
                continue
            values, weights = thickness[mask], area[mask]
            denuded = float(weights[plate.thickness.denuded[mask]].sum())
            means[name] = weighted_mean(values, weights)
            volumes[name] = float(voxel_regions[name].sum()) * labels.voxel_volume_mm3 if name in voxel_regions else 0.0
            areas[name] = (float(weights.sum()), denuded)
            out += [
                Biomarker.of(BiomarkerName.CARTILAGE_THICKNESS_MEAN, name, round(means[name], 3)),
                Biomarker.of(
                    BiomarkerName.CARTILAGE_THICKNESS_MEDIAN, name, round(weighted_percentile(values, weights, 50), 3)
                ),
                Biomarker.of(
                    BiomarkerName.CARTILAGE_THICKNESS_P5, name, round(weighted_percentile(values, weights, 5), 3)
                ),
                Biomarker.of(BiomarkerName.CARTILAGE_THICKNESS_MAX, name, round(float(values.max()), 3)),
                Biomarker.of(BiomarkerName.CARTILAGE_VOLUME, name, round(volumes[name], 1)),
                Biomarker.of(BiomarkerName.CARTILAGE_SURFACE_AREA, name, round(areas[name][0], 1)),
                Biomarker.of(BiomarkerName.DENUDED_AREA_PCT, name, round(100 * denuded / weights.sum(), 2)),
            ]
    for compartment, parts in COMPARTMENTS.items():
        if all(part in means for part in parts):
            total_area = sum(areas[part][0] for part in parts)
            total_denuded = sum(areas[part][1] for part in parts)
            out += [
                Biomarker.of(
                    BiomarkerName.CARTILAGE_THICKNESS_MEAN, compartment, round(sum(means[p] for p in parts), 3)
                ),
                Biomarker.of(BiomarkerName.CARTILAGE_VOLUME, compartment, round(sum(volumes[p] for p in parts), 1)),
                Biomarker.of(BiomarkerName.CARTILAGE_SURFACE_AREA, compartment, round(total_area, 1)),
                Biomarker.of(BiomarkerName.DENUDED_AREA_PCT, compartment, round(100 * total_denuded / total_area, 2)),
            ]
    return out


def _bones_and_menisci(labels: Volume, laterality: Laterality) -> list[Biomarker]:
    out: list[Biomarker] = []
    for bone, region in BONE_REGION.items():
        count = np.count_nonzero(labels.array == bone)
        if count:
            out.append(Biomarker.of(BiomarkerName.BONE_VOLUME, region, round(count * labels.voxel_volume_mm3, 1)))
    for meniscus, region in MENISCUS_REGION.items():
        volume = meniscus_volume_mm3(labels, meniscus)
        if not volume:
            continue
        out.append(Biomarker.of(BiomarkerName.MENISCUS_VOLUME, region, round(volume, 1)))
        thickness = meniscus_thickness_mm(labels, meniscus)
        if thickness is not None:
            out.append(Biomarker.of(BiomarkerName.MENISCUS_THICKNESS_MEAN, region, round(thickness, 3)))
        extrusion = meniscus_extrusion_mm(labels, meniscus, laterality)
        if extrusion is not None:
            out.append(Biomarker.of(BiomarkerName.MENISCUS_EXTRUSION, region, round(extrusion, 2)))
    return out


def pure_cartilage(
    labels: Volume, on_grid: NDArray, series: EchoSeries, cartilage: Label, fraction: float
) -> NDArray[np.bool_]:
    """Voxels of a relaxometry grid that are at least ``fraction`` ``cartilage`` by volume.

    Partial volume with joint fluid (T2 ~600 ms), fat or marrow (fat is not suppressed in a spin echo
    series) raises a voxel's fitted T2 / T1rho; a plain 1-voxel erosion on the fluid side removes only the
    superficial layer, which biases the mean towards the deep cartilage wherever T2 grows from deep to
    superficial (by ~1 ms for a 30 -> 48 ms profile over 2.4 mm at 0.31 mm pixels). Measuring each voxel's
    footprint (in plane and through its slice, as thick as the series says) against the label map trims
    both sides alike: the voxels kept are the ones that truly hold only this cartilage.
    """
    candidates = np.argwhere(on_grid == cartilage)
    footprint = series.volume(0).spacing_mm
    if series.slice_thickness_mm is not None:  # axis 0 is the slice axis of a DICOM series
        footprint = (series.slice_thickness_mm, *footprint[1:])
    share = label_fractions(labels, series.affine, candidates, (int(cartilage),), footprint)[:, 0]
    mask = np.zeros(on_grid.shape, dtype=bool)
    keep = candidates[share >= fraction]
    mask[tuple(keep.T)] = True
    return mask


def _relaxometry(
    labels: Volume,
    series: EchoSeries,
    valid_range: tuple[float, float],
    plates: dict[Label, PlateRegions],
    names: tuple[BiomarkerName, BiomarkerName],
    notes: list[str],
) -> tuple[RelaxationMap, list[Biomarker]]:
    """Fit the series over cartilage free of partial volume (see :func:`pure_cartilage`), average per region."""
    grid_shape = series.array.shape[1:]
    on_grid = resample_nearest(labels, series.affine, grid_shape).array
    masks: dict[Label, NDArray[np.bool_]] = {}
    for cartilage in sorted(CARTILAGE):
        if not (on_grid == cartilage).any():
            continue
        mask = pure_cartilage(labels, on_grid, series, cartilage, PURE_FRACTION)
        if not mask.any():
            notes.append(
                f"{names[0].value}: no voxel of the series holds {100 * PURE_FRACTION:.0f} % {cartilage.display_name}; "
                "its values come from voxels that are mostly cartilage and include partial volume"
            )
            mask = pure_cartilage(labels, on_grid, series, cartilage, 0.5)
        masks[cartilage] = mask
    if not masks:
        notes.append(f"{names[0].value}: no cartilage of the label map lies within the series' field of view")
    union = np.zeros(grid_shape, dtype=bool)
    for mask in masks.values():
        union |= mask
    fitted = relaxation_map(series, union, valid_range)
    values = fitted.map_ms.array
    pooled: dict[str, list[NDArray[np.float64]]] = {}
    for cartilage, mask in masks.items():
        voxels = np.argwhere(mask & fitted.valid)
        region_values = values[tuple(voxels.T)].astype(np.float64)
        regions = (
            _region_of_voxels(plates[cartilage], to_world(series.affine, voxels))
            if cartilage in plates and len(voxels)
            else iter([(PLATE_OF_LABEL[cartilage], np.ones(len(voxels), dtype=bool))])
        )
        for name, region_mask in regions:
            pooled.setdefault(name, []).append(region_values[region_mask])
    for compartment, parts in COMPARTMENTS.items():
        if all(part in pooled for part in parts):
            pooled[compartment] = [v for part in parts for v in pooled[part]]
    out: list[Biomarker] = []
    for name, chunks in pooled.items():
        region_values = np.concatenate(chunks)
        if len(region_values) >= MIN_RELAXOMETRY_VOXELS:
            out.append(Biomarker.of(names[0], name, round(float(region_values.mean()), 2)))
            out.append(Biomarker.of(names[1], name, round(float(region_values.std(ddof=1)), 2)))
    return fitted, out
