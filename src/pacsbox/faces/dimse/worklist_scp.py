"""Modality Worklist C-FIND SCP (PS3.4 K.6, 1.2.840.10008.5.1.4.31), as Orthanc 1.10.1 serves it with its sample
worklist plugin (measured against it by tests/faces/dimse/test_worklist_reference.py):

* the identifier first goes through Lua's IncomingWorklistRequestFilter; with ``FilterIssuerAet``, items are
  selected by the identifier with the calling AET as ScheduledStationAETitle of its ScheduledProcedureStepSequence
  (the plugin's code sets it whatever the query held), while the answer holds the keys of the identifier (a
  sequence whose items do not match it is sent empty);
* a file without SpecificCharacterSet is read in the DefaultEncoding (bytes it cannot decode become U+FFFD);
* the ``.wl`` files are read anew for every query, in directory order; a file that is no DICOM is skipped;
* each match is answered with the requested keys it holds (``core.worklist_matching``), in the server's
  DefaultEncoding (characters it cannot represent dropped, as Orthanc converts answers);
* with ``LimitAnswers`` N, the (N+1)th match is still sent, then the C-FIND ends with 0xFE00 (the plugin checks
  the limit after adding an answer, and Orthanc reports an incomplete answer list as cancelled);
* a missing folder, an invalid identifier, a failing Lua filter or disabled worklists end it with 0xC000.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pydicom.charset import python_encoding
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from ...core.archive import Archive, Origin
from ...core.config import Config
from ...core.dicom import ENCODINGS
from ...core.errors import ArchiveError
from ...core.worklist_matching import WorklistMatcher
from ...core.worklists import WorklistFolder
from . import status

LOG = logging.getLogger("pacsbox.dimse")

WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
_SCHEDULED_PROCEDURE_STEP_SEQUENCE = 0x00400100
_SCHEDULED_STATION_AE_TITLE = 0x00400001
_PREGNANCY_STATUS = 0x001021C0
_TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})


def worklist_responses(archive: Archive, config: Config, identifier: Dataset, origin: Origin,
                       is_cancelled=lambda: False) -> Iterator[tuple[int, Dataset | None]]:
    """(status, answer) pairs: one pending answer per match, then a final status unless success (which
    pynetdicom adds after the last pending one)."""
    folder: WorklistFolder | None = getattr(archive, "worklists", None)
    if folder is None or not folder.settings.enabled:
        LOG.error("No worklist handler is installed, cannot handle this C-FIND request")
        yield status.UNABLE_TO_PROCESS, None
        return
    try:
        query = archive.events.filter_worklist(identifier, origin)
        matcher = WorklistMatcher(query, config.CaseSensitivePN)
        # The plugin matches with the restricted query, then Orthanc's core extracts the answer with the query it
        # received (without matching again): the restriction selects items and adds no key to the answers.
        selector = WorklistMatcher(_restricted_to_issuer(query, origin.remote_aet), config.CaseSensitivePN) \
            if folder.settings.filter_issuer_aet else matcher
        default_charset = ENCODINGS.get(archive.settings.default_encoding, "ISO_IR 100")
        character_set = ENCODINGS.get(archive.settings.default_encoding, "ISO_IR 100")
        codec = python_encoding.get(character_set, "latin_1")
        limit = folder.settings.limit_answers
        matched = 0
        for name, item in folder.scan(default_charset):
            if is_cancelled():
                yield status.CANCEL, None
                return
            try:
                if not selector.matches(item):
                    continue
                answer = _in_encoding(matcher.extract(item), character_set, codec)
            except Exception as error:  # a value of this item pydicom cannot read: skipped, as a broken file
                LOG.error("worklist %s skipped: %s", name, error)
                continue
            yield status.PENDING, answer
            if limit and matched >= limit:
                LOG.warning("Too many results for an incoming C-FIND query")
                yield status.CANCEL, None
                return
            matched += 1
    except (FileNotFoundError, NotADirectoryError):
        LOG.error("Inexistent folder while scanning for worklists: %s", folder.path)
        yield status.UNABLE_TO_PROCESS, None
    except ArchiveError as error:
        LOG.warning("worklist C-FIND refused: %s", error.details)
        yield status.UNABLE_TO_PROCESS, None
    except Exception:  # any failure is a final status; the association and the server go on
        LOG.exception("worklist C-FIND failed")
        yield status.UNABLE_TO_PROCESS, None


def _restricted_to_issuer(query: Dataset, issuer_aet: str) -> Dataset:
    """The plugin's ``FilterIssuerAet``: the ScheduledProcedureStepSequence (one item, added if absent) asks for
    the calling AET as ScheduledStationAETitle; an empty PregnancyStatus key is dropped."""
    query = Dataset(query)
    if _SCHEDULED_PROCEDURE_STEP_SEQUENCE not in query:
        query.add_new(_SCHEDULED_PROCEDURE_STEP_SEQUENCE, "SQ", Sequence([Dataset()]))
    steps = query[_SCHEDULED_PROCEDURE_STEP_SEQUENCE].value
    if len(steps) != 1:
        raise ArchiveError("Bad file format: FilterIssuerAet needs one ScheduledProcedureStepSequence item")
    step = Dataset(steps[0])
    step.add_new(_SCHEDULED_STATION_AE_TITLE, "AE", issuer_aet)
    query.add_new(_SCHEDULED_PROCEDURE_STEP_SEQUENCE, "SQ", Sequence([step]))
    if _PREGNANCY_STATUS in query and query[_PREGNANCY_STATUS].is_empty:
        del query[_PREGNANCY_STATUS]
    return query


def _in_encoding(answer: Dataset, character_set: str, codec: str) -> Dataset:
    """The answer in the server's character set: text values keep the characters it can hold."""
    converted = _converted(answer, codec)
    result = Dataset()
    result.SpecificCharacterSet = character_set
    for element in converted:
        result.add(element)
    return result


def _converted(dataset: Dataset, codec: str) -> Dataset:
    converted = Dataset()
    for element in dataset:
        if element.VR == "SQ":
            converted.add_new(element.tag, "SQ", Sequence([_converted(child, codec) for child in element.value]))
        elif element.VR in _TEXT_VRS and element.value not in (None, ""):
            converted.add_new(element.tag, element.VR, _representable(element.value, codec))
        else:
            converted.add(element)
    return converted


def _representable(value, codec: str):
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_representable(v, codec) for v in value]
    text = str(value) if isinstance(value, PersonName) else value
    if not isinstance(text, str):
        return value
    return text.encode(codec, "ignore").decode(codec)
