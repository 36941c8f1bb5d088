"""msk-cds service and pipeline: API, imaging, segmentation, measurement, clinical models, outputs."""

__version__ = "0.1.0"
