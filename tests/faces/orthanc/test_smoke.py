"""Smoke test: the spawned server answers with Orthanc's shapes."""


def test_upload_and_browse(pacsbox_server, corpus):
    session = pacsbox_server.session()
    for name, data in corpus[:5]:
        response = session.post(pacsbox_server.url + "/instances", data=data)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["Status"] == "Success"
    assert session.get(pacsbox_server.url + "/statistics").json()["CountInstances"] == 5
