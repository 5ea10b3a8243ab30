"""Custom variables (``fields``) through the real xnatpy at every level, as downstream suites set them: the
served schema marks ``fields/field`` and ``parameters/addParam`` with XNAT's ``displayIdentifiers="name"``."""

from __future__ import annotations

import itertools

import pytest

_project_numbers = itertools.count(1)


@pytest.fixture
def tree_of_objects(connection):
    """A project tree of the test's own: fields one test sets never show in another's exact comparison, whatever
    order the tests run in."""
    project_id = f"FIELDS{next(_project_numbers)}"
    project = connection.classes.ProjectData(parent=connection, id=project_id, name=f"Fields {project_id}")
    subject = connection.classes.SubjectData(parent=project, label="fields_subject")
    session = connection.classes.MrSessionData(parent=subject, label="fields_session")
    scan = connection.classes.MrScanData(parent=session, id="1", type="t1w")
    return project, subject, session, scan


def _fresh(connection, tree_of_objects, level: str):
    """The object of a level of the test's tree read anew from the server (no client cache)."""
    connection.clearcache()
    project = connection.projects[tree_of_objects[0].id]
    if level == "project":
        return project
    subject = project.subjects["fields_subject"]
    if level == "subject":
        return subject
    session = subject.experiments["fields_session"]
    return session if level == "session" else session.scans["1"]


@pytest.mark.parametrize("level", ["project", "subject", "session", "scan"])
def test_fields_set_read_and_delete_at_each_level(connection, tree_of_objects, level):
    obj = _fresh(connection, tree_of_objects, level)
    obj.fields["study_arm"] = f"arm-{level}"
    obj.fields["visit"] = "2"
    assert dict(_fresh(connection, tree_of_objects, level).fields) == {"study_arm": f"arm-{level}", "visit": "2"}

    obj = _fresh(connection, tree_of_objects, level)
    obj.fields["visit"] = "3"  # overwrite keeps one entry
    assert dict(_fresh(connection, tree_of_objects, level).fields) == {"study_arm": f"arm-{level}", "visit": "3"}


@pytest.mark.parametrize("level", ["project", "subject", "session"])
def test_fields_delete(connection, tree_of_objects, level):
    # (not at scan level: xnatpy 0.8 doubles the parameters/ segment of the path it deletes a scan field by)
    _fresh(connection, tree_of_objects, level).fields["to_go"] = "x"
    obj = _fresh(connection, tree_of_objects, level)
    del obj.fields["to_go"]
    assert "to_go" not in _fresh(connection, tree_of_objects, level).fields


def test_fields_of_one_object_stay_on_it(connection, tree_of_objects):
    _fresh(connection, tree_of_objects, "subject").fields["only_here"] = "yes"
    assert "only_here" not in _fresh(connection, tree_of_objects, "project").fields
    assert "only_here" not in _fresh(connection, tree_of_objects, "session").fields
    assert _fresh(connection, tree_of_objects, "subject").fields["only_here"] == "yes"
