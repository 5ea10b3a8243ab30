"""``python -m pacsbox`` runs the command line; ``serve`` with plain options starts without click
(``cli_serve``: a cold start is timed from the process's first instruction)."""

import sys

from .cli_serve import main as serve_without_click

if sys.argv[1:2] != ["serve"] or not serve_without_click(sys.argv[2:]):
    from .cli import main

    main()
