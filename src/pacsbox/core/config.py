"""Server configuration: Orthanc's JSON keys (comments allowed), resolved once into a frozen object."""

from __future__ import annotations

import ipaddress
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# Keys a real Orthanc 1.10 configuration may hold that pacsbox accepts without acting on them, so that an
# existing Orthanc configuration file loads without a warning per key.
_ACCEPTED_ORTHANC_KEYS = frozenset([
    "MaximumStorageSize", "MaximumPatientCount", "Plugins",
    "HttpServerEnabled", "HttpDescribeErrors", "HttpCompressionEnabled", "DicomServerEnabled",
    "SslEnabled", "SslCertificate", "SslVerifyPeers", "SslTrustedClientCertificates", "DicomModalitiesInDatabase",
    "OrthancPeersInDatabase", "HttpProxy", "HttpVerbose", "HttpTimeout", "HttpsVerifyPeers", "HttpsCACertificates",
    "StrictAetComparison", "StoreMD5ForAttachments", "LogExportedResources", "KeepAlive",
    "TcpNoDelay", "HttpThreadsCount", "StoreDicom", "DicomAssociationCloseDelay", "QueryRetrieveSize",
    "LoadPrivateDictionary", "Dictionary", "SynchronousCMove",
    "MediaArchiveSize", "StorageAccessOnFind",
    "DefaultPrivateCreator", "TranscodeDicomProtocol",
    "BuiltinDecoderTranscoderOrder", "IngestTranscoding", "IngestTranscodingOfUncompressed",
    "IngestTranscodingOfCompressed", "DicomLossyTranscodingQuality", "SyncStorageArea", "DeidentifyLogs",
    "DeidentifyLogsDicomVersion", "MallocArenaMax", "ExtraMainDicomTags", "Warnings",
    "DicomTlsEnabled", "DicomTlsCertificate", "DicomTlsPrivateKey", "DicomTlsTrustedCertificates",
    "DicomTlsRemoteCertificateRequired", "DicomEchoChecksFind",
    "DicomScuPreferredTransferSyntax", "DicomCheckModalityHost", "HttpHeaders",
    "WebDavEnabled", "WebDavDeleteAllowed",
    "WebDavUploadAllowed", "OrthancExplorerEnabled", "ZipLoaderThreads", "LimitJobs", "StorageAreaPlugin",
    "DatabaseServerIdentifier",
])


