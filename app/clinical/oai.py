"""Osteoarthritis Initiative (OAI) exports as distributed (pipe-delimited ASCII) -> the cohort table.

Conventions, as the OAI ASCII files and their users write them (checked against public OAI analysis code;
docs/clinical.md cites where):

- Files are ``|``-delimited with a header row; names differ in case between releases (``ID`` / ``id``,
  ``READPRJ`` / ``readprj``), so columns are matched case-insensitively.
- Coded cells read ``"<code>: <label>"`` (``SIDE`` ``"1: Right"`` / ``"2: Left"``, ``P02SEX`` ``"1: Male"`` /
  ``"2: Female"``); bare codes also occur. Missing values start with a dot: ``".: Missing Form/Incomplete
  Workbook"``, ``".A: Not Expected"``, ``".T: Technical Problems"``; blanks are missing too.
- Visit prefixes ``V{VV}``: 00 baseline, 01 12 months, 02 18, 03 24, 04 30, 05 36, 06 48, 07 60, 08 72,
  09 84, 10 96 months.
- ``kMRI_QCart_Eckstein{VV}.txt``: Chondrometrics cartilage morphometry (keys ID, SIDE, READPRJ), e.g.
  ``V00WMTMTH`` mean thickness (ThCtAB) of the medial tibia, ``V00BMFMTH`` of the central medial femur.
- ``kXR_SQ_BU{VV}.txt``: Boston University semi-quantitative radiograph readings (ID, SIDE, READPRJ; the
  central reading is project 15), KL grade in ``V{VV}XRKL``.
- ``Outcomes99.txt``: ``V99ERKRPCF`` / ``V99ELKRPCF`` replacement status of the right / left knee
  (``"3: Replacement adjudicated, confirmed"`` counts), ``V99ERKDAYS`` / ``V99ELKDAYS`` days from enrolment to
  it, ``V99ERKBLRP`` / ``V99ELKBLRP`` replaced before enrolment, ``V99RNTCNT`` last contact (``"10: 96-month"``).
- ``Enrollees.txt`` (``P02SEX``), ``AllClinical00.txt`` (``V00AGE``, ``P01BMI``; ``V{VV}BMI`` in later
  ``AllClinical{VV}.txt``); also ``SubjectChar00.txt`` where a release keeps them there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from app.clinical.cohort import PRIOR_PREFIX
from app.clinical.errors import CohortError
from schemas.biomarkers import BiomarkerName

VISIT_MONTHS: dict[str, int] = {
    "00": 0, "01": 12, "02": 18, "03": 24, "04": 30, "05": 36, "06": 48, "07": 60, "08": 72, "09": 84, "10": 96,
}
DAYS_PER_MONTH = 365.25 / 12
SIDES = {1: "right", 2: "left"}
SEXES = {1: "male", 2: "female"}
REPLACEMENT_CONFIRMED = 3
XR_CENTRAL_READING = "15"
_MISSING = re.compile(r"^\s*(\.[A-Z]?\s*:.*|\.|)\s*$")
_CODED = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*:")

_T, _X = BiomarkerName.CARTILAGE_THICKNESS_MEAN, BiomarkerName.CARTILAGE_THICKNESS_MAX
_V, _A, _D = BiomarkerName.CARTILAGE_VOLUME, BiomarkerName.CARTILAGE_SURFACE_AREA, BiomarkerName.DENUDED_AREA_PCT
#: Chondrometrics variable (after the ``V{VV}`` prefix) -> msk-cds biomarker. ``W`` = whole tibial plate,
#: ``B`` = central (weight-bearing) femur; ``MTH`` mean thickness over the total subchondral bone area
#: (ThCtAB.Me), ``VCL`` volume (VC), ``ACS`` cartilage surface area (AC), ``PD`` denuded area (dAB%), ``MAV``
#: maximum thickness; subregion prefixes C/E/I/A/P = central/external/internal/anterior/posterior.
CHONDROMETRICS: dict[str, tuple[BiomarkerName, str]] = {
    "WMTMTH": (_T, "MT"), "WLTMTH": (_T, "LT"), "BMFMTH": (_T, "cMF"), "BLFMTH": (_T, "cLF"),
    "WMTFMTH": (_T, "MFTC"), "WLTFMTH": (_T, "LFTC"),
    "WMTVCL": (_V, "MT"), "WLTVCL": (_V, "LT"), "BMFVCL": (_V, "cMF"), "BLFVCL": (_V, "cLF"),
    "WMTFVCL": (_V, "MFTC"), "WLTFVCL": (_V, "LFTC"),
    "WMTACS": (_A, "MT"), "WLTACS": (_A, "LT"), "BMFACS": (_A, "cMF"), "BLFACS": (_A, "cLF"),
    "WMTPD": (_D, "MT"), "WLTPD": (_D, "LT"), "BMFPD": (_D, "cMF"), "BLFPD": (_D, "cLF"),
    "WMTMAV": (_X, "MT"), "WLTMAV": (_X, "LT"), "BMFMAV": (_X, "cMF"), "BLFMAV": (_X, "cLF"),
    **{f"{sub.upper()}{plate}MTH": (_T, f"{sub}{plate}") for plate in ("MT", "LT") for sub in "ceiap"},
    "CBMFMTH": (_T, "ccMF"), "EBMFMTH": (_T, "ecMF"), "IBMFMTH": (_T, "icMF"),
    "CBLFMT": (_T, "ccLF"), "EBLFMT": (_T, "ecLF"), "IBLFMT": (_T, "icLF"),
}


def read_oai_table(path: Path) -> pd.DataFrame:
    """A pipe-delimited OAI file: upper-case column names, cells as text, missing codes as NaN."""
    try:
        frame = pd.read_csv(path, sep="|", dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.ParserError as error:
        raise CohortError(f"{path}: not a pipe-delimited OAI file: {error}") from None
    frame.columns = [c.strip().upper() for c in frame.columns]
    if "ID" not in frame.columns:
        raise CohortError(f"{path}: no ID column (columns: {', '.join(frame.columns[:8])}, ...)")
    return frame.mask(frame.apply(lambda col: col.str.match(_MISSING)))


def coded_number(cell: object) -> float:
    """``"2: Left"`` -> 2.0, ``"1.83"`` -> 1.83, missing -> NaN."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return float("nan")
    text = str(cell)
    match = _CODED.match(text)
    try:
        return float(match.group(1) if match else text)
    except ValueError:
        raise CohortError(f"cannot read {text!r} as a number or an OAI code") from None


