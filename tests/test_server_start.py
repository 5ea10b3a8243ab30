"""Start-up of the server (issue 24): the HTTP port refuses connections until the application can answer them, so
a client polling during start-up is told at once to try again instead of waiting in the backlog."""

from __future__ import annotations

import socket

import pytest
import requests

from pacsbox.server import Server, bind_socket


def test_the_bound_http_socket_refuses_connections_until_it_is_served():
    sock = bind_socket("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        taken = socket.socket()
        with pytest.raises(OSError):  # the port is held all the same: a second server cannot take it
            taken.bind(("127.0.0.1", port))
        taken.close()
    finally:
        sock.close()


def test_once_started_it_answers_and_keeps_answering_across_a_reset_restart():
    with Server() as server:
        auth = server.auth
        assert requests.get(server.url + "/system", auth=auth, timeout=30).status_code == 200
        assert requests.post(server.url + "/tools/reset", auth=auth, timeout=60).status_code == 200
        # the socket listens on through the restart: this request waits in its backlog, then is answered
        assert requests.get(server.url + "/system", auth=auth, timeout=60).status_code == 200
