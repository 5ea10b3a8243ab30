"""Two managed servers made each other's DICOM modality and HTTP peer: the two-node set-up of Orthanc's own
integration tests, with pacsbox or the real Orthanc on either side."""

from __future__ import annotations

from .instance import Instance


def link(first: Instance, second: Instance, *, peers: bool = True) -> None:
    """Register each server in the other's ``/modalities`` (under the other's instance name, all operations
    allowed) and, with ``peers``, in its ``/peers`` — at run time, through the REST API both engines share."""
    for local, remote in ((first, second), (second, first)):
        local.call("PUT", f"/modalities/{remote.name}", {"AET": remote.aet, "Host": remote.dicom_host,
                                                         "Port": remote.dicom_port})
        if peers:
            user, password = remote.auth
            local.call("PUT", f"/peers/{remote.name}", {"Url": remote.url + "/", "Username": user,
                                                        "Password": password})
