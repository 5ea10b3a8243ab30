"""WADO-RS metadata answered again from the kept parts: the same bytes, each under the URL root it was asked by."""

from __future__ import annotations

import json

DICOM_JSON = {"Accept": "application/dicom+json"}


def test_a_second_answer_is_the_same_bytes_and_follows_the_host(loaded_pacsbox):
    session = loaded_pacsbox.session()
    studies = [answer["0020000D"]["Value"][0]
               for answer in session.get(f"{loaded_pacsbox.url}/dicom-web/studies", headers=DICOM_JSON).json()]
    assert studies
    for study in studies:
        url = f"{loaded_pacsbox.url}/dicom-web/studies/{study}/metadata"
        first, second = (session.get(url, headers=DICOM_JSON) for _ in range(2))
        assert first.status_code == second.status_code == 200
        assert first.content == second.content
        assert first.content == json.dumps(json.loads(first.content)).encode()  # json.dumps' own formatting
        # another Host: the BulkDataURIs name it, not the one the kept parts were first made for
        other = session.get(url, headers={**DICOM_JSON, "Host": "elsewhere.test:8042"})
        assert other.status_code == 200
        assert other.content == first.content.replace(loaded_pacsbox.url.removeprefix("http://").encode(),
                                                      b"elsewhere.test:8042")
