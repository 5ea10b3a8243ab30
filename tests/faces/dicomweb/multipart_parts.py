"""Reading multipart/related answers in tests (headers and bytes of each part), independently of the server."""

from __future__ import annotations

import re

import requests


def split(answer: requests.Response) -> tuple[str, list[tuple[dict[str, str], bytes]]]:
    """The Content-Type without its boundary, and each part's headers and body."""
    content_type = answer.headers["content-type"]
    boundary = re.search(r"boundary=\"?([^\";]+)", content_type).group(1).encode()
    chunks = answer.content.split(b"--" + boundary)
    assert chunks[0] == b"" and chunks[-1].strip() == b"--", "no preamble, and a closing delimiter"
    parts = []
    for chunk in chunks[1:-1]:
        head, _, body = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        assert body.endswith(b"\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n"))
        parts.append((headers, body[:-2]))
    return re.sub(r";\s*boundary=.*", "", content_type), parts
