"""WADO-URI (PS3.18 9): not yet served."""

from ...core.errors import Unsupported


async def retrieve(request, **_):
    raise Unsupported("WADO-URI is not implemented yet")
