"""DICOM to acquisitions (geometry, echoes, laterality), series selection, and knee MRI phantoms.

``load_acquisitions`` turns a folder, a list of files or in-memory datasets (as from DICOMweb) into
:class:`Acquisition` objects; ``select_series`` picks the morphology and relaxometry acquisitions of a
knee study from DICOM attributes. Phantoms live in :mod:`app.imaging.phantom`.
"""

from app.imaging.acquisition import Acquisition, StudySelection
from app.imaging.errors import LoaderError, SeriesSelectionError
from app.imaging.loader import load_acquisitions
from app.imaging.selection import select_series

__all__ = [
    "Acquisition",
    "LoaderError",
    "SeriesSelectionError",
    "StudySelection",
    "load_acquisitions",
    "select_series",
]
