"""DIMSE status codes the SCP answers with (PS3.4 Annexes B.2.3 and C.4, PS3.7 C)."""

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
SOP_CLASS_NOT_SUPPORTED = 0x0122  # any request on a presentation context of another service (PS3.7 C.5)
OUT_OF_RESOURCES = 0xA700  # C-STORE: refused, out of resources
CANNOT_UNDERSTAND = 0xC000  # C-STORE: error, cannot understand
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # C-FIND/C-MOVE/C-GET: failure
UNABLE_TO_PROCESS = 0xC000  # C-FIND/C-MOVE/C-GET: failure, unable to process
MOVE_DESTINATION_UNKNOWN = 0xA801
SUBOPERATIONS_WITH_FAILURES = 0xB000  # C-MOVE/C-GET: warning, some sub-operations failed
