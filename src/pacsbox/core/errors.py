"""The one error hierarchy of the archive core; each face maps it to its own wire format."""

from __future__ import annotations


class ArchiveError(Exception):
    """Base of every error the archive reports to a face.

    ``details`` is a sentence for a human (Orthanc puts it in the ``Details`` field of its error body).
    """

    def __init__(self, details: str | None = None) -> None:
        super().__init__(details or self.__class__.__name__)
        self.details = details


class UnknownResource(ArchiveError):
    """A patient, study, series or instance ID that the archive does not hold."""


class InexistentItem(ArchiveError):
    """An item inside a known resource that does not exist: a metadata name, a tag, a frame."""


class InvalidDicom(ArchiveError):
    """Bytes that are not a readable DICOM instance (not DICOM, truncated, missing identifying UIDs)."""


class BadRequest(ArchiveError):
    """A request whose arguments are malformed (wrong JSON shape, wrong argument types)."""


class OutOfRange(ArchiveError):
    """An argument of the right type whose value is not allowed (unknown level, unknown name)."""


class Unsupported(ArchiveError):
    """A feature pacsbox does not implement; the message names it."""


class TooLarge(ArchiveError):
    """A request body, or what an uploaded archive or compressed body inflates to, over MaximumUploadSize."""


class StorageFull(ArchiveError):
    """The storage area or the configured quota cannot take more data."""


class NetworkError(ArchiveError):
    """A remote DICOM modality or HTTP peer could not be reached, refused the association, or failed a request."""


class Conflict(ArchiveError):
    """A request that clashes with what is stored (a label already taken, a session already archived)."""


class BadFormat(BadRequest):
    """A request body or entry whose structure is wrong: not JSON, or a field of the wrong type (Orthanc answers
    "Bad file format" there, where other malformed arguments are a plain "Bad request")."""


class InvalidName(BadRequest):
    """A label or file name that cannot name a file or folder in the storage area: a character XNAT refuses in
    labels, a path part that would leave its folder (absolute, ``..``, a separator), or a name over 255 bytes."""


class JobCanceled(ArchiveError):
    """A job that a client cancelled (Orthanc's "This job was canceled"); the jobs engine (``core.jobs``) ends the
    job with it, and the Synchronous request that waited for the job answers it."""


class PluginFailure(ArchiveError):
    """A job of a face that Orthanc runs as a plugin (the DICOMweb client's STOW and WADO jobs) failed: Orthanc
    reports it as "Error encountered within the plugin engine" and the plugin puts its own error in the job's
    Content. ``cause`` is the face's own error, which the synchronous request answers."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(None)
        self.cause = cause


class NoPresentationContext(NetworkError):
    """The remote modality accepted none of the presentation contexts proposed to it."""


class CannotTranscode(NetworkError):
    """The remote modality does not accept an instance's SOP class in its transfer syntax, and pacsbox sends
    instances as stored (it does not transcode)."""


class ScriptError(ArchiveError):
    """A Lua script or callback failed (a syntax or runtime error, its time limit, its output limit); ``details``
    is Lua's message with the line (Orthanc's "Cannot execute a Lua command"). ``lua_message`` is false when the
    script raised something else than a message (``error({})``), which Orthanc reports as an internal error."""

    def __init__(self, details: str | None = None, *, lua_message: bool = True) -> None:
        super().__init__(details)
        self.lua_message = lua_message
