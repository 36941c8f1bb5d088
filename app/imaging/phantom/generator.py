"""``generate_phantom`` and ``write_phantom``: one knee MRI study with its exact ground truth.

Everything is drawn from independent random streams of the seed (anatomy, pose, pathology per grade,
noise per protocol), so the same seed gives the same knee at every grade (a knee "progressing" from
grade 0 to 4) and adding a protocol never changes the others. A left knee is the right knee of the same
seed mirrored in the patient's x, voxel for voxel.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from app.imaging.phantom.anatomy import build_bones
from app.imaging.phantom.cartilage import Subregion
from app.imaging.phantom.dicom import StudyIdentity, series_datasets, series_folder
from app.imaging.phantom.frames import RigidFrame
from app.imaging.phantom.model import KneeModel
from app.imaging.phantom.pathology import Pathology, pathology_for_grade
from app.imaging.phantom.protocols import ProtocolSpec, resolve_protocols
from app.imaging.phantom.raster import SagittalGrid, rasterize
from app.imaging.phantom.shapes import rotation
from app.imaging.phantom.signal import partial_volume_offsets, synthesize
from app.imaging.phantom.softtissue import build_soft_tissue
from app.imaging.phantom.truth import PhantomTruth, surface_truth, thickness_map, volume_truth
from app.log import get_logger
from schemas.volume import EchoSeries, Volume

log = get_logger(__name__)

Side = Literal["left", "right"]
#: Mirror in the patient's x: turns the right-canonical knee into a left knee.
MIRROR_X = np.diag([-1.0, 1.0, 1.0, 1.0])
#: Point of the knee frame the technologist centres every acquisition on (just above the joint line).
FOV_CENTER_KNEE = np.array([0.0, -4.0, 14.0])


@dataclass(frozen=True)
class Phantom:
    """A generated study: label map, images per protocol, thickness map and truth (all in patient RAS)."""

    labels: Volume
    thickness: Volume
    truth: PhantomTruth
    images: dict[str, EchoSeries]
    model: KneeModel  # right-canonical; ``knee_to_ras`` places it for this side
    knee_to_ras: NDArray[np.float64]
    identity: StudyIdentity

    @property
    def side(self) -> Side:
        return self.truth.side

    def protocol(self, name: str) -> ProtocolSpec:
        return next(spec for spec in self.truth.protocols if spec.name == name)

    def datasets(self) -> list[Dataset]:
        """Every DICOM instance of the study (what :func:`write_phantom` writes, e.g. to load Orthanc)."""
        datasets: list[Dataset] = []
        for spec in self.truth.protocols:
            series = self.images[spec.name]
            datasets += series_datasets(self.identity, spec, series.array, series.affine, self.side)
        return datasets


def _pose(rng: np.random.Generator) -> RigidFrame:
    """Where the (right-canonical) knee lies in the scanner: off the patient's midline, slightly turned."""
    turn = (
        rotation("z", rng.uniform(-6.0, 6.0))
        @ rotation("y", rng.uniform(-4.0, 4.0))
        @ rotation("x", rng.uniform(-5.0, 5.0))
    )
    return RigidFrame(turn, np.array([rng.uniform(45.0, 80.0), rng.uniform(-12.0, 12.0), rng.uniform(-12.0, 12.0)]))


def _findings(pathology: Pathology, volumes: dict[str, float]) -> list[str]:
    findings = []
    for defect in pathology.defects:
        kind = "full-thickness" if defect.depth >= 1.0 else "partial-thickness"
        size = f"radius {defect.radius_mm:.1f} mm, depth {100 * defect.depth:.0f} %"
        findings.append(f"{kind} cartilage defect, {defect.plate}, {size}")
    for region, factor in sorted(pathology.thinning.items()):
        findings.append(f"cartilage thinning, {Subregion(region).name}: thickness x{factor:.2f}")
    if pathology.grade >= 3:
        findings.append(f"joint-space narrowing: {pathology.joint_gap_mm:.2f} mm between opposing cartilage")
    if pathology.meniscal_tear:
        findings.append("horizontal tear, posterior horn of the medial meniscus")
    if pathology.meniscal_maceration:
        loss = 100 * pathology.meniscal_maceration
        findings.append(f"maceration of the medial meniscus posterior horn ({loss:.0f} % height loss)")
    if pathology.meniscal_extrusion_mm:
        findings.append(f"medial meniscal extrusion {pathology.meniscal_extrusion_mm:.1f} mm")
    findings += [f"osteophyte, {site}, radius {radius:.1f} mm" for site, radius in pathology.osteophytes]
    for site, radius in pathology.bmls:
        findings.append(f"bone marrow lesion, {site}, radius {radius:.1f} mm")
    if pathology.bmls:
        findings.append(f"bone marrow lesions in view: {volumes['bone_marrow_lesion'] / 1000:.2f} mL")
    if pathology.grade >= 1:
        findings.append(f"joint effusion: suprapatellar recess {pathology.effusion_mm:.1f} mm")
        raised = pathology.t2_increase_ms
        findings.append(f"cartilage T2 raised by {raised:.0f} ms (T1rho by {1.3 * raised:.0f} ms)")
    if pathology.popliteal_cyst:
        findings.append("popliteal (Baker's) cyst")
    return findings


