"""The evaluation's summary and files: report.md, report.json, bland_altman.png, one overlay PNG per case.

Scores that are undefined stay visible: a label absent from both maps has no Dice, a missed or invented
label has an infinite HD95, and both are counted next to the means instead of being dropped or averaged
in. Agreement needs two pairs; with fewer the tables say ``n/a``. Pooled rows put every region of a group
(e.g. all plates' thickness) into one Bland–Altman / ICC: with one knee they are the only agreement
figures there are, but an ICC across regions of different size mostly measures that difference in size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.segmentation.agreement import PanelData, bland_altman, bland_altman_figure, paired_icc
from app.segmentation.evaluation import THICKNESS, THICKNESS_REGIONS, VOLUMES, Case, CaseResult, pairs
from app.segmentation.metrics import KNEE_LABELS
from schemas.biomarkers import UNITS, BiomarkerName
from schemas.labels import BONES, CARTILAGE, MENISCI, Label
from schemas.volume import Volume

#: Biomarker groups: one Bland–Altman panel (and one pooled agreement row) per group and comparison.
GROUPS: dict[str, list[str]] = {
    "cartilage thickness": [f"{THICKNESS.value}:{region}" for region in THICKNESS_REGIONS],
    **{
        name.value.replace("_", " "): [f"{name.value}:{region}" for n, region, _ in VOLUMES if n == name]
        for name in dict.fromkeys(n for n, _, _ in VOLUMES)
    },
}
COMPARISONS = ("reference", "truth")


def _mean_sd(values: Sequence[float]) -> dict[str, float | int | None]:
    array = np.asarray(values, dtype=np.float64)
    return {
        "n": len(array),
        "mean": float(array.mean()) if len(array) else None,
        "sd": float(array.std(ddof=1)) if len(array) > 1 else None,
    }


def label_summary(results: list[CaseResult]) -> list[dict[str, Any]]:
    """Per label: Dice and finite HD95 mean / SD, and how many cases had no score or an infinite one."""
    rows = []
    for label in KNEE_LABELS:
        scores = [next(s for s in r.scores if s.label == label) for r in results]
        dice = [s.dice for s in scores if s.dice is not None]
        hd = [s.hd95_mm for s in scores if s.hd95_mm is not None and math.isfinite(s.hd95_mm)]
        rows.append(
            {
                "label": int(label),
                "name": label.name.lower(),
                "dice": _mean_sd(dice),
                "hd95_mm": _mean_sd(hd),
                "hd95_infinite": sum(s.hd95_mm == math.inf for s in scores),
                "absent_in_both": sum(s.dice is None for s in scores),
            }
        )
    return rows


def _agreement(triples: list[tuple[str, float, float]]) -> dict[str, Any]:
    predicted = [p for _, p, _ in triples]
    other = [o for _, _, o in triples]
    errors = [p - o for p, o in zip(predicted, other, strict=True)]
    row: dict[str, Any] = {"n": len(triples), "max_abs_error": max((abs(e) for e in errors), default=None)}
    if len(triples) >= 2:
        stats = bland_altman(predicted, other)
        row |= {"bias": stats.bias, "sd": stats.sd, "loa": [stats.lower, stats.upper]}
        row["icc_a1"] = paired_icc(predicted, other)
    else:
        row |= {"bias": errors[0] if errors else None, "sd": None, "loa": None, "icc_a1": None}
    return row


def agreement_summary(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    """Per comparison: per biomarker key and pooled per group, n, bias, SD, LoA, ICC(2,1), max |error|."""
    out: dict[str, dict[str, Any]] = {}
    for versus in COMPARISONS:
        per_key = {key: _agreement(list(pairs(results, key, versus))) for keys in GROUPS.values() for key in keys}
        pooled = {
            group: _agreement([t for key in keys for t in pairs(results, key, versus)])
            for group, keys in GROUPS.items()
        }
        out[versus] = {"biomarkers": {k: v for k, v in per_key.items() if v["n"]}, "pooled": pooled}
    return out


def summarise(results: list[CaseResult], header: dict[str, Any]) -> dict[str, Any]:
    """The report.json document."""
    timings: dict[str, list[float]] = {}
    for result in results:
        for stage, seconds in result.timings_s.items():
            timings.setdefault(stage, []).append(seconds)
    return {
        **header,
        "labels": label_summary(results),
        "agreement": agreement_summary(results),
        "timings_s_mean": {stage: float(np.mean(values)) for stage, values in timings.items()},
        "where_predicted": where_summary(results),
        "cases": [_case_json(result) for result in results],
    }


def _case_json(result: CaseResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "laterality": result.laterality,
        "grade": result.grade,
        "failure": result.failure,
        "scores": [
            {
                "label": int(s.label),
                "dice": s.dice,
                "hd95_mm": s.hd95_mm if s.hd95_mm is None or math.isfinite(s.hd95_mm) else "inf",
                "reference_voxels": s.reference_voxels,
                "predicted_voxels": s.predicted_voxels,
            }
            for s in result.scores
        ],
        "predicted": result.predicted,
        "reference": result.reference,
        "truth": result.truth,
        "timings_s": result.timings_s,
        "confidence": result.confidence,
        "notes": result.notes,
        "where": result.where,
    }


#: Columns of the "where" table: the reference tissue a predicted voxel lies on, grouped.
WHERE_GROUPS = ("same label", "bone", "background", "other cartilage / meniscus", "anything else")


def _where_group(predicted: str, reference: str) -> str:
    if reference == predicted:
        return "same label"
    if reference in {label.name.lower() for label in BONES}:
        return "bone"
    if reference == Label.BACKGROUND.name.lower():
        return "background"
    if reference in {label.name.lower() for label in CARTILAGE | MENISCI}:
        return "other cartilage / meniscus"
    return "anything else"


def where_summary(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    """Per predicted plate / meniscus over all cases: voxels, the share on each reference group, and the
    reference labels under the 'anything else' share (joint fluid, bone marrow lesions ...)."""
    out: dict[str, dict[str, Any]] = {}
    for result in results:
        for predicted, counts in result.where.items():
            row = out.setdefault(predicted, {"voxels": 0, "groups": dict.fromkeys(WHERE_GROUPS, 0), "else": {}})
            for reference, count in counts.items():
                row["voxels"] += count
                group = _where_group(predicted, reference)
                row["groups"][group] += count
                if group == "anything else":
                    row["else"][reference] = row["else"].get(reference, 0) + count
    return out


def where_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Rows of the "where" table: predicted label, voxels, % per group, what 'anything else' was."""
    rows = []
    for predicted, row in summary["where_predicted"].items():
        total = max(row["voxels"], 1)
        shares = [f"{100 * row['groups'][group] / total:.1f} %" for group in WHERE_GROUPS]
        named = sorted(row["else"].items(), key=lambda item: -item[1])
        rows.append([predicted, str(row["voxels"]), *shares, ", ".join(f"{n} {c}" for n, c in named) or "-"])
    return rows


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pm(stats: dict[str, Any], digits: int = 3) -> str:
    if stats["mean"] is None:
        return "n/a"
    return f"{stats['mean']:.{digits}f} ± {_fmt(stats['sd'], digits)}"


