"""pacsbox: throwaway Orthanc-, XNAT- and DICOM-compatible archive servers for test suites."""

__version__ = "0.1.0"
