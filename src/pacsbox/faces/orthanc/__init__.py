"""The Orthanc-compatible REST face (routes, JSON shapes and error bodies of Orthanc 1.10.1)."""
