"""Writes small OAI-format exports (pipe-delimited, OAI headers, codes and missing-value codes) from a cohort.

The layout follows the OAI ASCII releases: ``kMRI_QCart_Eckstein{VV}.txt`` (ID|SIDE|READPRJ|V{VV}WMTMTH...),
``kXR_SQ_BU{VV}.txt`` (ID|SIDE|READPRJ|V{VV}XRKL), ``Outcomes99.txt`` with a lower-case ``id``,
``Enrollees.txt`` (P02SEX) and ``AllClinical00.txt`` (V00AGE, P01BMI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MISSING_FORM = ".: Missing Form/Incomplete Workbook"
NOT_EXPECTED = ".A: Not Expected"
CONFIRMED = "3: Replacement adjudicated, confirmed"
NOT_CONFIRMED = "0: Replacement adjudcated,failed to confirm"  # sic, as released
CURRENT, PRIOR = "03", "00"
CURRENT_MONTHS = 24
THICKNESS = {"WMTMTH": "MT", "WLTMTH": "LT", "BMFMTH": "cMF", "BLFMTH": "cLF"}
DENUDED = {"WMTPD": "MT", "BMFPD": "cMF"}
CONTACT_LABELS = [(0, "0: Baseline"), (12, "1: 12-month"), (24, "3: 24-month"), (36, "5: 36-month"),
                  (48, "6: 48-month"), (72, "8: 72-month"), (96, "10: 96-month")]


def oai_id(index: int) -> str:
    return str(9000001 + index)


def _side(side: str) -> str:
    return "1: Right" if side == "right" else "2: Left"


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    lines = ["|".join(header)] + ["|".join("" if v is None else str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def _contact(months_after_enrolment: float) -> str:
    return [label for month, label in CONTACT_LABELS if month <= months_after_enrolment][-1]


def write_oai_export(directory: Path, cohort: pd.DataFrame) -> None:
    """One knee per participant; the prior MRI at V00, the current one at V03 (24 months)."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = [oai_id(i) for i in range(len(cohort))]
    _write(directory / "Enrollees.txt", ["ID", "VERSION", "P02SEX", "V00COHORT"],
           [[i, "2.1", "2: Female" if sex == "female" else "1: Male", "2: Incidence"]
            for i, sex in zip(ids, cohort["sex"], strict=True)])
    clinical = []
    for n, (i, age, bmi) in enumerate(zip(ids, cohort["age_years"], cohort["bmi"], strict=True)):
        clinical.append([i, "2.1", round(age - CURRENT_MONTHS / 12, 1), MISSING_FORM if n == 1 else round(bmi, 1)])
    _write(directory / "allclinical00.txt", ["ID", "VERSION", "V00AGE", "P01BMI"], clinical)

    for visit, prefix in ((CURRENT, ""), (PRIOR, "prior:")):
        header = ["ID", "SIDE", "READPRJ", "VERSION", *(f"V{visit}{s}" for s in THICKNESS)]
        if visit == CURRENT:
            header += [f"V{visit}{s}" for s in DENUDED]
        rows = []
        for n, (i, (_, knee)) in enumerate(zip(ids, cohort.iterrows(), strict=True)):
            row: list[object] = [i, _side(knee["side"]), "22", "1.3"]
            row += [round(knee[f"{prefix}cartilage_thickness_mean:{p}"], 4) for p in THICKNESS.values()]
            if visit == CURRENT:
                row += [round(knee[f"denuded_area_pct:{p}"], 3) for p in DENUDED.values()]
            rows.append(row)
            if n == 0 and visit == CURRENT:  # a second reading project that did not read the prior visit
                rows.append([i, _side(knee["side"]), "66", "1.3", *([2.5] * (len(row) - 4))])
            if n == 2:
                rows[-1][4] = NOT_EXPECTED
        _write(directory / f"kMRI_QCart_Eckstein{visit}.txt", header, rows)

    kl = cohort["sim_kl"].to_numpy()
    incident = cohort["incident_oa"].to_numpy()
    for visit, offset in ((CURRENT, 0), ("05", 12), ("06", 24), ("08", 48)):
        project_column = "readprj" if visit == "05" else "READPRJ"
        rows = []
        for n, (i, side) in enumerate(zip(ids, cohort["side"], strict=True)):
            grade = kl[n]
            if offset == 48 and incident[n] == 1:
                grade = 2
            rows.append([i, _side(side), "15", "0.9", int(grade)])
            if n == 0:
                rows.append([i, _side(side), "37", "0.9", 4])  # another reading project: must be ignored
        _write(directory / f"kXR_SQ_BU{visit}.txt", ["ID", "SIDE", project_column, "VERSION", f"V{visit}XRKL"], rows)

    outcome_rows = []
    for n, (i, (_, knee)) in enumerate(zip(ids, cohort.iterrows(), strict=True)):
        letter = "R" if knee["side"] == "right" else "L"
        total = CURRENT_MONTHS + knee["tkr_months"]
        cells = {"V99ERKRPCF": "", "V99ELKRPCF": "", "V99ERKDAYS": "", "V99ELKDAYS": ""}
        if knee["tkr"] == 1:
            cells[f"V99E{letter}KRPCF"] = CONFIRMED
            cells[f"V99E{letter}KDAYS"] = round(total * 365.25 / 12)
        elif n == 3:
            cells[f"V99E{letter}KRPCF"] = NOT_CONFIRMED
            cells[f"V99E{letter}KDAYS"] = 900
        outcome_rows.append([i, "0: No", "0: No", *cells.values(), _contact(total)])
    _write(directory / "Outcomes99.txt",
           ["id", "V99ERKBLRP", "V99ELKBLRP", "V99ERKRPCF", "V99ELKRPCF", "V99ERKDAYS", "V99ELKDAYS", "V99RNTCNT"],
           outcome_rows)


def contact_months(months_after_current: float) -> float:
    """What the export records as follow-up for a non-event: last scheduled contact before the censoring."""
    return float(np.max([m for m, _ in CONTACT_LABELS if m <= CURRENT_MONTHS + months_after_current])) - \
        CURRENT_MONTHS
