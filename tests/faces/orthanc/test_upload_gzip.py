"""POST /instances with ``Content-Encoding: gzip``, as an Orthanc peer sends with ``"Compress": true``."""

from __future__ import annotations

import gzip

from tests.support.pacsbox_proc import RunningPacsbox


def test_gzip_bodies_are_inflated_within_the_upload_limit(corpus):
    _, data = corpus[0]
    with RunningPacsbox({"MaximumUploadSize": 4 * len(data)}) as server:
        session = server.session()
        answer = session.post(server.url + "/instances", data=gzip.compress(data),
                              headers={"Content-Encoding": "gzip"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["Status"] == "Success"
        stored = session.get(f"{server.url}/instances/{answer.json()['ID']}/file", timeout=30).content
        assert stored == data
        broken = session.post(server.url + "/instances", data=b"not gzip", headers={"Content-Encoding": "gzip"},
                              timeout=30)
        assert broken.status_code == 400 and "Cannot decompress" in broken.json()["Details"]
        bomb = gzip.compress(bytes(64 * len(data)))  # small on the wire, far over the limit once inflated
        refused = session.post(server.url + "/instances", data=bomb, headers={"Content-Encoding": "gzip"},
                               timeout=30)
        assert refused.status_code == 413
        assert session.get(server.url + "/statistics", timeout=30).json()["CountInstances"] == 1
