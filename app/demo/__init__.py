"""``mskcds demo``: the whole service on its embedded default, with a phantom study and a synthetic patient.

Nothing here is used outside the demo: the study is served by :mod:`app.demo.dicomweb` (a read-only
DICOMweb service over the phantom's files, mounted in the demo app) and fetched by the same DICOMweb
client, pipeline and worker that serve a hospital PACS; the patient arrives as hook prefetch, as an EHR
would send it.
"""