def _flip(array: NDArray, side: Side, axis: int) -> NDArray:
    return np.ascontiguousarray(np.flip(array, axis=axis)) if side == "left" else array


def generate_phantom(
    seed: int = 0,
    side: Side = "right",
    grade: int = 0,
    protocols: Sequence[ProtocolSpec | str] | None = None,
) -> Phantom:
    """Generate one knee MRI study (see the module docstring); ``protocols`` default to dess, t2-mese, t1rho."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    specs = resolve_protocols(None if protocols is None else list(protocols))
    morphology = next((spec for spec in specs if spec.signal_model == "dess"), specs[0])
    streams = np.random.SeedSequence(seed).spawn(2)
    anatomy_rng, pose_rng = (np.random.default_rng(s) for s in streams)
    pathology = pathology_for_grade(grade, np.random.default_rng([seed, grade, 1]))
    bones = build_bones(anatomy_rng, pathology)
    model = KneeModel(bones, build_soft_tissue(anatomy_rng, bones, pathology), _pose(pose_rng))
    center = model.pose.to_parent(FOV_CENTER_KNEE[None])[0] + pose_rng.uniform(-4.0, 4.0, 3)
    knee_to_ras = model.pose.as_matrix() if side == "right" else MIRROR_X @ model.pose.as_matrix()

    images: dict[str, EchoSeries] = {}
    labels = thickness = None
    for spec in specs:
        grid = SagittalGrid.for_protocol(spec, center)
        offsets = partial_volume_offsets(spec)
        samples = [rasterize(model, grid, offset) for offset in offsets]
        noise_rng = np.random.default_rng([seed, grade, *spec.name.encode()])
        pixels = synthesize(spec, samples, noise_rng)
        final_grid = grid if side == "right" else grid.mirrored()
        images[spec.name] = EchoSeries(_flip(pixels, side, axis=1), final_grid.affine, spec.times_ms)
        if spec is morphology:
            centre = samples[offsets.index(0.0)] if 0.0 in offsets else rasterize(model, grid)
            volumes, t2, t1rho = volume_truth(model, grid, centre)
            thickness_values = thickness_map(model, grid, centre.label)
            labels = Volume(_flip(centre.label, side, axis=0), final_grid.affine)
            thickness = Volume(_flip(thickness_values, side, axis=0), final_grid.affine)
        log.debug("phantom protocol synthesised", protocol=spec.name, shape=list(pixels.shape))
    assert labels is not None and thickness is not None

    thickness_mm, area, denuded = surface_truth(model)
    identity = StudyIdentity.for_phantom(seed, side, grade, specs)
    femur_to_ras = knee_to_ras @ bones.femur.bone.frame.as_matrix()
    truth = PhantomTruth(
        seed=seed,
        side=side,
        grade=grade,
        protocols=specs,
        morphology_protocol=morphology.name,
        study_instance_uid=identity.study_instance_uid,
        thickness_mm=thickness_mm,
        interface_area_mm2=area,
        denuded_area_pct=denuded,
        volume_mm3=volumes,
        t2_ms=t2,
        t1rho_ms=t1rho,
        findings=_findings(pathology, volumes),
        femur_frame=femur_to_ras.tolist(),
        landmarks_mm=bones.landmarks,
        size_factor=bones.size,
    )
    return Phantom(labels, thickness, truth, images, model, knee_to_ras, identity)


def write_phantom(phantom: Phantom, out_dir: Path, preview: bool = False) -> None:
    """Write the study: DICOM Part 10 files (one folder per series), labels, thickness map, truth, previews."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for spec in phantom.truth.protocols:
        series = phantom.images[spec.name]
        for ds in series_datasets(phantom.identity, spec, series.array, series.affine, phantom.side):
            folder = out_dir / series_folder(spec, ds)
            folder.mkdir(exist_ok=True)
            ds.save_as(folder / f"IM{int(ds.InstanceNumber):05d}.dcm", enforce_file_format=True)
    nib.save(nib.Nifti1Image(phantom.labels.array, phantom.labels.affine), out_dir / "labels.nii.gz")
    nib.save(nib.Nifti1Image(phantom.thickness.array, phantom.thickness.affine), out_dir / "thickness_truth.nii.gz")
    (out_dir / "truth.json").write_text(json.dumps(phantom.truth.model_dump(mode="json"), indent=2) + "\n")
    if preview:
        from app.imaging.phantom.preview import write_previews

        write_previews(phantom, out_dir / "preview")
