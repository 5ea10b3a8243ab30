"""JSON answers formatted like Orthanc's (keys sorted, as its JSON library keeps objects)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


def dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=3).encode("utf-8")


def json_response(value: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), status_code=status_code, headers=headers,
                    media_type="application/json; charset=utf-8")
