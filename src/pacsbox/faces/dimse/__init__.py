"""The DICOM network face: the SCP on ``DicomAet``/``DicomPort``, and the SCU the archive uses to reach modalities."""
