"""What a new user trips over (issue 22), each mistake made as they make it: the message, the exit code, and that
nothing was left running or half-written."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from pacsbox.lifecycle import InstancePaths, list_instances
from tests.lifecycle.conftest import is_gone
from tests.lifecycle.test_cli import pacsbox
from tests.support.orthanc_ref import free_port

BAD = '{"DicomAet": 5, "AuthenticationEnabled": "false", "HttpPort": 70000, "DicomAett": "X",\n' \
      ' "DicomModalities": {"pacs": ["ABCDEFGHIJKLMNOPQ", "127.0.0.1", 104]}}'
ERRORS = [
    "  DicomAet: expected an AE title: 1-16 characters, letters, digits, spaces and punctuation except backslash, "
    "not all spaces, got 5 (an integer)",
    '  AuthenticationEnabled: expected true or false (a JSON boolean), got "false" (a string)',
    "  HttpPort: expected a port number from 0 to 65535 (0 picks a free one), got 70000 (an integer)",
    "  DicomModalities.pacs.AET: expected an AE title: 1-16 characters, letters, digits, spaces and punctuation "
    'except backslash, not all spaces, got "ABCDEFGHIJKLMNOPQ" (a string)',
]
WARNING = "warning: unknown configuration key 'DicomAett' ignored (did you mean 'DicomAet'?)"


def nothing_started(home) -> bool:
    return all(instance is None for _, instance, _ in list_instances(home))


def test_every_configuration_mistake_is_listed_by_check_serve_and_start(home, tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(BAD)
    checked = pacsbox(home, "config", "check", str(config), check=1)
    assert checked.stderr.splitlines() == [WARNING, f"{config}: 4 errors:", *ERRORS]
    report = json.loads(pacsbox(home, "config", "check", str(config), "--json", check=1).stdout)
    assert report["valid"] is False and [error["path"] for error in report["errors"]] == [
        "DicomAet", "AuthenticationEnabled", "HttpPort", "DicomModalities.pacs.AET"]

    served = pacsbox(home, "serve", "--config", str(config), "--data-dir", str(tmp_path / "data"), check=1)
    assert served.stderr.splitlines() == [WARNING, f"Error: the configuration file {config} has 4 errors:", *ERRORS]
    started = pacsbox(home, "start", "bad", "--config", str(config), check=1)
    assert started.stderr.splitlines() == [WARNING, f"Error: the configuration file {config} has 4 errors:", *ERRORS]
    as_json = json.loads(pacsbox(home, "start", "bad", "--config", str(config), "--json", check=1).stdout)
    assert as_json["exit_code"] == 1 and as_json["error"].startswith(f"the configuration file {config} has 4 errors")
    assert nothing_started(home) and not InstancePaths.of("bad", home).root.exists()

    good = tmp_path / "good.json"
    good.write_text('{"DicomAet": "GOOD", "AuthenticationEnabled": false}')
    assert pacsbox(home, "config", "check", str(good)).stdout == f"{good}: valid (2 keys)\n"


def test_the_files_ports_are_used_restart_keeps_them_and_a_changed_configuration_says_what_changed(home, tmp_path):
    http_port, dicom_port = free_port(), free_port()
    config = tmp_path / "ports.json"
    config.write_text(json.dumps({"HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "BOB"}))
    first = json.loads(pacsbox(home, "start", "bob", "--config", str(config), "--json").stdout)
    assert (first["http_port"], first["dicom_port"], first["how"]) == (http_port, dicom_port, "started")

    restarted = json.loads(pacsbox(home, "restart", "bob", "--json").stdout)
    assert (restarted["http_port"], restarted["dicom_port"], restarted["aet"]) == (http_port, dicom_port, "BOB")
    assert is_gone(first["pid"])
    again = json.loads(pacsbox(home, "start", "--name", "bob", "--config", str(config), "--json").stdout)
    assert (again["how"], again["pid"]) == ("reused", restarted["pid"])  # restart kept the configuration

    plain = pacsbox(home, "start", "bob")  # bob's configuration forgotten: said, not silent
    assert plain.stderr == ("note: instance 'bob' runs another configuration; restarting it with this one (data "
                            f'kept): DicomAet "BOB" -> not set; DicomPort {dicom_port} -> not set; HttpPort '
                            f"{http_port} -> not set; HTTP port {http_port} -> any free one; DICOM port {dicom_port} "
                            "-> any free one\n")
    assert "pacsbox instance 'bob' started" in plain.stdout and is_gone(restarted["pid"])


def test_a_mistyped_or_unavailable_data_set_starts_nothing(home):
    typo = pacsbox(home, "start", "--with-data", "dumydicom", check=1)
    assert typo.stderr.startswith("Error: no data set named 'dumydicom': did you mean 'dummydicom'? known: ")
    failure = json.loads(pacsbox(home, "start", "--with-data", "dumydicom", "--json", check=1).stdout)
    assert failure["error"].startswith("no data set named 'dumydicom'") and failure["exit_code"] == 1
    assert nothing_started(home) and not InstancePaths.of("default", home).root.exists()


def test_unknown_instances_and_snapshots_exit_non_zero_with_one_line(home):
    assert pacsbox(home, "stop", "nosuch", check=1).stderr == (
        "Error: no instance named 'nosuch' (none yet; start one with `pacsbox start nosuch`)\n")
    assert pacsbox(home, "status", "nosuch", check=1).stderr.startswith("Error: no instance named 'nosuch'")
    error = json.loads(pacsbox(home, "status", "nosuch", "--json", check=1).stdout)
    assert error == {"error": "no instance named 'nosuch' (none yet; start one with `pacsbox start nosuch`)",
                     "exit_code": 1}
    started = json.loads(pacsbox(home, "start", "snaps", "--json").stdout)
    pacsbox(home, "snapshot", "kept", "snaps")
    restored = pacsbox(home, "restore", "nosuch", "--name", "snaps", check=1)
    assert restored.stderr == ("Error: instance 'snaps' has no snapshot named 'nosuch' (its snapshots: kept; save "
                               "one with `pacsbox snapshot nosuch snaps`)\n")
    assert pacsbox(home, "stop", "snaps", "--name", "snaps").stdout == "stopped 'snaps'\n"
    assert is_gone(started["pid"])


def test_unwritable_folders_and_busy_ports_are_named(home, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    folder = pacsbox(home, "start", "w", "--data-dir", str(blocker / "data"), check=1)
    assert folder.stderr == (f"Error: cannot create the data folder {blocker / 'data'} (--data-dir, data_dir=): "
                             "Not a directory; choose a writable folder\n")
    served = pacsbox(home, "serve", "--data-dir", str(blocker / "data"), check=1)
    assert served.stderr == (f"Error: cannot create the data folder {blocker / 'data'} (--data-dir): Not a "
                             "directory; choose a writable folder\n")
    bad_home = pacsbox(blocker, "start", "h", check=1)  # PACSBOX_HOME names a file
    assert "set PACSBOX_HOME to a writable folder" in bad_home.stderr
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        taken = pacsbox(home, "start", "p", "--dicom-port", str(busy), check=1)
    assert taken.stderr == (f"Error: the DICOM port {busy} (--dicom-port / DicomPort) is in use by another program: "
                            "choose another port, or leave it out for a free one\n")
    assert nothing_started(home)


def test_of_concurrent_starts_exactly_one_says_started(home):
    def start(_: int) -> dict:
        return json.loads(pacsbox(home, "start", "race", "--json").stdout)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(start, range(3)))
    assert sorted(result["how"] for result in results) == ["reused", "reused", "started"]
    assert len({result["pid"] for result in results}) == 1


def test_help_of_every_command_has_an_example() -> None:
    from pacsbox.cli import main

    missing = []
    for name, command in main.commands.items():
        commands = command.commands.items() if hasattr(command, "commands") else [(None, command)]
        for sub, item in commands:
            if "pacsbox " not in (item.help or ""):
                missing.append(f"{name} {sub or ''}".strip())
    assert not missing, f"commands whose help shows no example: {missing}"
    shown = subprocess.run([sys.executable, "-m", "pacsbox", "restart", "--help"], capture_output=True, text=True)
    assert "Example:\n    pacsbox restart mytests" in shown.stdout and "--name NAME" in shown.stdout


def test_a_data_set_whose_extra_is_missing_names_the_pip_line_and_starts_nothing(home):
    # `python -c` with jpeg_ls made unimportable, as on a machine without the compression extra
    code = ("import sys; sys.modules['jpeg_ls'] = None; sys.argv[0] = 'pacsbox'; from pacsbox.cli import main; "
            "main()")
    result = subprocess.run([sys.executable, "-c", code, "start", "--with-data", "compressed"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PACSBOX_HOME": str(home)})
    assert result.returncode == 1, result.stderr
    assert result.stderr == ("Error: The 'compressed' data set needs the encoders of pacsbox's 'compression' extra "
                             "(missing: pyjpegls): pip install 'pacsbox[compression]'\n")
    assert "Traceback" not in result.stderr and nothing_started(home)


def test_json_is_printed_for_usage_mistakes_too(home):
    answer = json.loads(pacsbox(home, "start", "--json", "--http-port", "nope", check=2).stdout)
    assert answer["exit_code"] == 2 and "'nope' is not a valid integer" in answer["error"]
    assert nothing_started(home)


def test_an_unknown_command_with_json_is_refused_in_json(home):
    answer = json.loads(pacsbox(home, "stats", "--json", check=2).stdout)
    assert answer["exit_code"] == 2 and answer["error"].startswith("No such command 'stats'.")
    assert "'status'" in answer["error"]  # click's "did you mean"
    assert "No such command 'stats'" in pacsbox(home, "stats", check=2).stderr  # text without --json


def test_fault_and_event_commands_name_their_instance_as_every_command(home):
    for arguments in (["faults", "ls", "ghost"], ["faults", "ls", "--name", "ghost"], ["events", "ghost"],
                      ["faults", "add", "{}", "ghost"], ["faults", "clear", "ghost"]):
        refused = pacsbox(home, *arguments, check=1)
        assert "no pacsbox instance named 'ghost' is running" in refused.stderr, arguments
    as_json = json.loads(pacsbox(home, "faults", "ls", "ghost", "--json", check=1).stdout)
    assert as_json["exit_code"] == 1 and "'ghost'" in as_json["error"]
    assert "two names given" in pacsbox(home, "events", "ghost", "--name", "other", check=2).stderr


def test_worklists_ls_names_its_instance_as_every_command(home):
    for arguments in (["worklists", "ls", "ghost"], ["worklists", "ls", "--name", "ghost"]):
        assert "no instance named 'ghost'" in pacsbox(home, *arguments, check=1).stderr, arguments
    assert "two names given" in pacsbox(home, "worklists", "ls", "ghost", "--to", "other", check=2).stderr


def test_the_api_says_the_servers_message_not_its_json(home):
    from pacsbox import InstanceError, ensure

    server = ensure("api", home=home)
    try:
        server.restore("nosuch")
    except InstanceError as error:
        assert str(error) == ("POST /pacsbox/snapshots/nosuch/restore on pacsbox instance 'api' answered 404: "
                              "no snapshot named 'nosuch'")
    else:
        raise AssertionError("restoring an unknown snapshot did not raise")
    finally:
        server.stop(grace=5)


def test_serve_names_a_busy_port_and_the_option_that_chose_it(home, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        dicom = pacsbox(home, "serve", "--data-dir", str(tmp_path / "d"), "--http-port", "0", "--dicom-port",
                        str(busy), check=1)
        http = pacsbox(home, "serve", "--data-dir", str(tmp_path / "d"), "--http-port", str(busy), check=1)
    assert dicom.stderr.endswith(f"cannot listen for DICOM on 127.0.0.1:{busy} (DicomPort, --dicom-port): Address "
                                 "already in use\n")
    assert http.stderr.endswith(f"cannot listen on 127.0.0.1:{busy}: Address already in use (HttpPort, "
                                "--http-port)\n")
