"""pacsbox: throwaway Orthanc-, XNAT- and DICOM-compatible archive servers for test suites."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `pacsbox.Server` without importing the server stack on `import pacsbox` (start-up stays lean)
    if name == "Server":
        from .server import Server

        return Server
    raise AttributeError(f"module 'pacsbox' has no attribute {name!r}")
