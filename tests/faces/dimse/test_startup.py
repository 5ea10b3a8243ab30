"""The DICOM port at start: it listens without pynetdicom or pydicom, loads them on the first association (not on
a bare connection, as a readiness probe makes), and every association made while they load is served (dcmtk's
echoscu, pynetdicom SCUs on both association paths)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest
from pynetdicom import AE, build_role
from pynetdicom.sop_class import CTImageStorage, Verification

from pacsbox.core.archive import Archive
from pacsbox.core.config import Config
from pacsbox.faces.dimse.scp import DicomServer
from tests.support import dcmtk
from tests.support.dimse import SCU_AET
from tests.support.pacsbox_proc import RunningPacsbox

AT_ONCE = 16  # associations opened together on a server that has loaded nothing yet

# Opens an archive, then starts the DICOM face as the server does (its SCP and the archive's SCU) and reports the
# modules this added; after the test's association, whether pynetdicom is loaded.
_PROBE = """
import json, sys
from pacsbox.core.config import Config
from pacsbox.core.assembly import open_archive
archive = open_archive(Config(StorageDirectory=sys.argv[1], DicomPort=0, DicomAlwaysAllowEcho=True))
before = set(sys.modules)
from pacsbox.faces.dimse.scp import DicomServer
from pacsbox.faces.dimse.scu import DicomClient
archive.remote = DicomClient(archive, archive.config)
server = DicomServer(archive, archive.config)
port = server.start()
added = sorted(name for name in set(sys.modules) - before if name.split(".")[0] in ("pynetdicom", "pydicom"))
print(json.dumps({"port": port, "added": added}), flush=True)
for _ in sys.stdin:  # one line per question of the test
    print(json.dumps({"pynetdicom": "pynetdicom" in sys.modules}), flush=True)
server.stop()
archive.close()
"""


def test_the_port_listens_without_pynetdicom_and_loads_it_on_the_first_association(tmp_path):
    probe = subprocess.Popen([sys.executable, "-c", _PROBE, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        started = json.loads(probe.stdout.readline())
        assert started["added"] == []
        with socket.create_connection(("127.0.0.1", started["port"]), timeout=10):
            pass  # a readiness probe: connected, closed without a word
        time.sleep(0.2)
        assert _ask(probe) == {"pynetdicom": False}
        assert _echo(started["port"], "PACSBOX") == 0x0000
        assert _ask(probe) == {"pynetdicom": True}
        probe.stdin.close()
        assert probe.wait(60) == 0
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()


@pytest.fixture
def fresh_server():
    """A server that no association has reached yet (a new one per test: its first association loads the SCP), in
    a fresh interpreter (cold: one forked from the suite's template would have pynetdicom loaded already)."""
    with RunningPacsbox({"DicomModalities": {"scu": [SCU_AET, "127.0.0.1", 1]}}, cold=True) as server:
        yield server


def test_echoscu_is_answered_by_a_freshly_started_server(fresh_server, needs_dcmtk):
    result = dcmtk.run("echoscu", "-aet", SCU_AET, "-aec", fresh_server.aet, "127.0.0.1", fresh_server.dicom_port)
    assert result.returncode == 0, result.stdout + result.stderr


def test_associations_opened_at_once_at_start_all_succeed(fresh_server):
    """Half on the direct path (verification only), half on pynetdicom's (a role selection asks for it)."""
    statuses: list[int | None] = [None] * AT_ONCE
    start = threading.Barrier(AT_ONCE)

    def associate(number: int) -> None:
        start.wait()
        statuses[number] = _echo(fresh_server.dicom_port, fresh_server.aet, extended=number % 2 == 1)

    threads = [threading.Thread(target=associate, args=(number,)) for number in range(AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [0x0000] * AT_ONCE


def test_stopping_before_any_association_frees_the_port(tmp_path):
    config = Config(StorageDirectory=str(tmp_path), DicomPort=0)
    archive = Archive(config)
    server = DicomServer(archive, config)
    try:
        port = server.start()
        server.stop()
        assert not [t for t in threading.enumerate() if t.name == f"pacsbox-dicom-{port}"]
        with socket.socket() as again:  # the port is free again at once, as a restart on it needs
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
    finally:
        server.stop()
        archive.close()


def _ask(probe: subprocess.Popen) -> dict:
    probe.stdin.write("?\n")
    probe.stdin.flush()
    return json.loads(probe.stdout.readline())


def _echo(port: int, called_aet: str, *, extended: bool = False) -> int | None:
    """A C-ECHO's status on a new association (None: no association); ``extended`` adds an SCP/SCU role selection,
    which pacsbox serves through pynetdicom rather than its direct path."""
    ae = AE(ae_title=SCU_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60  # the first association waits for the load
    ae.add_requested_context(Verification)
    roles = None
    if extended:
        ae.add_requested_context(CTImageStorage)
        roles = [build_role(CTImageStorage, scp_role=True)]
    assoc = ae.associate("127.0.0.1", port, ae_title=called_aet, ext_neg=roles)
    if not assoc.is_established:
        return None
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()