@dataclass(frozen=True)
class Config:
    """Every option of a pacsbox server, under Orthanc's names where Orthanc has one.

    Defaults suit tests: loopback only, authentication on with admin/admin (as xnat4tests), no overwrite.
    """

    Name: str = "pacsbox"
    StorageDirectory: str = "pacsbox-storage"
    IndexDirectory: str = ""  # empty: same as StorageDirectory, as in Orthanc
    HttpPort: int = 8042
    DicomPort: int = 4242
    DicomAet: str = "PACSBOX"
    RemoteAccessAllowed: bool = False
    AuthenticationEnabled: bool = True
    RegisteredUsers: Mapping[str, str] = field(default_factory=lambda: {"admin": "admin"})
    OverwriteInstances: bool = False
    StableAge: int = 60
    LimitFindResults: int = 0
    LimitFindInstances: int = 0
    UserMetadata: Mapping[str, int] = field(default_factory=dict)
    DefaultEncoding: str = "Latin1"
    SyncStorageArea: bool = True
    DicomModalities: Mapping[str, Any] = field(default_factory=dict)
    OrthancPeers: Mapping[str, Any] = field(default_factory=dict)
    DicomCheckCalledAet: bool = False
    DicomAlwaysAllowEcho: bool = True
    DicomAlwaysAllowStore: bool = True
    DicomAlwaysAllowFind: bool = False
    DicomAlwaysAllowGet: bool = False
    DicomAlwaysAllowMove: bool = False
    CaseSensitivePN: bool = False  # C-FIND matching of person names
    DicomScpTimeout: int = 30  # seconds an idle association is kept open
    DicomScuTimeout: int = 10  # seconds to wait for a remote modality
    UnknownSopClassAccepted: bool = False
    # transfer syntaxes the C-STORE SCP accepts: UIDs with the wildcards * and ?, one string or a list
    AcceptedTransferSyntaxes: str | tuple[str, ...] | list[str] = "*"
    MetricsEnabled: bool = True  # whether /tools/metrics-prometheus publishes the metrics
    # Lua (Orthanc's keys): scripts loaded at start, in order; POST /tools/execute-script off unless enabled
    LuaScripts: tuple[str, ...] = ()
    LuaHeartBeatPeriod: int = 60  # seconds between OnHeartBeat calls (0: never), as Orthanc's default
    ExecuteLuaEnabled: bool = False
    # Orthanc's civetweb drops a connection whose read blocks this long (SO_RCVTIMEO); pacsbox bounds each pause
    # while a request body arrives the same way
    HttpRequestTimeout: int = 30
    # the Orthanc DICOMweb plugin's section: Enable, Root ("/dicom-web/"), EnableWado, WadoRoot ("/wado")
    DicomWeb: Mapping[str, Any] = field(default_factory=dict)
    # the jobs engine (core.jobs), Orthanc's keys and defaults: worker threads, finished jobs kept with their
    # outputs, and whether jobs are saved in the index and read back at the next start
    ConcurrentJobs: int = 2
    JobsHistorySize: int = 10
    SaveJobs: bool = True
    # attachments and files (core.attachments): user attachment names (name: number, or [number, MIME type]);
    # zlib-compressed storage of new DICOM files and attachments; If-Match required to replace or delete them;
    # /instances/{id}/export may write to the server's file system
    UserContentType: Mapping[str, Any] = field(default_factory=dict)
    StorageCompression: bool = False
    CheckRevisions: bool = False
    RestApiWriteToFileSystemEnabled: bool = False
    # Modality worklists and storage commitment (faces/dimse/worklist_scp.py, faces/dimse/commitment.py): the worklist
    # plugin's section (Enable, Database, FilterIssuerAet, LimitAnswers; core.worklists), who may query worklists
    # without being a known modality, and how many storage commitment reports the SCU keeps (oldest dropped first)
    Worklists: Mapping[str, Any] = field(default_factory=dict)
    DicomAlwaysAllowFindWorklist: bool = False
    StorageCommitmentReportsSize: int = 100
    # pacsbox's own keys (no Orthanc equivalent)
    BindAddress: str = "127.0.0.1"  # where HTTP and DICOM listen; RemoteAccessAllowed=true alone keeps loopback
    MaximumUploadSize: int = 4 * 1024**3  # bytes of one HTTP body on an upload route; larger bodies get 413
    # bytes of the body of any other route (JSON, forms, XML, Lua, text): read whole and parsed, so kept small;
    # checked while the body streams in, before authentication
    MaximumRequestBodySize: int = 1024**2
    HttpMaximumHeaderSize: int = 64 * 1024  # bytes of a request line plus headers; larger gets 431, then close
    HttpMaximumHeaderCount: int = 100  # header lines of one request; more gets 431, then close
    HttpMaximumUrlLength: int = 32 * 1024  # bytes of a request target; longer gets 414, then close
    HttpHeaderTimeout: int = 10  # seconds to receive a request's headers (from connecting or its first byte): 408
    HttpKeepAliveTimeout: int = 30  # seconds an idle keep-alive connection is kept
    # open HTTP connections (at most half the open-file limit); past it, the oldest idle connection is closed
    HttpMaximumConnections: int = 1000
    XnatSessionTimeout: int = 900  # seconds a JSESSIONID lives unused (XNAT's default session timeout: 15 min)
    XnatMaximumSessions: int = 10000  # live JSESSIONIDs; past it, the least recently used one ends
    XnatSiteId: str = "XNAT"  # prefix of XNAT accession IDs (<SiteID>_S00001); xnat4tests uses "Xnat4Tests"
    # XNAT site administrators among RegisteredUsers; the other users reach a project only through its
    # accessibility and their role in it (Owners, Members, Collaborators), as on XNAT
    XnatSiteAdministrators: tuple[str, ...] = ("admin",)
    # DICOM network limits (faces/dimse): what one peer may make the server hold
    DicomMaximumDatasetSize: int = 256 * 1024**2  # bytes of one received DIMSE message (data set); larger: A-ABORT
    DicomMaximumConnections: int = 256  # connections yet to send their A-ASSOCIATE-RQ; beyond, the oldest is closed
    DicomMaximumAssociations: int = 64  # served at once; beyond, the longest idle is aborted, else A-ASSOCIATE-RJ
    # Acknowledge each received PDU at once (TCP_QUICKACK, Linux): a peer with Nagle's algorithm on (pynetdicom's
    # and dcmtk's default) then waits ~5 ms a request instead of ~45. Off by default, as Orthanc: a pynetdicom
    # requestor sending several requests on one association can lose a fast answer to its own race
    # (pydicom/pynetdicom#875), which the 40 ms delay hides.
    DicomAcknowledgeAtOnce: bool = False
    # bytes a store must leave free on the storage file system (room for the index to commit deletes); below it
    # stores answer 507 (HTTP) or 0xA700 (C-STORE)
    MinimumFreeSpace: int = 1024 * 1024
    MaximumFindPatternLength: int = 1024  # characters of one wildcard query value (/tools/find, C-FIND); 400 above
    MaximumFindListLength: int = 10000  # values of one list query value (``a\\b\\c``); 400 above
    # pacsbox's bounds on Lua (Orthanc has none): a script or callback running longer, printing more or allocating
    # more fails with a Lua error; CallSystem/os.execute/io.popen and file writes are refused unless allowed
    LuaMaximumExecutionTime: float = 10.0  # seconds
    LuaMaximumOutputSize: int = 1024 * 1024  # bytes printed by one script or callback
    LuaMaximumMemory: int = 256 * 1024 * 1024  # bytes of one Lua state
    LuaSystemCallsAllowed: bool = False
    LuaFileWritesAllowed: bool = False
    # fault injection and the event log (pacsbox.faults; README "Testing failures"): rules the server starts with,
    # in the JSON form POST /pacsbox/faults takes, and how many events the log keeps (oldest dropped; 0 keeps none)
    PacsboxFaults: tuple[Any, ...] | list[Any] = ()
    PacsboxEventLogSize: int = 10000

    @property
    def storage_path(self) -> Path:
        return Path(self.StorageDirectory)

    @property
    def index_path(self) -> Path:
        return Path(self.IndexDirectory or self.StorageDirectory)

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with some options replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_OWN_KEYS = frozenset(f.name for f in fields(Config))

