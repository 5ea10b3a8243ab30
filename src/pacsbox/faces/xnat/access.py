"""XNAT's project access: site administrators, a project's accessibility (private, protected, public) and its
users' roles (Owners, Members, Collaborators), checked before every handler that touches a project.

As on XNAT: a site administrator may do anything; an owner manages the project (its users, accessibility,
prearchive code) and deletes; a member creates and edits data but deletes nothing; a collaborator reads. A
user with no role reads a public project only; protected projects are listed to everybody, private ones only
to their users. Whoever creates a project owns it. Refusals are 403 in plain text, and change nothing.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...core.catalog import Catalog
from ...core.errors import UnknownResource
from . import render
from .errors import XnatError
from .params import archive_of

GROUPS = ("Owners", "Members", "Collaborators")
_GROUP_NAMES = {"owner": "Owners", "owners": "Owners", "member": "Members", "members": "Members",
                "collaborator": "Collaborators", "collaborators": "Collaborators"}
ACCESSIBILITIES = ("private", "protected", "public")
_MAY = {"read": GROUPS, "edit": ("Owners", "Members"), "delete": ("Owners",), "manage": ("Owners",)}


def group_of(text: str) -> str:
    """Owners, Members or Collaborators from any of XNAT's spellings (``owner``, ``Members``, ``P_member``)."""
    name = _GROUP_NAMES.get(text.rsplit("_", 1)[-1].lower())
    if name is None:
        raise XnatError(400, f"Unknown project group {text!r}: use Owners, Members or Collaborators")
    return name


def user_of(request: Request) -> str:
    return getattr(request.state, "user", "") or ""


def enforced(request: Request) -> bool:
    """Whether access is checked for this request: authentication on, and a user who is no site administrator."""
    config = request.app.state.config
    return config.AuthenticationEnabled and user_of(request) not in config.XnatSiteAdministrators


def role(catalog: Catalog, project: str, user: str) -> str | None:
    return catalog.project_setting(project, "users", {}).get(user)


def accessibility(catalog: Catalog, project: str) -> str:
    return catalog.project_setting(project, "accessibility", "private")


def may(request: Request, project: str, action: str) -> bool:
    """Whether the request's user may ``action`` (read, edit, delete, manage) on an existing project."""
    if not enforced(request):
        return True
    catalog = archive_of(request).catalog
    if role(catalog, project, user_of(request)) in _MAY[action]:
        return True
    return action == "read" and accessibility(catalog, project) == "public"


def require(request: Request, project: str, action: str) -> None:
    """403 unless the user may ``action`` on ``project``; a project that does not exist is left to the handler
    (its 404)."""
    try:
        allowed = may(request, project, action)
    except UnknownResource:
        return
    if not allowed:
        raise XnatError(403, f"User {user_of(request)} has no {action} access to project {project}")


def visible(request: Request, project: str) -> bool:
    """Whether a project shows in the user's project listing (protected ones show to everybody)."""
    return may(request, project, "read") or accessibility(archive_of(request).catalog, project) == "protected"


def readable_projects(request: Request) -> set[str] | None:
    """The projects whose data the user may read; None for all (administrators, no authentication)."""
    if not enforced(request):
        return None
    catalog = archive_of(request).catalog
    return {p.id for p in catalog.list_projects() if may(request, p.id, "read")}


# -- the check before each handler ------------------------------------------------------------------------
_MANAGED_SUFFIXES = ("/users", "/accessibility", "/prearchive_code")


def _project_of(request: Request) -> str | None:
    params = request.path_params
    catalog = archive_of(request).catalog
    try:
        if "project" in params:
            return params["project"]
        if "experiment" in params and "subject" not in params:
            return catalog.experiment(None, params["experiment"]).project
        if "subject" in params:
            return catalog.subject(None, params["subject"]).project
    except UnknownResource:
        return None
    return None


def _action(request: Request, project: str) -> str:
    params, method = request.path_params, request.method
    path = request.url.path
    is_project = "subject" not in params and "experiment" not in params and "resource" not in params
    if is_project and any(f"/{project}{suffix}" in path for suffix in _MANAGED_SUFFIXES):
        return "read" if method == "GET" else "manage"
    if method in ("GET", "HEAD"):
        return "read"
    if method == "DELETE":
        return "delete"
    if is_project and path.rstrip("/").endswith(f"/projects/{project}"):
        return "manage"  # a project's own fields
    return "edit"