def label_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Rows of the Dice / HD95 table: label, Dice mean ± SD (n), HD95 mean ± SD (n), infinite, absent."""
    return [
        [
            f"{row['label']} {row['name']}",
            f"{_pm(row['dice'])} ({row['dice']['n']})",
            f"{_pm(row['hd95_mm'], 2)} ({row['hd95_mm']['n']})",
            str(row["hd95_infinite"]),
            str(row["absent_in_both"]),
        ]
        for row in summary["labels"]
    ]


def thickness_rows(summary: dict[str, Any], versus: str) -> list[list[str]]:
    """Rows of a thickness error table: plate, n, mean error (bias) ± SD, max |error|, LoA, ICC."""
    rows = []
    for region in THICKNESS_REGIONS:
        row = summary["agreement"][versus]["biomarkers"].get(f"{THICKNESS.value}:{region}")
        if row is None:
            rows.append([region, "0", "n/a", "n/a", "n/a", "n/a"])
            continue
        loa = "n/a" if row["loa"] is None else f"{row['loa'][0]:+.3f} .. {row['loa'][1]:+.3f}"
        bias = "n/a" if row["bias"] is None else f"{row['bias']:+.3f} ± {_fmt(row['sd'])}"
        rows.append([region, str(row["n"]), bias, _fmt(row["max_abs_error"]), loa, _fmt(row["icc_a1"])])
    return rows


#: The per-case table's Dice columns: each cartilage plate, by its region name (label name).
CASE_DICE = [(region, Label[name.upper()]) for n, region, name in VOLUMES if n == BiomarkerName.CARTILAGE_VOLUME]


def case_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per case: grade, cartilage Dice, and each plate's mean thickness predicted / truth (else reference).

    The averages hide what a clinician asks first: does the measured cartilage follow the disease? A model
    that draws healthy thickness into a thinned plate shows here as a flat predicted column.
    """
    columns = ["case", "grade"]
    columns += [f"Dice {region}" for region, _ in CASE_DICE]
    columns += [f"{region} mm" for region in THICKNESS_REGIONS]
    rows = []
    for case in summary["cases"]:
        dice = {score["label"]: score["dice"] for score in case["scores"]}
        versus = case["truth"] or case["reference"]
        row = [case["name"], "n/a" if case["grade"] is None else str(case["grade"])]
        row += [_fmt(dice.get(int(label))) for _, label in CASE_DICE]
        for region in THICKNESS_REGIONS:
            key = f"{THICKNESS.value}:{region}"
            row.append(f"{_fmt(case['predicted'].get(key), 2)} / {_fmt(versus.get(key), 2)}")
        rows.append(row)
    return columns, rows