# The keys of Config that a real Orthanc does not know (the lifecycle manager leaves them out of the configuration
# it writes for the real Orthanc engine): every field from BindAddress on, as the class lists Orthanc's keys first.
PACSBOX_ONLY_KEYS = frozenset(f.name for f in fields(Config)[[f.name for f in fields(Config)].index("BindAddress"):])


def strip_json_comments(text: str) -> str:
    """Remove ``//`` and ``/* */`` comments outside of strings, as Orthanc's configuration reader allows."""
    token = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.DOTALL)
    return token.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "", text)


def config_from_mapping(values: Mapping[str, Any], base: Config | None = None) -> Config:
    """Build a Config from Orthanc-style keys; unknown keys warn, keys Orthanc knows are accepted silently.

    Every known key's type and range is checked first (:mod:`.config_check`): a ``ConfigError`` lists them all."""
    from .config_check import check_or_raise

    check_or_raise(values)
    known: dict[str, Any] = {}
    for key, value in values.items():
        if key in _OWN_KEYS:
            known[key] = value
        elif key not in _ACCEPTED_ORTHANC_KEYS:
            warnings.warn(f"pacsbox: unknown configuration key {key!r} ignored", stacklevel=2)
    config = replace(base or Config(), **known)
    _validate(config)
    return config


def load_config(path: str | Path, base: Config | None = None) -> Config:
    """Read an Orthanc-style JSON configuration file (comments allowed)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        values = json.loads(strip_json_comments(text))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a valid JSON configuration: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: the configuration must be a JSON object")
    scripts = values.get("LuaScripts")
    if isinstance(scripts, list):  # as Orthanc: relative to the configuration file's folder
        folder = Path(path).resolve().parent
        values["LuaScripts"] = [str(folder / s) if isinstance(s, str) else s for s in scripts]
    from .config_check import ConfigError

    try:
        return config_from_mapping(values, base)
    except ConfigError as error:  # say which file
        raise ConfigError(error.problems, f"the configuration file {path}") from None


WELL_KNOWN_USERS = {"admin": "admin"}  # the default credentials, printed so that a user knows how to log in


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` is reachable from this machine only: 127.0.0.0/8, ``::1``, ``localhost``.

    Anything else (``0.0.0.0``, ``::``, an interface address, another host name) counts as exposed.
    """
    text = host.strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def check_exposure(config: Config) -> None:
    """Refuse to listen beyond loopback without authentication (ValueError saying what to change).

    A throwaway test server may run without authentication only where nobody else can reach it.
    """
    if is_loopback(config.BindAddress):
        return
    if not config.AuthenticationEnabled or not config.RegisteredUsers:
        reason = "AuthenticationEnabled is false" if not config.AuthenticationEnabled else "RegisteredUsers is empty"
        raise ValueError(
            f"refusing to listen on {config.BindAddress!r} without authentication ({reason}): other machines "
            "could reach this server. Listen on 127.0.0.1 (the default), or set AuthenticationEnabled to true "
            "with at least one user in RegisteredUsers")


def exposure_warning(config: Config) -> str | None:
    """A warning when a server reachable from other machines accepts the well-known default credentials."""
    if is_loopback(config.BindAddress) or not config.AuthenticationEnabled:
        return None
    default = [user for user, password in config.RegisteredUsers.items() if WELL_KNOWN_USERS.get(user) == password]
    if not default:
        return None
    return (f"warning: listening on {config.BindAddress} with the well-known password of {', '.join(default)}; "
            "set your own in RegisteredUsers")


