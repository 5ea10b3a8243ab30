"""``python -m pacsbox`` runs the command line."""

from .cli import main

main()
