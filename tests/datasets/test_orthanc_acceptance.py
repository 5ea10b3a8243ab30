"""The real Orthanc (1.10.1, Debian) accepts every generated file and sees the hierarchy the data sets promise."""

from __future__ import annotations

import io

from pydicom import dcmread

from pacsbox import datasets


def test_the_real_orthanc_accepts_every_file(reference_orthanc):
    expected = {"patients": set(), "studies": set(), "series": set(), "instances": set()}
    refused, compressed = [], {}
    for name in datasets.names():
        if not datasets.DATASETS[name].dicom:
            continue
        for session in datasets.sessions(name):
            for item in session.files:
                response = reference_orthanc.session.post(reference_orthanc.url + "/instances", data=item.data,
                                                          timeout=30)
                if response.status_code != 200 or response.json()["Status"] != "Success":
                    refused.append((name, item.path, response.status_code, response.text[:200]))
                ds = dcmread(io.BytesIO(item.data), stop_before_pixels=True)
                if name == "compressed":
                    compressed[str(ds.file_meta.TransferSyntaxUID)] = response.json()["ID"]
                expected["patients"].add(ds.PatientID)
                expected["studies"].add(ds.StudyInstanceUID)
                expected["series"].add(ds.SeriesInstanceUID)
                expected["instances"].add(ds.SOPInstanceUID)
    assert not refused, refused[:5]
    statistics = reference_orthanc.session.get(reference_orthanc.url + "/statistics", timeout=30).json()
    assert (statistics["CountPatients"], statistics["CountStudies"], statistics["CountSeries"],
            statistics["CountInstances"]) == tuple(len(uids) for uids in expected.values())
    # Orthanc decodes what it has codecs for (its core has none for JPEG 2000): the streams are sound
    for syntax, instance in compressed.items():
        if syntax != "1.2.840.10008.1.2.4.90":
            preview = reference_orthanc.session.get(f"{reference_orthanc.url}/instances/{instance}/preview", timeout=30)
            assert preview.status_code == 200 and preview.content[:4] == b"\x89PNG", (syntax, preview.text[:200])