def describe_users(users: Mapping[str, str], enabled: bool) -> str:
    """How to log in, for a person: the well-known default ``admin/admin`` in full, other passwords never
    (they end up in terminals, CI logs and the log file)."""
    if not enabled:
        return "authentication off"
    if not users:
        return "no users"
    return ", ".join(f"{user}/{password}" if WELL_KNOWN_USERS.get(user) == password else f"{user}/***"
                     for user, password in users.items())


_POSITIVE_INTEGERS = ("MaximumUploadSize", "MaximumRequestBodySize", "HttpMaximumHeaderSize",
                      "HttpMaximumHeaderCount", "HttpMaximumUrlLength", "HttpHeaderTimeout", "HttpRequestTimeout",
                      "HttpKeepAliveTimeout", "HttpMaximumConnections", "XnatSessionTimeout", "XnatMaximumSessions")


def _validate(config: Config) -> None:
    for name in ("HttpPort", "DicomPort"):
        port = getattr(config, name)
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"{name} must be a port number (0 picks a free one), not {port!r}")
    for name in ("DicomMaximumDatasetSize", "DicomMaximumConnections", "DicomMaximumAssociations"):
        number = getattr(config, name)
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise ValueError(f"{name} must be a positive integer, not {number!r}")
    for name, number in config.UserMetadata.items():
        if not isinstance(number, int) or not 1024 <= number <= 65535:
            raise ValueError(f"UserMetadata {name!r}: index must be an integer in 1024..65535, not {number!r}")
    syntaxes = config.AcceptedTransferSyntaxes
    if not isinstance(syntaxes, str) and not (
            isinstance(syntaxes, (list, tuple)) and all(isinstance(item, str) for item in syntaxes)):
        raise ValueError("AcceptedTransferSyntaxes must be a transfer syntax UID (wildcards * and ? allowed) or a "
                         f"list of them, not {syntaxes!r}")
    for name in ("MinimumFreeSpace", "MaximumFindPatternLength", "MaximumFindListLength", "ConcurrentJobs",
                 "JobsHistorySize"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    if not isinstance(config.SaveJobs, bool):
        raise ValueError(f"SaveJobs must be true or false, not {config.SaveJobs!r}")
    if isinstance(config.LuaScripts, str) or not all(isinstance(path, str) for path in config.LuaScripts):
        raise ValueError("LuaScripts must be a list of file paths")
    object.__setattr__(config, "LuaScripts", tuple(config.LuaScripts))  # a JSON list, frozen like the rest
    for name, lowest in (("LuaMaximumExecutionTime", 0.001), ("LuaMaximumOutputSize", 1),
                         ("LuaMaximumMemory", 1024 * 1024), ("LuaHeartBeatPeriod", 0)):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lowest:
            raise ValueError(f"{name} must be a number of at least {lowest:g}, not {value!r}")
    for name in _POSITIVE_INTEGERS:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if not isinstance(config.UserContentType, Mapping):
        raise ValueError("UserContentType must be an object of attachment name to number (or [number, MIME type])")
    from .attachments import user_content_types  # (a leaf module: no import cycle)

    user_content_types(config.UserContentType)
    if not isinstance(config.DicomWeb, Mapping):
        raise ValueError("DicomWeb must be an object (Enable, Root, EnableWado, WadoRoot)")
    _validate_faults(config)
    if not isinstance(config.RegisteredUsers, Mapping):
        raise ValueError("RegisteredUsers must be an object of user name to password")
    if isinstance(config.XnatSiteAdministrators, str) or not all(
            isinstance(name, str) for name in config.XnatSiteAdministrators):
        raise ValueError("XnatSiteAdministrators must be a list of user names")
    object.__setattr__(config, "XnatSiteAdministrators", tuple(config.XnatSiteAdministrators))


def _validate_faults(config: Config) -> None:
    """PacsboxFaults holds rules in the form POST /pacsbox/faults takes (checked by the same parser, a pure module
    of the faults package); PacsboxEventLogSize a count."""
    from ..faults.rules import RuleError, parse_rule

    size = config.PacsboxEventLogSize
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"PacsboxEventLogSize must be a non-negative integer, not {size!r}")
    if not isinstance(config.PacsboxFaults, (list, tuple)):
        raise ValueError("PacsboxFaults must be a list of fault rules")
    for number, rule in enumerate(config.PacsboxFaults):
        try:
            parse_rule(rule, "check")
        except RuleError as error:
            raise ValueError(f"PacsboxFaults[{number}]: {error}") from None
    object.__setattr__(config, "PacsboxFaults", tuple(config.PacsboxFaults))
