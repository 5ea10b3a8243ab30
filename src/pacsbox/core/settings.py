"""The settings Orthanc lets a client change while it runs (its ``/tools/...`` routes), seeded from the configuration.

The configuration (``core.config.Config``) is frozen; these few values are the run-time state that Orthanc 1.10.1
keeps beside it: ``PUT /tools/default-encoding``, ``/tools/accepted-transfer-syntaxes``,
``/tools/unknown-sop-class-accepted`` and ``/tools/metrics`` change them until the next restart (``/tools/reset``
seeds them again from the configuration file).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any

from .config import Config
from .errors import BadFormat, OutOfRange

# Orthanc's names of its encodings (EnumerationToString(Encoding)), in its order; PUT accepts any letter case and
# answers the name as written here.
ORTHANC_ENCODINGS = ("Ascii", "Utf8", "Latin1", "Latin2", "Latin3", "Latin4", "Latin5", "Cyrillic", "Windows1251",
                     "Arabic", "Greek", "Hebrew", "Thai", "Japanese", "Chinese", "JapaneseKanji", "Korean",
                     "SimplifiedChinese")
_BY_UPPER_NAME = {name.upper(): name for name in ORTHANC_ENCODINGS}

# The transfer syntaxes Orthanc 1.10.1 knows (GET /tools/accepted-transfer-syntaxes with everything accepted), in
# its order: patterns are matched against these, and the answer lists the matches in this order.
KNOWN_TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
    *(f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 70,
                                           80, 81, 90, 91, 92, 93, 94, 95, 100, 101, 102, 103, 104, 105, 106, 107,
                                           108)),
    "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.6.1", "1.2.840.10008.1.2.6.2",
)


def encoding_name(text: str) -> str | None:
    """Orthanc's name of an encoding given in any letter case (``utf8`` → ``Utf8``), or None if unknown."""
    return _BY_UPPER_NAME.get(text.upper())


def _pattern(text: str) -> re.Pattern[str]:
    """Orthanc's wildcards: ``*`` any run of characters, ``?`` one character; the rest literal (``[`` too).
    fnmatch's translation matches many stars without exponential backtracking, which a hostile pattern such as
    ``*1*1*1*1*1*1*1*1*X`` would cost a naive regular expression."""
    return re.compile(fnmatch.translate(text.replace("[", "[[]")))


def match_transfer_syntaxes(patterns: Iterable[str], known: Iterable[str] = KNOWN_TRANSFER_SYNTAXES
                            ) -> tuple[str, ...]:
    """The ``known`` transfer syntaxes (Orthanc's by default) that one of ``patterns`` matches, in their order."""
    compiled = [_pattern(p) for p in dict.fromkeys(patterns)]
    return tuple(uid for uid in known if any(p.match(uid) for p in compiled))


def transfer_syntax_patterns(value: Any) -> list[str]:
    """The patterns of the ``AcceptedTransferSyntaxes`` option or of a PUT body: a string or a list of strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise BadFormat("AcceptedTransferSyntaxes must be a string or a list of strings")


class RuntimeSettings:
    """The values a client may change at run time. Each is one attribute, replaced whole (never mutated in
    place), so that a reader in another thread sees either the old or the new value."""

    def __init__(self, config: Config) -> None:
        self.default_encoding = "Latin1"
        self.accepted_transfer_syntaxes: tuple[str, ...] = KNOWN_TRANSFER_SYNTAXES
        # the patterns themselves: the DICOM face matches them against every syntax it can store (some newer than
        # Orthanc 1.10.1's list), so that "*" keeps accepting them all
        self.transfer_syntax_patterns: tuple[str, ...] = ("*",)
        self.unknown_sop_class_accepted = False
        self.metrics_enabled = True
        self.seed(config)

    def seed(self, config: Config) -> None:
        """Take every value from the configuration (at start, and again on /tools/reset)."""
        self.default_encoding = encoding_name(config.DefaultEncoding) or config.DefaultEncoding
        self.set_accepted_transfer_syntaxes(transfer_syntax_patterns(config.AcceptedTransferSyntaxes))
        self.unknown_sop_class_accepted = bool(config.UnknownSopClassAccepted)
        self.metrics_enabled = bool(config.MetricsEnabled)

    def set_default_encoding(self, text: str) -> str:
        """Change DefaultEncoding; returns Orthanc's name of it (OutOfRange for an unknown one)."""
        name = encoding_name(text)
        if name is None:
            raise OutOfRange(None)
        self.default_encoding = name
        return name

    def set_accepted_transfer_syntaxes(self, patterns: Iterable[str]) -> tuple[str, ...]:
        """Accept exactly the known transfer syntaxes that the patterns match; returns them."""
        patterns = tuple(patterns)
        self.accepted_transfer_syntaxes = match_transfer_syntaxes(patterns)
        self.transfer_syntax_patterns = patterns  # last: the DICOM face rebuilds its contexts when it changes
        return self.accepted_transfer_syntaxes
