"""WADO-RS (PS3.18 10.4): not yet served."""

from ...core.errors import Unsupported


async def retrieve(request, **_):
    raise Unsupported("WADO-RS is not implemented yet")


metadata = frames = bulk = retrieve
