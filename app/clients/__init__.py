"""Clients of upstream systems: DICOMweb (PACS) and FHIR (EHR), async over httpx."""
