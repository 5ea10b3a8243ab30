"""The DICOMweb face (DICOM PS3.18: QIDO-RS, STOW-RS, WADO-RS, WADO-URI), following the Orthanc DICOMweb plugin 1.7
where the standard leaves a choice."""
