"""Users and access through the real clients, with a second, non-admin user: project roles (Owners, Members,
Collaborators), accessibility, listings that hide private projects, refusals (403, nothing changed), alias
tokens (issue, log in with them, invalidate)."""

from __future__ import annotations

import pytest
import xnat
from pyxnat import Interface
from xnat.exceptions import XNATLoginFailedError, XNATResponseError

from tests.support.dicomgen import zip_of
from tests.support.pacsbox_proc import RunningPacsbox

from .conftest import SITE_ID
from .helpers import mr_session

USERS = {"admin": "admin", "alice": "alice-pw", "bob": "bob-pw"}


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"XnatSiteId": SITE_ID, "RegisteredUsers": USERS}) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server):
    with xnat.connect(server.url, user="admin", password="admin", loglevel="ERROR") as session:
        project = session.classes.ProjectData(parent=session, id="PRIV", name="Private")
        subject = session.classes.SubjectData(parent=project, label="p_subject")
        session.classes.MrSessionData(parent=subject, label="p_session")
        session.classes.ProjectData(parent=session, id="OPEN", name="Open")
        session.put("/data/projects/OPEN/accessibility/public")
        yield session


def _connect(server, user):
    return xnat.connect(server.url, user=user, password=USERS[user], loglevel="ERROR")


def test_users_listings(admin):
    assert sorted(admin.users) == ["admin", "alice", "bob"]
    assert admin.get_json("/xapi/users") == ["admin", "alice", "bob"]
    assert admin.projects["PRIV"].access_level == "Owners"  # the creator owns the project


def test_a_user_without_a_role_is_refused_and_changes_nothing(admin, server):
    with _connect(server, "alice") as alice:
        assert "PRIV" not in alice.projects  # private projects are hidden
        assert "OPEN" in alice.projects  # public ones are listed and readable
        assert alice.get_json("/data/archive/experiments")["ResultSet"]["Result"] == []
        with pytest.raises(XNATResponseError, match="403"):
            alice.get("/data/projects/PRIV/subjects/p_subject")
        with pytest.raises(XNATResponseError, match="403"):
            alice.put("/data/projects/PRIV/subjects/alice_subject")
        with pytest.raises(XNATResponseError, match="403"):
            alice.put("/data/projects/OPEN/subjects/alice_subject")  # public is read-only
        with pytest.raises(XNATResponseError, match="403"):
            alice.delete("/data/projects/PRIV")
        with pytest.raises(XNATResponseError, match="403"):
            alice.put("/data/projects/PRIV/users/Owners/alice")
    admin.clearcache()
    assert [s.label for s in admin.projects["PRIV"].subjects.values()] == ["p_subject"]
    assert "alice" not in admin.projects["PRIV"].users


def test_roles(admin, server):
    admin.projects["PRIV"].set_access("alice", "collaborator")
    admin.projects["PRIV"].set_access("bob", "member")
    users = admin.projects["PRIV"].users
    assert {login: user.access_level for login, user in users.items()} == {
        "admin": "Owners", "alice": "Collaborators", "bob": "Members"}
    with _connect(server, "alice") as alice:
        assert alice.projects["PRIV"].access_level == "Collaborators"
        assert [s.label for s in alice.projects["PRIV"].subjects.values()] == ["p_subject"]
        with pytest.raises(XNATResponseError, match="403"):
            alice.put("/data/projects/PRIV/subjects/by_alice")
    with _connect(server, "bob") as bob:
        assert bob.projects["PRIV"].access_level == "Members"
        bob.put("/data/projects/PRIV/subjects/by_bob")  # members create
        with pytest.raises(XNATResponseError, match="403"):
            bob.delete("/data/projects/PRIV/subjects/by_bob")  # but do not delete
        with pytest.raises(XNATResponseError, match="403"):
            bob.put("/data/projects/PRIV/accessibility/public")  # nor manage the project
        bob.classes.ProjectData(parent=bob, id="BOBS", name="Bob's")  # any user creates a project, and owns it
        assert bob.get_json("/xapi/access/projects") == [
            {"ID": "BOBS", "name": "Bob's", "role": "Owners", "secondary_ID": "BOBS"},
            {"ID": "PRIV", "name": "Private", "role": "Members", "secondary_ID": "PRIV"}]
    admin.projects["PRIV"].remove_access(admin.projects["PRIV"].users["alice"])
    with _connect(server, "alice") as alice:
        assert "PRIV" not in alice.projects


def test_pyxnat_second_user(admin, server):
    interface = Interface(server=server.url, user="alice", password=USERS["alice"])
    try:
        assert "PRIV" not in interface.select.projects().get()
        assert "OPEN" in interface.select.projects().get()
        # searches and the prearchive show nothing of a project the user may not read
        found = interface.select("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL", "xnat:subjectData/PROJECT"]
                                 ).where([("xnat:subjectData/PROJECT", "=", "PRIV"), "AND"])
        assert list(found) == []
        as_admin = Interface(server=server.url, user="admin", password="admin")
        try:  # the same search finds the subject for an administrator
            rows = as_admin.select("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL",
                                                        "xnat:subjectData/PROJECT"]
                                   ).where([("xnat:subjectData/PROJECT", "=", "PRIV"), "AND"])
            assert "p_subject" in [row["subject_label"] for row in rows]
        finally:
            as_admin.disconnect()
        admin.put("/data/projects/PRIV/prearchive_code/0")
        admin.services.import_(data=zip_of(mr_session("priv-pre", series=1, per_series=1)), project="PRIV",
                               content_type="application/zip")
        assert admin.prearchive.sessions(project="PRIV")
        assert interface.manage.prearchive.get() == []
    finally:
        interface.disconnect()


def test_bad_group_and_unknown_user(admin):
    with pytest.raises(XNATResponseError, match="400"):
        admin.put("/data/projects/PRIV/users/Janitors/alice")
    with pytest.raises(XNATResponseError, match="404"):
        admin.put("/data/projects/PRIV/users/Members/nobody")
    with pytest.raises(XNATResponseError, match="400"):
        admin.put("/data/projects/PRIV/accessibility/everybody")


def test_tokens(admin, server):
    token = admin.services.issue_token()
    assert token.alias and token.secret
    with xnat.connect(server.url, user=token.alias, password=token.secret, loglevel="ERROR") as by_token:
        assert by_token.logged_in_user == "admin"
        assert "PRIV" in by_token.projects
    interface = Interface(server=server.url, user=token.alias, password=token.secret)
    try:
        assert "PRIV" in interface.select.projects().get()
    finally:
        interface.disconnect()
    assert admin.get_json(f"/data/services/tokens/validate/{token.alias}/{token.secret}") == {"valid": "admin"}
    for_alice = admin.services.issue_token("alice")
    with xnat.connect(server.url, user=for_alice.alias, password=for_alice.secret, loglevel="ERROR") as as_alice:
        assert as_alice.logged_in_user == "alice"
        with pytest.raises(XNATResponseError, match="403"):
            as_alice.services.issue_token("admin")  # only administrators issue tokens for others
    admin.get(f"/data/services/tokens/invalidate/{token.alias}/{token.secret}")
    with pytest.raises(XNATLoginFailedError):
        xnat.connect(server.url, user=token.alias, password=token.secret, loglevel="CRITICAL")
    with pytest.raises(XNATLoginFailedError):
        xnat.connect(server.url, user=for_alice.alias, password="wrong", loglevel="CRITICAL")