def numbers(column: pd.Series) -> pd.Series:
    """A column of coded or numeric cells as floats."""
    return column.map(coded_number).astype(float)


def find_file(directory: Path, stem: str) -> Path | None:
    """``directory/<stem>.txt`` matched case-insensitively (releases differ: Outcomes99.txt, outcomes99.txt)."""
    wanted = f"{stem}.txt".lower()
    return next((p for p in sorted(directory.iterdir()) if p.name.lower() == wanted), None)


def _require(directory: Path, stem: str) -> Path:
    path = find_file(directory, stem)
    if path is None:
        raise CohortError(f"{directory}: no {stem}.txt (matched case-insensitively)")
    return path


def _months(visit: str) -> int:
    if visit not in VISIT_MONTHS:
        raise CohortError(f"unknown OAI visit {visit!r}; known: {', '.join(VISIT_MONTHS)}")
    return VISIT_MONTHS[visit]


def _keyed(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if "SIDE" not in frame.columns:
        raise CohortError(f"{path}: no SIDE column")
    frame = frame.copy()
    frame["subject_id"] = frame["ID"].str.strip()
    frame["side"] = numbers(frame["SIDE"]).map(SIDES)
    frame["READPRJ"] = frame["READPRJ"].str.strip().str.upper() if "READPRJ" in frame else "?"
    return frame[frame["side"].notna()]


@dataclass
class OaiRequest:
    """Which visits make the exams, how long the horizon is, and which readings to trust."""

    current_visit: str = "03"
    prior_visit: str | None = "00"
    horizon_months: int = 48
    mri_projects: list[str] = field(default_factory=list)
    xr_project: str = XR_CENTRAL_READING


def chondrometrics(directory: Path, visit: str) -> pd.DataFrame:
    """One row per (knee, reading project): our biomarker columns from ``kMRI_QCart_Eckstein{visit}``."""
    path = _require(directory, f"kMRI_QCart_Eckstein{visit}")
    frame = _keyed(read_oai_table(path), path)
    out = frame[["subject_id", "side", "READPRJ"]].copy()
    found = 0
    for suffix, (name, region) in CHONDROMETRICS.items():
        column = f"V{visit}{suffix}"
        if column in frame.columns:
            out[f"{name.value}:{region}"] = numbers(frame[column])
            found += 1
    if found == 0:
        raise CohortError(f"{path}: none of the Chondrometrics variables (e.g. V{visit}WMTMTH) is present")
    return out


def _pick_projects(current: pd.DataFrame, prior: pd.DataFrame | None, projects: list[str]) -> pd.DataFrame:
    """One reading project per knee: the first listed (else alphabetical) that read both visits if any."""
    if projects:
        current = current[current["READPRJ"].isin(projects)]
    rank = {p: i for i, p in enumerate(projects)}
    current = current.assign(_rank=current["READPRJ"].map(lambda p: rank.get(p, len(rank))))
    if prior is not None:
        both = current.merge(prior[["subject_id", "side", "READPRJ"]], on=["subject_id", "side", "READPRJ"],
                             how="left", indicator=True)
        current = current.assign(_paired=(both["_merge"] == "both").to_numpy())
    else:
        current = current.assign(_paired=False)
    current = current.sort_values(["subject_id", "side", "_paired", "_rank", "READPRJ"],
                                  ascending=[True, True, False, True, True])
    return current.drop_duplicates(["subject_id", "side"]).drop(columns=["_rank", "_paired"])


def kl_grades(directory: Path, visit: str, project: str) -> pd.DataFrame | None:
    """(subject_id, side, kl) from ``kXR_SQ_BU{visit}`` for one reading project; None if the file is absent."""
    path = find_file(directory, f"kXR_SQ_BU{visit}")
    if path is None:
        return None
    frame = _keyed(read_oai_table(path), path)
    column = f"V{visit}XRKL"
    if column not in frame.columns:
        raise CohortError(f"{path}: no {column} column")
    frame = frame[frame["READPRJ"] == project.upper()]
    out = frame[["subject_id", "side"]].assign(kl=numbers(frame[column]))
    return out.dropna(subset=["kl"]).drop_duplicates(["subject_id", "side"])


def _incident_oa(directory: Path, knees: pd.DataFrame, request: OaiRequest, log: list[str]) -> pd.DataFrame:
    start = _months(request.current_visit)
    baseline = kl_grades(directory, request.current_visit, request.xr_project)
    if baseline is None:
        log.append(f"no kXR_SQ_BU{request.current_visit}.txt: incident OA left blank")
        return knees.assign(oai_kl=np.nan, incident_oa=np.nan, incident_oa_months=np.nan)
    out = knees.merge(baseline.rename(columns={"kl": "kl_current"}), on=["subject_id", "side"], how="left")
    out["incident_oa"], out["incident_oa_months"] = np.nan, np.nan
    followed = [v for v, m in sorted(VISIT_MONTHS.items(), key=lambda item: item[1]) if m > start]
    for visit in followed:
        grades = kl_grades(directory, visit, request.xr_project)
        if grades is None:
            continue
        merged = out[["subject_id", "side"]].merge(grades, on=["subject_id", "side"], how="left")["kl"].to_numpy()
        offset = VISIT_MONTHS[visit] - start
        at_risk = (out["kl_current"] <= 1).to_numpy() & (out["incident_oa"] != 1).to_numpy()
        new_event = at_risk & (merged >= 2)
        still_free = at_risk & (merged <= 1)
        out.loc[new_event, ["incident_oa", "incident_oa_months"]] = [1.0, offset]
        out.loc[still_free, ["incident_oa", "incident_oa_months"]] = [0.0, offset]
        log.append(f"kXR_SQ_BU{visit}: {int(new_event.sum())} incident OA events, {int(still_free.sum())} knees "
                   f"still KL <= 1 at {offset} months")
    return out.rename(columns={"kl_current": "oai_kl"})


def _tkr(directory: Path, knees: pd.DataFrame, request: OaiRequest, log: list[str]) -> pd.DataFrame:
    path = find_file(directory, "Outcomes99")
    if path is None:
        log.append("no Outcomes99.txt: TKR left blank")
        return knees.assign(tkr=np.nan, tkr_months=np.nan)
    outcomes = read_oai_table(path).assign(subject_id=lambda f: f["ID"].str.strip())
    start = _months(request.current_visit)
    last_contact = (outcomes["V99RNTCNT"].map(_contact_months) if "V99RNTCNT" in outcomes
                    else pd.Series(np.nan, index=outcomes.index))
    parts = []
    for side, letter in (("right", "R"), ("left", "L")):
        status, days = f"V99E{letter}KRPCF", f"V99E{letter}KDAYS"
        for column in (status, days):
            if column not in outcomes:
                raise CohortError(f"{path}: no {column} column")
        before = (numbers(outcomes[f"V99E{letter}KBLRP"]) == 1) if f"V99E{letter}KBLRP" in outcomes else False
        replaced = numbers(outcomes[status]) == REPLACEMENT_CONFIRMED
        months = numbers(outcomes[days]) / DAYS_PER_MONTH - start
        frame = pd.DataFrame({"subject_id": outcomes["subject_id"], "side": side,
                              "tkr": np.where(replaced, 1.0, 0.0),
                              "tkr_months": np.where(replaced, months, last_contact - start)})
        unknown = (replaced & months.isna()) | (~replaced & last_contact.isna()) | before | (frame["tkr_months"] <= 0)
        frame.loc[unknown, ["tkr", "tkr_months"]] = np.nan
        parts.append(frame)
    table = pd.concat(parts)
    out = knees.merge(table, on=["subject_id", "side"], how="left")
    log.append(f"Outcomes99: {int((out['tkr'] == 1).sum())} confirmed replacements after the current visit, "
               f"{int(out['tkr'].isna().sum())} knees with unknown status (replaced earlier, no contact data)")
    return out


def _contact_months(cell: object) -> float:
    """``"10: 96-month"`` -> 96; ``"0: Baseline"`` -> 0; bare visit codes via the visit table."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return float("nan")
    text = str(cell)
    match = re.search(r"(\d+)-month", text)
    if match:
        return float(match.group(1))
    if "baseline" in text.lower():
        return 0.0
    code = f"{int(coded_number(text)):02d}"
    return float(VISIT_MONTHS[code]) if code in VISIT_MONTHS else float("nan")


def _demographics(directory: Path, knees: pd.DataFrame, request: OaiRequest, log: list[str]) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {}
    wanted = {"V00AGE", "P02SEX", "P01BMI", f"V{request.current_visit}BMI"}
    for stem in ("Enrollees", "AllClinical00", "SubjectChar00", f"AllClinical{request.current_visit}"):
        path = find_file(directory, stem)
        if path is None:
            continue
        table = read_oai_table(path).drop_duplicates("ID").set_index("ID")
        for column in wanted & set(table.columns) - set(columns):
            columns[column] = numbers(table[column])
    for required in ("V00AGE", "P02SEX"):
        if required not in columns:
            raise CohortError(f"{directory}: no file holds {required} (looked in Enrollees, AllClinical00, "
                              "SubjectChar00)")
    people = pd.DataFrame(columns)
    people.index = people.index.str.strip()
    bmi = people.get(f"V{request.current_visit}BMI", pd.Series(np.nan, index=people.index))
    if "P01BMI" in people:
        bmi = bmi.fillna(people["P01BMI"])
    demographics = pd.DataFrame({
        "age_years": people["V00AGE"] + _months(request.current_visit) / 12,
        "sex": people["P02SEX"].map(SEXES),
        "bmi": bmi,
    }, index=people.index)
    log.append(f"demographics for {len(demographics)} participants")
    return knees.merge(demographics, left_on="subject_id", right_index=True, how="left")


def load_oai_cohort(directory: Path, request: OaiRequest) -> tuple[pd.DataFrame, list[str]]:
    """The cohort table from an OAI directory, and what was done (counts per step) in sentences.

    Besides the canonical columns it keeps ``oai_readprj`` (the MRI reading project used) and ``oai_kl`` (KL
    grade at the current visit, from the chosen X-ray reading project).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CohortError(f"{directory}: not a directory")
    log: list[str] = []
    current = chondrometrics(directory, request.current_visit)
    prior = chondrometrics(directory, request.prior_visit) if request.prior_visit else None
    knees = _pick_projects(current, prior, [p.upper() for p in request.mri_projects])
    log.append(f"kMRI_QCart_Eckstein{request.current_visit}: {len(knees)} knees")
    if prior is not None and request.prior_visit is not None:
        prior_values = prior.rename(columns={c: PRIOR_PREFIX + c for c in prior.columns if ":" in c})
        knees = knees.merge(prior_values, on=["subject_id", "side", "READPRJ"], how="left")
        paired = knees[[c for c in knees.columns if c.startswith(PRIOR_PREFIX)]].notna().any(axis=1)
        knees["months_since_prior"] = np.where(
            paired, _months(request.current_visit) - _months(request.prior_visit), np.nan)
        log.append(f"kMRI_QCart_Eckstein{request.prior_visit}: {int(paired.sum())} of them also read at the prior "
                   "visit in the same project")
    knees = knees.rename(columns={"READPRJ": "oai_readprj"})
    knees = _demographics(directory, knees, request, log)
    knees = _incident_oa(directory, knees, request, log)
    knees = _tkr(directory, knees, request, log)
    return knees.reset_index(drop=True), log
