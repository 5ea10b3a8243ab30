"""Fault injection and the event log: a running server misbehaves on purpose, and shows what it was sent.

``state.Faults`` holds one server's rules (``rules.FaultRules``) and event log (``eventlog.EventLog``). The HTTP faces
meet it through an ASGI middleware (``http``), the DICOM face through small hooks (``dimse``), the archive through
its events (``core.events``, subscribed in ``install``); the routes are in ``routes``, the client of the Python API
in ``client``, the pytest fixtures in ``fixtures``.
"""