def _markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


LABEL_COLUMNS = ["label", "Dice mean ± SD (n)", "HD95 mm mean ± SD (n)", "HD95 inf", "absent in both"]
THICKNESS_COLUMNS = ["plate", "n", "error mm mean ± SD", "max abs error mm", "95% LoA mm", "ICC(2,1)"]


def markdown(summary: dict[str, Any]) -> str:
    """report.md: what was run, then the tables."""
    parts = [
        "# Segmentation evaluation",
        "",
        f"Model: {', '.join(f'{k} {v}' for k, v in summary['model_versions'].items())}. "
        f"Cases: {summary['source']} ({len(summary['cases'])}).",
        "",
        "Dice and HD95 (symmetric 95th-percentile Hausdorff distance, mm) against the reference labels. "
        "HD95 means are over finite values; 'HD95 inf' counts cases where the label was missed or invented, "
        "'absent in both' cases where neither map has it.",
        "",
        _markdown_table(LABEL_COLUMNS, label_rows(summary)),
    ]
    parts += [
        "",
        "Where the predicted plates and menisci lie: their voxels (all cases) by the reference label under "
        "them: drawn into its bone, into joint fluid or a meniscus, or into another plate.",
        "",
        _markdown_table(["predicted", "voxels", *WHERE_GROUPS, "anything else: which"], where_rows(summary)),
    ]
    failures = [c for c in summary["cases"] if c["failure"]]
    if failures:
        parts += ["", "Cases where the chain gave no labels (scored as empty predictions):", ""]
        parts += [f"- {c['name']}: {c['failure']}" for c in failures]
    for versus, title in (
        ("truth", "the phantom's exact truth"),
        ("reference", "the reference labels, measured alike"),
    ):
        parts += ["", f"## Mean cartilage thickness: predicted - {title}", ""]
        parts.append(_markdown_table(THICKNESS_COLUMNS, thickness_rows(summary, versus)))
    parts += ["", "## Agreement (Bland–Altman bias and 95% limits of agreement; ICC(2,1) absolute agreement)", ""]
    rows = []
    for versus in COMPARISONS:
        agreement = summary["agreement"][versus]
        named = [(key, row) for key, row in agreement["biomarkers"].items()]
        named += [(f"{group} (pooled)", row) for group, row in agreement["pooled"].items() if row["n"]]
        for key, row in named:
            loa = "n/a" if row["loa"] is None else f"{row['loa'][0]:+.4g} .. {row['loa'][1]:+.4g}"
            bias = "n/a" if row["bias"] is None else f"{row['bias']:+.4g}"
            rows.append([versus, key, str(row["n"]), bias, _fmt(row["sd"], 4), loa, _fmt(row["icc_a1"])])
    parts.append(_markdown_table(["versus", "biomarker", "n", "bias", "SD", "95% LoA", "ICC(2,1)"], rows))
    parts += ["", "![Bland–Altman](bland_altman.png)", "", "## Cases", ""]
    parts += [
        "Mean plate thickness per case, predicted / truth (the reference labels where a case has no truth).",
        "",
        _markdown_table(*case_rows(summary)),
        "",
    ]
    for case in summary["cases"]:
        parts.append(f"![{case['name']}](overlay_{case['name']}.png)")
    parts += ["", "Mean seconds per case: " + ", ".join(f"{k} {v:.2f}" for k, v in summary["timings_s_mean"].items())]
    return "\n".join(parts) + "\n"