def guard(request: Request) -> None:
    """The access check of a route that names a project, a subject or an experiment."""
    if not enforced(request):
        return
    project = _project_of(request)
    if project is None:
        return
    if not archive_of(request).catalog.has_project(project):
        return  # a new project: any user may create one (and owns it); below it, the handler's 404
    require(request, project, _action(request, project))


# -- routes -----------------------------------------------------------------------------------------------
def _user_row(request: Request, login: str, group: str = "", project: str = "") -> dict[str, Any]:
    users = list(request.app.state.config.RegisteredUsers)
    row = {"login": login, "firstname": login, "lastname": "", "email": f"{login}@localhost",
           "xdat_user_id": str(users.index(login) + 1) if login in users else "", "enabled": "1"}
    if group:
        row.update({"displayname": group, "GROUP_ID": f"{project}_{group.lower().rstrip('s')}"})
    return row


async def list_users(request: Request) -> Response:
    """GET /data/users: the site's users (RegisteredUsers)."""
    rows = [_user_row(request, login) for login in request.app.state.config.RegisteredUsers]
    return render.result_set(request, rows, ("login", "firstname", "lastname", "email", "xdat_user_id", "enabled"),
                             title="Users")


async def xapi_users(request: Request) -> Response:
    """GET /xapi/users: the logins."""
    return render.json_response(list(request.app.state.config.RegisteredUsers))


async def xapi_user(request: Request) -> Response:
    login = request.path_params["login"]
    if login not in request.app.state.config.RegisteredUsers:
        raise XnatError(404, f"Unknown user {login!r}")
    row = _user_row(request, login)
    return render.json_response({"username": login, "firstName": login, "lastName": "", "email": row["email"],
                                 "id": int(row["xdat_user_id"]), "enabled": True, "verified": True,
                                 "admin": login in request.app.state.config.XnatSiteAdministrators})


async def access_projects(request: Request) -> Response:
    """GET /xapi/access/projects: the projects the user has a role in, with that role."""
    catalog = archive_of(request).catalog
    user = user_of(request)
    rows = []
    for project in catalog.list_projects():
        group = role(catalog, project.id, user)
        if group is not None:
            rows.append({"ID": project.id, "name": project.fields["data"].get("name", project.id), "role": group,
                         "secondary_ID": project.fields["data"].get("secondary_ID", project.id)})
    return render.json_response(rows)


async def project_users(request: Request) -> Response:
    project = request.path_params["project"]
    catalog = archive_of(request).catalog
    members = catalog.project_setting(project, "users", {})
    rows = [_user_row(request, login, group, project) for login, group in members.items()]
    return render.result_set(request, rows, ("login", "displayname", "GROUP_ID", "firstname", "lastname", "email",
                                             "xdat_user_id", "enabled"), title="Users")


async def put_project_user(request: Request) -> Response:
    project, login = request.path_params["project"], request.path_params["login"]
    group = group_of(request.path_params["group"])
    catalog = archive_of(request).catalog
    catalog.project(project)
    if login not in request.app.state.config.RegisteredUsers:
        raise XnatError(404, f"Unknown user {login!r}")
    members = dict(catalog.project_setting(project, "users", {}))
    members[login] = group
    await run_in_threadpool(catalog.set_project_setting, project, "users", members)
    return render.text_response("")


async def delete_project_user(request: Request) -> Response:
    project, login = request.path_params["project"], request.path_params["login"]
    catalog = archive_of(request).catalog
    members = dict(catalog.project_setting(project, "users", {}))
    if members.get(login) != group_of(request.path_params["group"]):
        raise XnatError(404, f"User {login} is not in the group {request.path_params['group']} of {project}")
    del members[login]
    await run_in_threadpool(catalog.set_project_setting, project, "users", members)
    return render.text_response("")


async def get_accessibility(request: Request) -> Response:
    return render.text_response(accessibility(archive_of(request).catalog, request.path_params["project"]))


async def put_accessibility(request: Request) -> Response:
    value = request.path_params["value"].lower()
    if value not in ACCESSIBILITIES:
        raise XnatError(400, f"Unknown accessibility {value!r}: use private, protected or public")
    catalog = archive_of(request).catalog
    await run_in_threadpool(catalog.set_project_setting, request.path_params["project"], "accessibility", value)
    return render.text_response(value)


async def make_owner(request: Request, project: str) -> None:
    """The creator of a project owns it."""
    user = user_of(request)
    if request.app.state.config.AuthenticationEnabled and user in request.app.state.config.RegisteredUsers:
        catalog = archive_of(request).catalog
        await run_in_threadpool(catalog.set_project_setting, project, "users",
                                {**catalog.project_setting(project, "users", {}), user: "Owners"})
