"""The knee as a function of position: label, tissue and cartilage relaxation at any point.

:meth:`KneeModel.evaluate` is the single definition of the phantom; label maps, images and ground
truth are all computed from it. Later structures overwrite earlier ones (fat < muscle < vessels <
fluid < tendons < menisci < cartilage < bone < osteophyte < bone marrow lesion), but cartilage and bone
never compete: cartilage lies outside bone by construction.

It can also return a *clearance*: a lower bound on the distance from each point to the nearest
boundary between labels or tissues. The rasteriser fills whole blocks from one evaluation where the
clearance exceeds the block's half-diagonal, which makes a 160 x 384 x 384 volume affordable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.imaging.phantom.anatomy import Articulation, KneeBones
from app.imaging.phantom.frames import RigidFrame
from app.imaging.phantom.shapes import Points, extent_of, near_box
from app.imaging.phantom.softtissue import SoftTissue
from app.imaging.phantom.tissues import Tissue
from schemas.labels import Label

#: Cortical shell rendered dark inside every bone (label unchanged).
CORTEX_MM = 1.0
#: Depth under the bone surface that a marrow lesion keeps clear (the subchondral plate stays bone).
BML_MARGIN_MM = 1.5
#: Largest cartilage thickness the phantom can have (bounds the evaluation bands).
MAX_CARTILAGE_MM = 4.5


@dataclass
class PointSample:
    """Per-point model values; ``t2_ms`` / ``t1rho_ms`` are NaN where the tissue's default applies."""

    label: NDArray[np.uint8]
    tissue: NDArray[np.uint8]
    t2_ms: NDArray[np.float32]
    t1rho_ms: NDArray[np.float32]
    subregion: NDArray[np.uint8]
    clearance: NDArray[np.float32] | None = None

    @staticmethod
    def empty(n: int) -> PointSample:
        return PointSample(
            np.zeros(n, np.uint8),
            np.zeros(n, np.uint8),
            np.full(n, np.nan, np.float32),
            np.full(n, np.nan, np.float32),
            np.zeros(n, np.uint8),
        )


@dataclass(frozen=True)
class _BoneState:
    """One articulation's query results for the points near it (``idx`` into the evaluated points)."""

    idx: NDArray[np.intp]
    distance: NDArray[np.float64]
    thickness: NDArray[np.float64]
    covered: NDArray[np.bool_]
    label: NDArray[np.uint8]
    subregion: NDArray[np.uint8]
    surface: Points  # bone coordinates
    normal: Points  # bone coordinates
    articular_distance: NDArray[np.float64]  # to the nearest cartilage-bearing part

    def full(self, n: int, values: NDArray, fill: float) -> NDArray:
        out = np.full(n, fill, dtype=np.float64)
        out[self.idx] = values
        return out


