"""STOW-RS (PS3.18 10.5): not yet served."""

from ...core.errors import Unsupported


async def store(request, **_):
    raise Unsupported("STOW-RS is not implemented yet")
