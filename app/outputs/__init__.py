"""What msk-cds writes for other systems: FHIR resources and transaction Bundles; DICOM SEG / SR."""
