"""DICOM to acquisitions, series selection, and knee MRI phantoms."""
