"""Smoke test: the spawned server answers with Orthanc's shapes."""


def test_upload_and_browse(spawned_pacsbox, corpus):
    session = spawned_pacsbox.session()
    for name, data in corpus[:5]:
        response = session.post(spawned_pacsbox.url + "/instances", data=data)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["Status"] == "Success"
    assert session.get(spawned_pacsbox.url + "/statistics").json()["CountInstances"] == 5
