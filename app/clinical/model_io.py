"""Read and write model folders: ``model.json`` + ``model_card.json`` (sha256) + ``README.md``.

Loading fails loudly: a missing file, a sha256 that differs from the card, or a file that does not validate
raises :class:`ClinicalModelError` naming the folder and what to do, so a service never starts on a corrupt
or hand-edited model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from app.checksums import sha256_of
from app.clinical.errors import ClinicalModelError
from app.clinical.model_files import ModelCard, ModelFile, RiskModelFile, TriageModelFile

MODEL_FILE = "model.json"
CARD_FILE = "model_card.json"
README_FILE = "README.md"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(file)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def read_card(folder: Path) -> ModelCard:
    """The folder's validated model card."""
    path = folder / CARD_FILE
    if not path.is_file():
        raise ClinicalModelError(f"{folder}: no {CARD_FILE}; a model folder needs its card (name, version, sha256)")
    try:
        return ModelCard.model_validate_json(path.read_bytes())
    except ValidationError as error:
        raise ClinicalModelError(f"{path}: not a valid model card: {_describe(error)}") from None


def load_model_folder(folder: Path) -> ModelFile:
    """Verify every file's sha256 against the card, then parse and validate ``model.json``."""
    card = read_card(folder)
    for name, expected in card.files.items():
        path = folder / name
        if not path.is_file():
            raise ClinicalModelError(f"{folder}: {name} is listed in {CARD_FILE} but missing")
        actual = sha256_of(path)
        if actual != expected:
            raise ClinicalModelError(
                f"{path}: sha256 {actual} differs from {expected} in {CARD_FILE}; the file was changed or "
                "corrupted: restore it or rebuild the model (see the folder's README)"
            )
    model_type = TriageModelFile if card.kind == "triage" else RiskModelFile
    path = folder / MODEL_FILE
    try:
        model = model_type.model_validate_json(path.read_bytes())
    except ValidationError as error:
        raise ClinicalModelError(f"{path}: not a valid {card.kind} model file: {_describe(error)}") from None
    if (model.model_id, model.version) != (card.name, card.version):
        raise ClinicalModelError(
            f"{path}: model {model.model_id} {model.version} does not match its card ({card.name} {card.version})"
        )
    return model


def write_model_folder(folder: Path, model: ModelFile, summary: str, readme: Callable[[str], str]) -> ModelCard:
    """Write ``model.json``, ``README.md`` (rendered with model.json's sha256) and the card listing both."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_text(json.dumps(model.model_dump(mode="json"), indent=1) + "\n")
    (folder / README_FILE).write_text(readme(sha256_of(folder / MODEL_FILE)))
    card = ModelCard(
        name=model.model_id,
        version=model.version,
        kind="triage" if isinstance(model, TriageModelFile) else "risk",
        files={name: sha256_of(folder / name) for name in (MODEL_FILE, README_FILE)},
        summary=summary,
    )
    (folder / CARD_FILE).write_text(json.dumps(card.model_dump(mode="json"), indent=1) + "\n")
    return card
