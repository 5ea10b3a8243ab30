"""Every name on disk made from untrusted text (an XNAT label, a DICOM value, an uploaded file name), and every
join of such names under a root, in one place.

Two tools:

* ``encode_name`` turns any text into one file or folder name: injective (two different texts never give the same
  name), bounded (at most ``NAME_MAX`` bytes), never ``.`` or ``..``, never a separator, never hidden. Letters,
  digits and harmless ASCII marks are kept as they are, so the usual labels (``SUBJ_01``, ``sess-2``,
  ``scan.nii.gz``) are their own names; every other character becomes ``%XX`` escapes of its UTF-8 bytes (``%``
  itself included, and a leading ``.``); a name that would pass ``NAME_MAX`` is cut and ends with ``%%`` and a
  hash of the whole text (``%%`` never occurs in an uncut name, where ``%`` always starts an escape).
* ``confined_join`` joins names under a root and refuses (``InvalidName``) any result that is not inside the root
  once resolved: absolute parts, ``..``, backslashes, NUL, symbolic links leading out, paths past ``PATH_MAX``.

Labels shown to clients are not names on disk: ``xnat_label`` checks the labels XNAT accepts over REST (letters,
digits, ``_`` and ``-``), ``dicom_label`` makes such a label from a DICOM value (never refused: the instance must
land), ``single_name`` checks the freer names (resource labels, scan IDs, file names) that are escaped on disk,
and ``archive_member`` makes the member names of the zips pacsbox writes safe to extract anywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
from pathlib import Path

from .errors import InvalidName

NAME_MAX = 255  # bytes of one file or folder name (NAME_MAX of Linux and macOS)
PATH_MAX = 4096  # bytes of a whole path (PATH_MAX of Linux)
LABEL_MAX = 64  # characters of a label made from a DICOM value (longer ones are cut and end with a hash)

# Kept as they are on disk: ASCII letters, digits and marks no shell, file system or zip tool treats specially.
# Escaped: separators (/ \), the escape mark %, Windows' reserved : * ? " < > |, the backquote, control
# characters and everything beyond ASCII (so that no file system's Unicode normalisation merges two names).
_KEPT = frozenset(string.ascii_letters + string.digits + " !#$&'()+,-.;=@[]^_{}~")
_PLAIN = re.compile("[" + re.escape("".join(sorted(_KEPT))) + "]+")
_DIGEST_CHARS = 32  # hex digits of SHA-256 closing a cut name: 128 bits, collisions out of reach
_CUT_MARK = "%%"
_XNAT_LABEL = re.compile(r"[A-Za-z0-9_-]+")


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate (which a URL can carry) still has one distinct byte form
    return text.encode("utf-8", "surrogatepass")


def encode_name(text: str) -> str:
    """The file or folder name of ``text``: injective, at most ``NAME_MAX`` bytes, never ``.``, ``..``, hidden or
    holding a separator. InvalidName for the empty text (no name can stand for it)."""
    if not text:
        raise InvalidName("An empty text cannot be a file or folder name")
    if len(text) <= NAME_MAX and _PLAIN.fullmatch(text) and text[0] != ".":
        return text  # the usual label or file name, at C speed: listings encode every name they show
    parts = []
    for position, char in enumerate(text):
        if char in _KEPT and not (position == 0 and char == "."):
            parts.append(char)
        else:
            parts.append("".join(f"%{byte:02X}" for byte in _utf8(char)))
    encoded = "".join(parts)  # ASCII only: characters are bytes
    if len(encoded) <= NAME_MAX:
        return encoded
    room, kept = NAME_MAX - len(_CUT_MARK) - _DIGEST_CHARS, []
    for part in parts:  # whole characters only: never ends inside an escape or a character's escapes
        if room < len(part):
            break
        kept.append(part)
        room -= len(part)
    head = "".join(kept)
    return f"{head}{_CUT_MARK}{hashlib.sha256(_utf8(text)).hexdigest()[:_DIGEST_CHARS]}"


def decode_name(name: str) -> str:
    """The text an uncut ``encode_name`` result stands for (ValueError for a cut name, which holds only a hash of
    the end of its text)."""
    if _CUT_MARK in name:
        raise ValueError(f"{name!r} is a cut name: its text is not all in it")
    data = bytearray()
    position = 0
    while position < len(name):
        if name[position] == "%":
            data.append(int(name[position + 1: position + 3], 16))
            position += 3
        else:
            data.extend(name[position].encode("ascii"))
            position += 1
    return data.decode("utf-8", "surrogatepass")


def is_plain_name(text: str) -> bool:
    """Whether ``text`` is its own name on disk."""
    return bool(text) and encode_name(text) == text


def encode_path(relative: str) -> str:
    """A relative path with ``/`` separators (already checked by ``single_name`` part by part, or by
    ``safe_relative_path``), each part encoded."""
    return "/".join(encode_name(part) for part in relative.split("/"))


def confined_join(root: Path, *parts: str, resolved_root: Path | None = None) -> Path:
    """``root`` joined with ``parts`` (names, or relative paths with ``/`` separators), refused with InvalidName
    unless the result, symbolic links resolved, is inside ``root`` (resolved too) and within ``PATH_MAX``.

    The parts must already be safe names (``encode_name``): an absolute part, an empty one, ``.``, ``..``, a
    backslash or a NUL is refused here too, so that no caller can forget. Returns the joined path as written
    (not resolved), so that it stays under ``root`` as the caller named it. ``resolved_root``: ``root`` already
    resolved by the caller (a saving when many paths share one root)."""
    segments: list[str] = []
    for part in parts:
        if not part or part.startswith("/") or "\\" in part or "\x00" in part:
            raise InvalidName(f"Unsafe path part {part[:80]!r}")
        for segment in part.split("/"):
            if segment in ("", ".", ".."):
                raise InvalidName(f"Unsafe path part {part[:80]!r}")
            if len(_utf8(segment)) > NAME_MAX:
                raise InvalidName(f"A name is at most {NAME_MAX} bytes: {segment[:80]!r}...")
            segments.append(segment)
    joined = root.joinpath(*segments)
    resolved_root = resolved_root or root.resolve()
    resolved = joined.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise InvalidName(f"The path {'/'.join(segments)[:120]!r} leads outside the storage area")
    if len(os.fsencode(resolved)) >= PATH_MAX:
        raise InvalidName(f"The path {'/'.join(segments)[:120]!r}... is too long (at most {PATH_MAX} bytes)")
    return joined


def encoded_join(root: Path, *texts: str, resolved_root: Path | None = None) -> Path:
    """``root`` joined with the names of ``texts`` (``encode_name`` each), confined to ``root``."""
    return confined_join(root, *(encode_name(text) for text in texts), resolved_root=resolved_root)


# -- labels and names that clients see --------------------------------------------------------------------------
def xnat_label(text: str, what: str) -> str:
    """A project ID, subject or session label given over REST: XNAT's label characters (letters, digits, ``_``
    and ``-``), at most ``NAME_MAX`` of them; InvalidName (400) otherwise, as XNAT refuses them ("Invalid
    character in subject label")."""
    if not text:
        raise InvalidName(f"Invalid {what}: it is empty")
    if not _XNAT_LABEL.fullmatch(text):
        raise InvalidName(f"Invalid character in {what} {text[:80]!r}: XNAT labels hold only letters, digits,"
                          " '_' and '-'")
    if len(text) > NAME_MAX:
        raise InvalidName(f"Invalid {what} {text[:80]!r}...: a label is at most {NAME_MAX} characters")
    return text


def dicom_label(text: str, limit: int = LABEL_MAX) -> str:
    """An XNAT label made from a DICOM value (PatientID, PatientName, SeriesNumber, a Patient Comments field):
    letters, digits, ``_`` and ``-`` kept, every other character ``_``; a label over ``limit`` characters is cut
    and ends with ``_`` and 8 hex digits of a hash of the whole value, so that long values that differ only at
    their end stay apart. Empty when nothing is left (the caller picks its fallback). Never refuses: a received
    instance must land whatever its tags say."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", text.strip()).strip("_")
    if len(cleaned) <= limit:
        return cleaned
    return f"{cleaned[: limit - 9]}_{hashlib.sha256(_utf8(text)).hexdigest()[:8]}"


def single_name(text: str, what: str) -> str:
    """A resource label, scan ID or one part of a file path given by a client: one non-empty path segment (no
    ``/`` or ``\\``, not ``.`` or ``..``, no control character), at most ``NAME_MAX`` bytes; InvalidName
    otherwise. Other characters are allowed: ``encode_name`` escapes them on disk."""
    if not text or text in (".", ".."):
        raise InvalidName(f"Invalid {what} {text!r}")
    if "/" in text or "\\" in text:
        raise InvalidName(f"Invalid {what} {text[:80]!r}: it cannot hold '/' or '\\'")
    if any(char < " " or char == "\x7f" for char in text):
        raise InvalidName(f"Invalid {what} {text[:80]!r}: control characters are not allowed")
    if len(_utf8(text)) > NAME_MAX:
        raise InvalidName(f"Invalid {what} {text[:80]!r}...: a name is at most {NAME_MAX} bytes")
    return text


def _safe_member_part(part: str) -> bool:
    return (bool(part.strip(".")) and not any(char in "\\:" or char < " " or char == "\x7f" for char in part)
            and len(_utf8(part)) <= NAME_MAX)


def archive_member(*parts: str) -> str:
    """A member name for a zip pacsbox writes, from parts that may hold ``/``: relative, ``/`` separators only,
    no empty, ``.``-only or ``..`` part, no backslash, drive letter or control character (a part that is not
    so is ``encode_name``-escaped), so that no unzip tool writes it outside the folder it extracts to."""
    kept = []
    for part in parts:
        for segment in part.split("/"):
            if segment:
                kept.append(segment if _safe_member_part(segment) else encode_name(segment))
    if not kept:
        raise InvalidName("An empty archive member name")
    return "/".join(kept)
