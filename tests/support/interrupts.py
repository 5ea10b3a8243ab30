"""Processes that a test interrupts with SIGINT, as Ctrl-C in a terminal would."""

from __future__ import annotations

import signal


def sigint_as_in_a_terminal() -> None:
    """A ``preexec_fn``: the child starts with SIGINT at its default action, which Python turns into
    KeyboardInterrupt.

    A suite started in the background by a shell without job control (``command &`` in a script, as some CI runners
    and nohup wrappers start it) runs with SIGINT ignored, and every process it starts inherits that; Python then
    leaves it ignored, and the Ctrl-C a test sends would do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
