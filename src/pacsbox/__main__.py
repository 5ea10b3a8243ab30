"""``python -m pacsbox`` runs the command line; ``serve`` with plain options starts without click
(``cli_serve``: a cold start is timed from the process's first instruction)."""

import sys

from .cli_serve import command_line

command_line(sys.argv[1:])
