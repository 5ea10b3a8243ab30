"""What the web faces otherwise load on first use, loaded at once: for the warm-start template
(``lifecycle.template``), whose forked servers inherit it, so that their first requests find it ready.

A server started on its own does not call this: it loads each part when a request first needs it.
"""

from __future__ import annotations

import importlib


def warm_web_faces() -> None:
    """Import the XNAT and DICOMweb faces' modules (the XNAT schemas parsed with them) and every Orthanc route's
    handler module, and compile every Orthanc and XNAT route pattern."""
    from .dicomweb import routing as _dicomweb_routing  # noqa: F401  (imported to be inherited)
    from .orthanc.app import routes as orthanc_routes
    from .orthanc.route_table import handler_modules as orthanc_handler_modules
    from .xnat.routing import routes as xnat_routes

    for route in (*orthanc_routes(), *xnat_routes()):
        route.path_regex  # noqa: B018  (compiled on first access, then kept)
    for module in orthanc_handler_modules():
        importlib.import_module(module)
