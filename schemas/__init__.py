"""Domain types shared by every layer of msk-cds.

Nothing here imports from ``app`` or ``cds_hooks``: these are the words the layers use to talk to each
other (label convention, biomarkers, volumes with their geometry, clinical results, analysis results).
"""
