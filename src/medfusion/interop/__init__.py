"""Interoperability: FHIR R4 now; HL7 v2 (MLLP), DICOM and CDS Hooks as their issues land."""
