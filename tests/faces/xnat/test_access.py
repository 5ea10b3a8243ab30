"""Users and access through the real clients, with a second, non-admin user: project roles (Owners, Members,
Collaborators), accessibility, listings that hide private projects, refusals (403, nothing changed), alias
tokens (issue, log in with them, invalidate)."""

from __future__ import annotations

import itertools

import pytest
import xnat
from pyxnat import Interface
from xnat.exceptions import XNATLoginFailedError, XNATResponseError

from tests.support.dicomgen import zip_of
from tests.support.pacsbox_proc import RunningPacsbox

from .conftest import SITE_ID
from .helpers import mr_session

USERS = {"admin": "admin", "alice": "alice-pw", "bob": "bob-pw"}
_private_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def server():
    with RunningPacsbox({"XnatSiteId": SITE_ID, "RegisteredUsers": USERS}) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server):
    with xnat.connect(server.url, user="admin", password="admin", loglevel="ERROR") as session:
        session.classes.ProjectData(parent=session, id="OPEN", name="Open")
        session.put("/data/projects/OPEN/accessibility/public")
        yield session


@pytest.fixture
def private(admin):
    """A private project of the test's own, owned by admin, with one subject and session: the roles, subjects and
    prearchive sessions one test adds never show in another's exact listings, whatever order the tests run in."""
    project_id = f"PRIV{next(_private_numbers)}"
    project = admin.classes.ProjectData(parent=admin, id=project_id, name="Private")
    subject = admin.classes.SubjectData(parent=project, label="p_subject")
    admin.classes.MrSessionData(parent=subject, label="p_session")
    return project_id


def _connect(server, user):
    return xnat.connect(server.url, user=user, password=USERS[user], loglevel="ERROR")


def test_users_listings(admin, private):
    assert sorted(admin.users) == ["admin", "alice", "bob"]
    assert admin.get_json("/xapi/users") == ["admin", "alice", "bob"]
    assert admin.projects[private].access_level == "Owners"  # the creator owns the project


def test_a_user_without_a_role_is_refused_and_changes_nothing(admin, server, private):
    with _connect(server, "alice") as alice:
        assert private not in alice.projects  # private projects are hidden
        assert "OPEN" in alice.projects  # public ones are listed and readable
        assert alice.get_json("/data/archive/experiments")["ResultSet"]["Result"] == []
        with pytest.raises(XNATResponseError, match="403"):
            alice.get(f"/data/projects/{private}/subjects/p_subject")
        with pytest.raises(XNATResponseError, match="403"):
            alice.put(f"/data/projects/{private}/subjects/alice_subject")
        with pytest.raises(XNATResponseError, match="403"):
            alice.put("/data/projects/OPEN/subjects/alice_subject")  # public is read-only
        with pytest.raises(XNATResponseError, match="403"):
            alice.delete(f"/data/projects/{private}")
        with pytest.raises(XNATResponseError, match="403"):
            alice.put(f"/data/projects/{private}/users/Owners/alice")
    admin.clearcache()
    assert [s.label for s in admin.projects[private].subjects.values()] == ["p_subject"]
    assert "alice" not in admin.projects[private].users


def test_roles(admin, server, private):
    admin.projects[private].set_access("alice", "collaborator")
    admin.projects[private].set_access("bob", "member")
    users = admin.projects[private].users
    assert {login: user.access_level for login, user in users.items()} == {
        "admin": "Owners", "alice": "Collaborators", "bob": "Members"}
    with _connect(server, "alice") as alice:
        assert alice.projects[private].access_level == "Collaborators"
        assert [s.label for s in alice.projects[private].subjects.values()] == ["p_subject"]
        with pytest.raises(XNATResponseError, match="403"):
            alice.put(f"/data/projects/{private}/subjects/by_alice")
    with _connect(server, "bob") as bob:
        assert bob.projects[private].access_level == "Members"
        bob.put(f"/data/projects/{private}/subjects/by_bob")  # members create
        with pytest.raises(XNATResponseError, match="403"):
            bob.delete(f"/data/projects/{private}/subjects/by_bob")  # but do not delete
        with pytest.raises(XNATResponseError, match="403"):
            bob.put(f"/data/projects/{private}/accessibility/public")  # nor manage the project
        bob.classes.ProjectData(parent=bob, id="BOBS", name="Bob's")  # any user creates a project, and owns it
        assert bob.get_json("/xapi/access/projects") == [
            {"ID": "BOBS", "name": "Bob's", "role": "Owners", "secondary_ID": "BOBS"},
            {"ID": private, "name": "Private", "role": "Members", "secondary_ID": private}]
    admin.projects[private].remove_access(admin.projects[private].users["alice"])
    with _connect(server, "alice") as alice:
        assert private not in alice.projects


def test_pyxnat_second_user(admin, server, private):
    interface = Interface(server=server.url, user="alice", password=USERS["alice"])
    try:
        assert private not in interface.select.projects().get()
        assert "OPEN" in interface.select.projects().get()
        # searches and the prearchive show nothing of a project the user may not read
        found = interface.select("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL", "xnat:subjectData/PROJECT"]
                                 ).where([("xnat:subjectData/PROJECT", "=", private), "AND"])
        assert list(found) == []
        as_admin = Interface(server=server.url, user="admin", password="admin")
        try:  # the same search finds the subject for an administrator
            rows = as_admin.select("xnat:subjectData", ["xnat:subjectData/SUBJECT_LABEL",
                                                        "xnat:subjectData/PROJECT"]
                                   ).where([("xnat:subjectData/PROJECT", "=", private), "AND"])
            assert "p_subject" in [row["subject_label"] for row in rows]
        finally:
            as_admin.disconnect()
        admin.put(f"/data/projects/{private}/prearchive_code/0")
        admin.services.import_(data=zip_of(mr_session("priv-pre", series=1, per_series=1)), project=private,
                               content_type="application/zip")
        assert admin.prearchive.sessions(project=private)
        assert interface.manage.prearchive.get() == []
    finally:
        interface.disconnect()


def test_bad_group_and_unknown_user(admin, private):
    with pytest.raises(XNATResponseError, match="400"):
        admin.put(f"/data/projects/{private}/users/Janitors/alice")
    with pytest.raises(XNATResponseError, match="404"):
        admin.put(f"/data/projects/{private}/users/Members/nobody")
    with pytest.raises(XNATResponseError, match="400"):
        admin.put(f"/data/projects/{private}/accessibility/everybody")


def test_tokens(admin, server, private):
    token = admin.services.issue_token()
    assert token.alias and token.secret
    with xnat.connect(server.url, user=token.alias, password=token.secret, loglevel="ERROR") as by_token:
        assert by_token.logged_in_user == "admin"
        assert private in by_token.projects
    interface = Interface(server=server.url, user=token.alias, password=token.secret)
    try:
        assert private in interface.select.projects().get()
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
