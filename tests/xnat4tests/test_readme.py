"""xnat4tests' README examples, changed only in their import lines, against pacsbox.

The README's fixture snippet uses ``pytest`` and ``xnat4tests`` without importing them; the inner conftest adds
those two imports (``from pacsbox import xnat4tests``). Its ``xnat_port=9999`` stays unless 9999 is taken, and
the Python API example keeps port 8080 unless it is taken, in which case the default YAML file names another port.
"""

from __future__ import annotations

import tempfile

import pytest

from pacsbox import lifecycle
from tests.support.orthanc_ref import free_port
from tests.xnat4tests.conftest import port_is_free

# the pytester fixture; a sub-folder conftest may not declare plugins (pytest refuses it when run from the root)
pytest_plugins = ["pytester"]


def test_python_api_example(homes):
    if not port_is_free(8080):
        configs = homes / "xnat4tests-home" / "configs"
        configs.mkdir(parents=True)
        (configs / "default.yaml").write_text(f"xnat_port: {free_port()}\n")

    # ---- xnat4tests' README, "Python API" ----
    # Import xnat4tests functions
    from pacsbox.xnat4tests import start_xnat, stop_xnat, connect, Config  # noqa: I001

    config = Config.load("default")

    # Launch the instance (NB: it takes quite while for an XNAT instance to start). If an existing
    # container with the reserved name is already running it is returned instead
    start_xnat(config)

    # Connect to the XNAT instance using XnatPy and run some tests
    with connect(config) as login:
        PROJECT = 'MY_TEST_PROJECT'
        SUBJECT = 'MYSUBJECT'
        SESSION = 'MYSESSION'

        login.put(f'/data/archive/projects/MY_TEST_PROJECT')  # noqa: F541

        # Create subject
        xsubject = login.classes.SubjectData(label=SUBJECT,
                                             parent=login.projects[PROJECT])
        # Create session
        login.classes.MrSessionData(label=SESSION, parent=xsubject)

    assert [p.name for p in (config.xnat_root_dir / "archive").iterdir()] == [PROJECT]

    # Remove the container after you are done (not strictly necessary). To avoid
    # having to wait for XNAT to restart each time before you run your tests, you can
    # skip this line and start_xnat will attempt to use the instance that is already
    # running
    stop_xnat(config)
    # ---- end of the README's example ----

    assert (config.xnat_root_dir / "archive" / PROJECT / "arc001" / SESSION).is_dir()
    with pytest.raises(lifecycle.InstanceNotRunning):
        lifecycle.get_instance(config.docker_container)


README_CONFTEST = '''
import tempfile
from pathlib import Path
import pytest
from pacsbox import xnat4tests
from pacsbox.xnat4tests import start_xnat, stop_xnat, connect, Config

@pytest.fixture(scope="session")
def xnat_config():
    tmp_dir = Path(tempfile.mkdtemp())
    return Config(
        xnat_root_dir=tmp_dir,
        xnat_port=9999,
        docker_image="myrepo_xnat4tests",
        docker_container="myrepo_xnat4tests",
        build_args={
            "xnat_version": "1.8.5",
            "xnat_cs_plugin_version": "3.2.0",
        },
    )

@pytest.fixture(scope="session")
def xnat_uri(xnat_config):
    xnat4tests.start_xnat(xnat_config)
    xnat4tests.add_data("dummydicom")
    yield xnat_config.xnat_uri
    xnat4tests.stop_xnat(xnat_config)
'''

USER_TEST = '''
import xnat

def test_dummydicom_is_there(xnat_uri):
    with xnat.connect(xnat_uri, user="admin", password="admin") as login:
        project = login.projects["dummydicomproject"]
        session = project.subjects["dummydicomsubject"].experiments["dummydicomsession"]
        assert session.id.startswith("Xnat4Tests_E")
        assert len(session.scans) == 3
        assert all(scan.type for scan in session.scans.values())
'''


def test_pytest_fixture_example(homes, pytester, monkeypatch):
    port = 9999 if port_is_free(9999) else free_port()
    monkeypatch.setattr(tempfile, "tempdir", str(homes))  # the fixture's mkdtemp() lands in this test's folder
    pytester.makeconftest(README_CONFTEST.replace("xnat_port=9999", f"xnat_port={port}"))
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)

    # the session fixture stopped its server; the data stay in its xnat_root_dir, in XNAT's layout
    with pytest.raises(lifecycle.InstanceNotRunning):
        lifecycle.get_instance("myrepo_xnat4tests")
    (root,) = [path for path in homes.iterdir() if path.name.startswith("tmp")]
    assert {path.name for path in root.iterdir()} >= {"archive", "prearchive", "build", "home"}
    scans = root / "archive" / "dummydicomproject" / "arc001" / "dummydicomsession" / "SCANS"
    assert len(list(scans.iterdir())) == 3
