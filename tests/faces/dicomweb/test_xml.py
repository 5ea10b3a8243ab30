"""The DICOM XML model (PS3.19): QIDO-RS and metadata answers as multipart/related; type="application/dicom+xml",
the STOW-RS answer as one document, checked against the JSON answers and against the plugin's STOW answer."""

from __future__ import annotations

from xml.etree import ElementTree

import requests

from .multipart_parts import split
from .stow_bodies import STOW_TYPE, body, instance
from .test_wado import MF_PATH

XML_PARTS = 'multipart/related; type="application/dicom+xml"'
NS = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"


def _as_json_like(document: bytes) -> dict:
    """A NativeDicomModel read back into the DICOM JSON model's shape (values as text)."""
    return _attributes(ElementTree.fromstring(document))


def _attributes(node) -> dict:
    model = {}
    for attribute in node.findall(f"{NS}DicomAttribute"):
        entry: dict = {"vr": attribute.get("vr")}
        values = []
        for child in attribute:
            if child.tag == f"{NS}Value":
                if attribute.get("vr") == "SQ":  # the plugin 1.7 writes an empty <Value/> after each item
                    continue
                values.append(child.text or "")
            elif child.tag == f"{NS}Item":
                values.append(_attributes(child))
            elif child.tag == f"{NS}PersonName":
                values.append({group.tag.removeprefix(NS): "^".join(c.text or "" for c in group)
                               for group in child if len(group)})
            elif child.tag == f"{NS}BulkData":
                entry["BulkDataURI"] = child.get("uri")
        if values:
            entry["Value"] = values
        model[attribute.get("tag")] = entry
    return model


def _textual(model: dict) -> dict:
    """The JSON model with every plain value as text, for comparison with XML."""
    out = {}
    for key, entry in model.items():
        copy = dict(entry)
        if "Value" in entry:
            copy["Value"] = [_textual(value) if entry["vr"] == "SQ" else
                             ({k: v for k, v in value.items() if v.strip("^")} if entry["vr"] == "PN" else
                              str(value)) for value in entry["Value"]]
        out[key] = copy
    return out


def test_search_and_metadata_in_xml_match_the_json(loaded_pacsbox):
    session = loaded_pacsbox.session()
    for path in ["studies", "series?PatientID=PBX-001", f"{MF_PATH}/metadata", "studies?PatientID=PBX-UTF8"]:
        url = f"{loaded_pacsbox.url}/dicom-web/{path}"
        in_json = session.get(url).json()
        answer = session.get(url, headers={"Accept": XML_PARTS})
        content_type, parts = split(answer)
        assert answer.status_code == 200 and content_type == XML_PARTS
        assert all(headers["Content-Type"] == "application/dicom+xml" for headers, _ in parts)
        assert [_as_json_like(document) for _, document in parts] == [_textual(model) for model in in_json], path


def test_unsupported_accept_of_a_search_is_406(loaded_pacsbox):
    answer = loaded_pacsbox.session().get(f"{loaded_pacsbox.url}/dicom-web/studies", headers={"Accept": "text/html"})
    assert answer.status_code == 406  # PS3.18 8.7.5 (the plugin answers JSON whatever the Accept)


def test_stow_answer_in_xml_as_the_plugin(fresh_pacsbox, dicomweb_reference):
    data = body([instance("xml", 1), instance("xml", 2)])
    headers = {"Content-Type": STOW_TYPE, "Accept": "application/dicom+xml"}
    ours = requests.post(fresh_pacsbox.url + "/dicom-web/studies", data=data, headers=headers, auth=fresh_pacsbox.auth)
    theirs = requests.post(dicomweb_reference.url + "/dicom-web/studies", data=data, headers=headers,
                           auth=dicomweb_reference.auth)
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/dicom+xml"
    assert _as_json_like(ours.content.replace(fresh_pacsbox.url.encode(), b"BASE")) == _as_json_like(
        theirs.content.replace(dicomweb_reference.url.encode(), b"BASE"))
