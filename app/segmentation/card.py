"""Model cards: what a segmentation model folder holds, read and verified without torch.

A model folder is ``<model_dir>/<name>/model.json`` plus the files the card lists, each with its
sha256. API pods import this module to learn the model versions that key stored results; only workers
load the weights (:mod:`app.segmentation.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.checksums import sha256_of
from app.settings import BUILTIN_MODEL_DIR

if TYPE_CHECKING:
    from app.settings import Settings

CARD_FILE = "model.json"
#: Files a card may list (``files`` keys).
FileRole = Literal["sam", "detector", "encoder_onnx", "decoder_onnx", "detector_onnx"]


class ModelCardError(ValueError):
    """A model that cannot be found, read or trusted; the message says which file and what to do."""


class ModelFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="relative to the model folder")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class TestTimeView(BaseModel):
    """One view of every slice that the chain decodes and averages (test-time augmentation): moved by
    ``shift`` (rows, columns) pixels of the slice's own grid, mirrored left-right in the model frame or not.
    The operations live with the chain (:class:`app.segmentation.views.View`); this is what a card states."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shift: tuple[int, int] = (0, 0)
    mirror: bool = False


class SegmentationCard(BaseModel):
    """The model card of a SAM-family segmenter (+ its AutoLabel detector)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    kind: Literal["sam-segmenter"] = "sam-segmenter"
    architecture: dict = Field(description="app.segmentation.architecture.SamConfig fields")
    files: dict[FileRole, ModelFile]
    detector_from: str | None = Field(
        default=None, description="another model whose detector this one uses (a site's SAM without its own)"
    )
    joint_pass_pixel_mm: float | None = Field(
        default=None,
        gt=0,
        description="model pixel (mm) of the chain's second pass over the joint region "
        "(app.segmentation.joint); only for a model trained at that scale; absent: one pass",
    )
    test_time_views: list[TestTimeView] = Field(
        default_factory=lambda: [TestTimeView()],
        min_length=1,
        description="views of each slice whose logits the chain averages; the card's metrics were measured "
        "with them; absent: one plain view",
    )
    description: str = ""
    training: dict = Field(default_factory=dict, description="data, recipe and the command that trained it")
    metrics: dict = Field(default_factory=dict, description="figures with the command that measured them")
    intended_use: str = ""
    limitations: str = ""


def find_model(name: str, settings: Settings) -> Path:
    """The folder of model ``name`` (MSKCDS_MODEL_DIR first, then the repository's models/)."""
    folder = settings.model_folder(name)
    if not (folder / CARD_FILE).is_file():
        raise ModelCardError(
            f"segmentation model {name!r} not found: "
            f"no {name}/{CARD_FILE} in {settings.model_dir} or {BUILTIN_MODEL_DIR}"
        )
    return folder


def read_card(folder: Path) -> SegmentationCard:
    """The card in ``folder``, validated (files are checked separately, when loaded)."""
    path = folder / CARD_FILE
    try:
        return SegmentationCard.model_validate_json(path.read_text())
    except (OSError, ValidationError) as exc:
        raise ModelCardError(f"model card {path} is not valid: {exc}") from exc


def verified_file(folder: Path, card: SegmentationCard, role: FileRole) -> Path:
    """A file the card lists, after checking its sha256 (a swapped or corrupted file is refused)."""
    entry = card.files.get(role)
    if entry is None:
        raise ModelCardError(f"model {card.name!r} lists no {role} file in {folder / CARD_FILE}")
    path = folder / entry.path
    if not path.is_file():
        raise ModelCardError(f"model {card.name!r}: {path} is missing")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ModelCardError(f"model {card.name!r}: {path} has sha256 {actual}, the card says {entry.sha256}")
    return path


@dataclass(frozen=True)
class ConfiguredModel:
    """The configured segmenter's folder and card, and those of the model its detector comes from."""

    folder: Path
    card: SegmentationCard
    detector_folder: Path
    detector_card: SegmentationCard

    @property
    def versions(self) -> dict[str, str]:
        """Artifact -> version (one entry when the model has its own detector): keys stored results."""
        return {self.card.name: self.card.version, self.detector_card.name: self.detector_card.version}


def configured_model(settings: Settings) -> ConfiguredModel:
    """MSKCDS_SEGMENTATION_MODEL's folder and card, following ``detector_from`` (no weights are read)."""
    folder = find_model(settings.segmentation_model, settings)
    card = read_card(folder)
    detector_folder = find_model(card.detector_from, settings) if card.detector_from else folder
    detector_card = read_card(detector_folder) if card.detector_from else card
    return ConfiguredModel(folder, card, detector_folder, detector_card)


def segmentation_versions(settings: Settings) -> dict[str, str]:
    """Artifact -> version of the configured segmenter (and the detector it borrows), without torch."""
    return configured_model(settings).versions
