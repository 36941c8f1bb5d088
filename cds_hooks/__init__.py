"""The CDS Hooks 2.0 protocol (HL7 STU2) and nothing else: knows no MRI, no FHIR server, no model."""