@dataclass(frozen=True)
class KneeModel:
    """The complete phantom knee in the knee frame, with the pose that puts it into patient space."""

    bones: KneeBones
    soft: SoftTissue
    pose: RigidFrame  # knee frame -> patient RAS (right-canonical)

    def bands(self) -> dict[str, float]:
        """How far outside each bone cartilage or fluid films may reach (the suprapatellar recess aside)."""
        reach = MAX_CARTILAGE_MM + self.soft.fluid_film_mm + 0.5
        return {"femur": max(reach, self.soft.pouch_mm + 1.0), "tibia": reach, "patella": reach}

    def _bone_clearance(self, name: str, state: _BoneState) -> NDArray[np.float64]:
        """Lower bound on the distance to the bone's surface, its cortex, its cartilage and fluid films.

        Outside, cartilage and films lie within ``reach`` of the exact bone distance; inside, the union's
        distance is a lower bound on the depth. The femur's wider band only applies in front of it,
        where the suprapatellar recess is.
        """
        d = state.distance
        reach: float | NDArray = MAX_CARTILAGE_MM + self.soft.fluid_film_mm + 0.5
        if name == "femur":
            s = state.surface[:, 2]
            window = np.abs(s - self.soft.pouch_center_s) < self.soft.pouch_half_height + 2.0
            reach = np.where(window & (state.normal[:, 1] > 0.2), self.bands()["femur"], reach)
        outside = np.minimum(d, np.maximum(state.articular_distance - reach, 0.0))
        inside = np.maximum(np.minimum(-d, np.abs(d + CORTEX_MM)), 0.0)
        return np.where(d > 0, outside, inside)

    def _bone_state(self, art: Articulation, points: Points, band: float, extent: tuple) -> _BoneState:
        low, high = art.bone.knee_bounds(band)
        idx = near_box(points, low, high, extent)
        idx = np.zeros(0, dtype=np.intp) if idx is None else idx
        sub_extent = (np.maximum(extent[0], low), np.minimum(extent[1], high))
        query, part, articular = art.bone.query_articular(points[idx], band, sub_extent)
        sample = art.cartilage.sample(query.point, query.normal, part)
        return _BoneState(
            idx, query.distance, sample.thickness_mm, sample.covered, sample.label, sample.subregion,
            query.point, query.normal, articular,
        )  # fmt: skip

    def evaluate(self, points: Points, clearance: bool = False) -> PointSample:
        """Label, tissue and relaxation of the knee at knee-frame ``points``."""
        n = len(points)
        out = PointSample.empty(n)
        if n == 0:
            return out
        extent = extent_of(points)
        soft = self.soft
        bands = self.bands()
        bound = np.full(n, np.inf) if clearance else None

        # Skin, subcutaneous fat, deep fat.
        skin = soft.limb_level(points)
        fascia = soft.limb_level(points, soft.fat_mm)
        inside = skin < 1.0
        deep = fascia < 1.0
        out.tissue[inside] = Tissue.FAT
        out.label[inside & ~deep] = Label.SUBCUTANEOUS_FAT
        if bound is not None:
            bound = np.minimum(bound, soft.level_clearance(skin, 0.0))
            bound = np.minimum(bound, soft.level_clearance(fascia, soft.fat_mm))

        def put(mask: NDArray, label: int, tissue: Tissue) -> None:
            out.label[mask] = label
            out.tissue[mask] = tissue

        def shapes(items, mask: NDArray, label: int, tissue: Tissue) -> None:
            candidates = np.flatnonzero(mask)
            if candidates.size == 0:
                return
            subset = points[candidates]
            margin = 0.0 if bound is None else 20.0
            for shape in items:
                low, high = shape.bounds()
                near = near_box(subset, low - margin, high + margin, extent)
                if near is None:
                    continue
                idx = candidates[near]
                d = shape.distance(subset[near])
                put(idx[d <= 0], label, tissue)
                if bound is not None:
                    bound[idx] = np.minimum(bound[idx], np.abs(d))

        shapes(soft.muscles, deep, Label.MUSCLE, Tissue.MUSCLE)
        shapes(soft.vessels, deep, Label.BACKGROUND, Tissue.VESSEL)
        shapes(soft.nerves, deep, Label.NERVE, Tissue.NERVE)

        femur = self._bone_state(self.bones.femur, points, bands["femur"], extent)
        tibia = self._bone_state(self.bones.tibia, points, bands["tibia"], extent)
        patella = self._bone_state(self.bones.patella, points, bands["patella"], extent)
        outer = {
            name: state.full(n, state.distance - state.thickness, np.inf)
            for name, state in (("femur", femur), ("tibia", tibia), ("patella", patella))
        }
        if bound is not None:
            for name, state in (("femur", femur), ("tibia", tibia), ("patella", patella)):
                bound[state.idx] = np.minimum(bound[state.idx], self._bone_clearance(name, state))

        # Joint fluid: films where two cartilage surfaces face each other, the suprapatellar recess, a cyst.
        film = soft.fluid_film_mm
        between = (outer["femur"] > 0) & (outer["femur"] < film)
        fluid = between & (
            ((outer["tibia"] > 0) & (outer["tibia"] < film)) | ((outer["patella"] > 0) & (outer["patella"] < film))
        )
        pouch = np.zeros(n, dtype=bool)
        ahead = femur.normal[:, 1] > 0.3
        depth = femur.distance - femur.thickness
        pouch[femur.idx] = ahead & (depth > 0.3) & (femur.distance < 0.3 + soft.pouch_thickness(femur.surface))
        put((fluid | pouch) & inside, Label.JOINT_FLUID, Tissue.FLUID)
        if soft.cyst is not None:
            low, high = soft.cyst.bounds()
            margin = 0.0 if bound is None else 20.0
            idx = near_box(points, low - margin, high + margin, extent)
            idx = np.zeros(0, dtype=np.intp) if idx is None else idx
            level = soft.cyst.level(points[idx])
            put(idx[level < 1.0], Label.JOINT_FLUID, Tissue.FLUID)
            if bound is not None:
                bound[idx] = np.minimum(bound[idx], soft.cyst.clearance(level))

        shapes(soft.tendons, inside, Label.BACKGROUND, Tissue.TENDON)
        self._menisci(points, tibia, outer["femur"], out, bound)

        # Cartilage.
        for art, state in ((self.bones.femur, femur), (self.bones.tibia, tibia), (self.bones.patella, patella)):
            layer = (state.distance > 0) & (state.distance <= state.thickness)
            idx = state.idx[layer]
            out.label[idx] = state.label[layer]
            out.tissue[idx] = Tissue.CARTILAGE
            out.subregion[idx] = state.subregion[layer]
            depth_fraction = state.distance[layer] / state.thickness[layer]
            t2, t1rho = art.cartilage.relaxation(state.surface[layer], state.subregion[layer], depth_fraction)
            out.t2_ms[idx], out.t1rho_ms[idx] = t2, t1rho

        # Bones (fibula first: the tibia wins where they touch), then osteophytes and marrow lesions.
        fib_low, fib_high = self.bones.fibula.knee_bounds(1.0)
        fib_idx = near_box(points, fib_low, fib_high, extent)
        fib_idx = np.zeros(0, dtype=np.intp) if fib_idx is None else fib_idx
        fib_d = self.bones.fibula.distance(points[fib_idx])
        self._bone(fib_idx, fib_d, Label.FIBULA, out)
        if bound is not None:
            bound[fib_idx] = np.minimum(bound[fib_idx], np.minimum(np.abs(fib_d), np.abs(fib_d + CORTEX_MM)))
        for art, state in ((self.bones.femur, femur), (self.bones.tibia, tibia), (self.bones.patella, patella)):
            self._bone(state.idx, state.distance, art.bone.label, out)
        bone_distance = np.minimum.reduce([outer_bone for outer_bone in (
            femur.full(n, femur.distance, np.inf), tibia.full(n, tibia.distance, np.inf),
            patella.full(n, patella.distance, np.inf))])  # fmt: skip
        margin = 0.0 if bound is None else 20.0
        for _, sphere in self.bones.osteophytes:
            low, high = sphere.bounds()
            idx = near_box(points, low - margin, high + margin, extent)
            if idx is None:
                continue
            d = sphere.distance(points[idx])
            spur = (d <= 0) & (bone_distance[idx] > 0) & (out.tissue[idx] != Tissue.CARTILAGE)
            put(idx[spur], Label.OSTEOPHYTE, Tissue.MARROW)
            put(idx[spur & (d > -CORTEX_MM)], Label.OSTEOPHYTE, Tissue.CORTEX)
            if bound is not None:
                bound[idx] = np.minimum(bound[idx], np.abs(d))
        for _, ellipsoid in self.bones.bmls:
            low, high = ellipsoid.bounds()
            idx = near_box(points, low - margin, high + margin, extent)
            if idx is None:
                continue
            level = ellipsoid.level(points[idx])
            put(idx[(level < 1.0) & (bone_distance[idx] < -BML_MARGIN_MM)], Label.BONE_MARROW_LESION, Tissue.EDEMA)
            if bound is not None:
                bound[idx] = np.minimum(bound[idx], ellipsoid.clearance(level))
        if bound is not None:
            out.clearance = bound.astype(np.float32)
        return out

    @staticmethod
    def _bone(idx: NDArray[np.intp], distance: NDArray, label: int, out: PointSample) -> None:
        inside = distance <= 0
        out.label[idx[inside]] = label
        out.tissue[idx[inside]] = np.where(distance[inside] > -CORTEX_MM, Tissue.CORTEX, Tissue.MARROW)
        out.t2_ms[idx[inside]] = np.nan
        out.t1rho_ms[idx[inside]] = np.nan
        out.subregion[idx[inside]] = 0

    def _menisci(
        self, points: Points, tibia: _BoneState, femur_outer: NDArray, out: PointSample, bound: NDArray | None
    ) -> None:
        frame = self.bones.tibia.bone.frame
        local = frame.to_local(points[tibia.idx])
        ceiling = MAX_CARTILAGE_MM + max(m.height_posterior for m in self.soft.menisci) + 1.0
        if bound is not None:  # distance to the box that holds both menisci
            low = np.min([m.center - m.radii for m in self.soft.menisci], axis=0)
            high = np.max([m.center + m.radii for m in self.soft.menisci], axis=0)
            gap = np.maximum(np.maximum(low - local[:, :2], local[:, :2] - high), 0.0)
            gap_s = np.maximum(np.maximum(-local[:, 2], local[:, 2] - ceiling), 0.0)
            bound[tibia.idx] = np.minimum(bound[tibia.idx], np.sqrt((gap**2).sum(axis=1) + gap_s**2))
        near = np.flatnonzero((local[:, 2] > -1.0) & (local[:, 2] < ceiling))
        if near.size == 0:
            return
        local = local[near]
        idx = tibia.idx[near]
        plates = self.bones.tibia.cartilage
        top = np.column_stack([local[:, :2], np.zeros(len(local))])
        up = np.tile([0.0, 0.0, 1.0], (len(local), 1))
        base = plates.sample(top, up, np.zeros(len(local), dtype=np.intp)).thickness_mm
        for meniscus in self.soft.menisci:
            height = meniscus.height(local)
            body = (height > 0) & (local[:, 2] > base) & (local[:, 2] < base + height) & (femur_outer[idx] > 0.25)
            out.label[idx[body]] = meniscus.label
            out.tissue[idx[body]] = Tissue.MENISCUS
            cleft = body & meniscus.cleft(local, base, height)
            out.label[idx[cleft]] = Label.JOINT_FLUID
            out.tissue[idx[cleft]] = Tissue.FLUID