def panels(results: list[CaseResult]) -> list[PanelData]:
    """Bland–Altman panels: one per biomarker group and comparison that has pairs."""
    out = []
    for versus in COMPARISONS:
        for group, keys in GROUPS.items():
            triples = [(key, t) for key in keys for t in pairs(results, key, versus)]
            if not triples:
                continue
            unit = UNITS[BiomarkerName(keys[0].split(":")[0])].value
            out.append(
                PanelData(
                    title=f"{group} vs {versus}",
                    unit=unit,
                    versus=versus,
                    method=[p for _, (_, p, _) in triples],
                    comparison=[o for _, (_, _, o) in triples],
                    regions=[key.split(":")[1] for key, _ in triples],
                )
            )
    return out


def write_report(summary: dict[str, Any], results: list[CaseResult], out_dir: Path) -> list[Path]:
    """report.md, report.json and bland_altman.png in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown(summary))
    figure = bland_altman_figure(panels(results), out_dir / "bland_altman.png", "predicted")
    return [out_dir / "report.md", out_dir / "report.json", figure]


def write_overlay(case: Case, predicted: Volume, path: Path) -> Path:
    """The sagittal slice with the most reference cartilage + menisci: image, reference and predicted contours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from app.segmentation.data import sagittal_display

    image, reference, prediction = (sagittal_display(v) for v in (case.image, case.reference, predicted))
    soft = np.isin(reference, [int(label) for label in CARTILAGE | MENISCI])
    index = int(np.argmax(soft.reshape(len(soft), -1).sum(axis=1)))
    figure, ax = plt.subplots(figsize=(6.4, 6.4))
    ax.imshow(image[index], cmap="gray", interpolation="nearest")
    for labels, colour, style in ((reference[index], "lime", "solid"), (prediction[index], "magenta", "dashed")):
        for label in KNEE_LABELS:
            mask = labels == label
            if mask.any():
                ax.contour(mask.astype(np.float32), levels=[0.5], colors=colour, linewidths=0.8, linestyles=style)
    ax.legend(
        handles=[
            Line2D([], [], color="lime", label="reference"),
            Line2D([], [], color="magenta", ls="--", label="predicted"),
        ],
        loc="lower right",
        fontsize=8,
    )
    ax.set_title(f"{case.name}: slice {index + 1} of {len(image)} ({case.laterality} knee)")
    ax.set_axis_off()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
