"""Login and session routes, version and build information, schema documents, search elements."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from ... import __version__
from .auth import GUEST, cookie_token
from .errors import XnatError
from .params import archive_of
from .render import json_response, result_set, text_response
from .schemas import DATA_TYPES, SCHEMA_NAMES, schema_document

XNAT_VERSION = "1.8.10"  # what clients gate features on: >= 1.8.3 keeps xnatpy's Direct-Archive parameters
_STARTED = time.time()


async def login(request: Request) -> Response:
    """PUT/POST /data/services/auth with a form ``username=..&password=..``: a new session token."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    user = (form.get("username") or [""])[0]
    password = (form.get("password") or [""])[0]
    sessions = request.app.state.sessions
    if request.app.state.config.AuthenticationEnabled:
        user = sessions.authenticate(user, password)  # a password, or an alias token's secret
        if user is None:
            raise XnatError(401, "Login attempt failed. Please try again.")
    token = sessions.open(user or GUEST)
    response = text_response(token)
    response.set_cookie("JSESSIONID", token, path="/", httponly=True)
    return response


async def whoami(request: Request) -> Response:
    """GET /data/auth: the line xnatpy checks after logging in."""
    return text_response(f"User '{request.state.user}' is logged in")


async def get_jsession(request: Request) -> Response:
    """GET /data/JSESSION: the current session token (a new one for a Basic-authenticated client)."""
    sessions = request.app.state.sessions
    token = cookie_token(request)
    if not token or sessions.user_of(token) is None:
        token = sessions.open(request.state.user)
    response = text_response(token)
    response.set_cookie("JSESSIONID", token, path="/", httponly=True)
    return response


async def delete_jsession(request: Request) -> Response:
    """DELETE /data/JSESSION: log out."""
    token = cookie_token(request)
    if token:
        request.app.state.sessions.close(token)
    response = text_response("")
    response.delete_cookie("JSESSIONID", path="/")
    return response


async def version(request: Request) -> Response:
    return text_response(XNAT_VERSION)


async def build_info(request: Request) -> Response:
    return json_response({"version": XNAT_VERSION, "buildNumber": "pacsbox", "commit": __version__,
                          "isDirty": "false", "buildDate": "", "sha": "", "application": "pacsbox"})


async def uptime(request: Request) -> Response:
    seconds = int(time.time() - _STARTED)
    return json_response({"days": seconds // 86400, "hours": seconds // 3600 % 24, "minutes": seconds // 60 % 60,
                          "seconds": seconds % 60})


async def site_id(request: Request) -> Response:
    return text_response(request.app.state.config.XnatSiteId)


async def schemas(request: Request) -> Response:
    """GET /xapi/schemas: the names of the schema documents (xnatpy parses each to build its classes)."""
    return json_response(list(SCHEMA_NAMES))


async def schema(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        document = schema_document(name)
    except KeyError:
        raise XnatError(404, f"No schema named {name!r}; the schemas are {', '.join(SCHEMA_NAMES)}") from None
    return Response(document, media_type="application/xml")


_ELEMENT_KINDS = ("project", "subject", "experiment", "scan")


async def search_elements(request: Request) -> Response:
    """GET /data/search/elements: the searchable data types with their counts."""
    catalog = archive_of(request).catalog
    counts: dict[str, int] = {"xnat:projectData": len(catalog.list_projects()),
                              "xnat:subjectData": len(catalog.list_subjects())}
    for experiment in catalog.list_experiments():
        counts[experiment.xsi_type] = counts.get(experiment.xsi_type, 0) + 1
    rows = []
    for data_type in DATA_TYPES.values():
        if data_type.abstract or data_type.kind not in _ELEMENT_KINDS:
            continue
        singular = data_type.xsi_type.split(":", 1)[1]
        rows.append({"ELEMENT_NAME": data_type.xsi_type, "SINGULAR": singular, "PLURAL": singular + "s",
                     "SECURED": "true" if data_type.kind != "scan" else "false",
                     "COUNT": str(counts.get(data_type.xsi_type, 0))})
    return result_set(request, rows, ("ELEMENT_NAME", "SINGULAR", "PLURAL", "SECURED", "COUNT"), honour_columns=False)


# Display fields per kind (XNAT's upper-case field IDs): what a search may ask for and filter on.
DISPLAY_FIELDS = {
    "project": ("ID", "NAME", "SECONDARY_ID", "DESCRIPTION", "INSERT_DATE", "PROJ_MR_COUNT", "PROJ_CT_COUNT",
                "PROJ_PET_COUNT", "PROJ_UT_COUNT", "PROJECT_OWNERS", "PROJECT_ACCESS"),
    "subject": ("SUBJECT_ID", "SUBJECT_LABEL", "PROJECT", "INSERT_DATE"),
    "experiment": ("SESSION_ID", "LABEL", "PROJECT", "SUBJECT_ID", "SUBJECT_LABEL", "DATE", "INSERT_DATE"),
    "scan": ("ID", "TYPE", "SERIES_DESCRIPTION", "IMAGE_SESSION_ID"),
}


async def search_element_fields(request: Request) -> Response:
    element = request.path_params["element"]
    data_type = DATA_TYPES.get(element)
    if data_type is None or data_type.kind not in DISPLAY_FIELDS:
        raise XnatError(404, f"Unknown search element {element!r}")
    rows = [{"FIELD_ID": field, "HEADER": field.lower(), "SUMMARY": "", "TYPE": "string", "REQUIRES_VALUE": "false",
             "DESC": "", "ELEMENT_NAME": element, "SRC": "0"} for field in DISPLAY_FIELDS[data_type.kind]]
    return result_set(request, rows, ("FIELD_ID", "HEADER", "SUMMARY", "TYPE", "REQUIRES_VALUE", "DESC",
                                      "ELEMENT_NAME", "SRC"), honour_columns=False)
