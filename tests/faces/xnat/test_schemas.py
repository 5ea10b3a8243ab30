"""xnatpy builds its classes from pacsbox's XNAT schema documents, offline, exactly the way it does on connect."""

from __future__ import annotations

import datetime
import logging
import socket
import types

import pytest
import xnat
from xnat import mixin
from xnat.convert_xsd import SchemaParser
from xnat.core import XNATObject
from xnat.datatypes import TYPE_FROM_MAP
from xnat.search import SearchField
from xnat.utils import pythonize_attribute_name

from pacsbox.faces.xnat.schemas import (
    DATA_TYPES,
    SCHEMA_NAMES,
    scan_type_for_modality,
    schema_document,
    session_type_for_modality,
)

# The types a client of pacsbox's XNAT face meets, and what they refer to
REQUIRED_TYPES = (
    "xnat:projectData", "xnat:subjectData", "xnat:demographicData", "xnat:abstractDemographicData",
    "xnat:abstractSubjectMetadata", "xnat:subjectMetadata", "xnat:investigatorData", "xnat:validationData",
    "xnat:fieldDefinitionGroup", "xnat:abstractProtocol", "xnat:datatypeProtocol",
    "xnat:experimentData", "xnat:subjectAssessorData", "xnat:imageSessionData", "xnat:derivedData",
    "xnat:imageAssessorData", "xnat:imageScanData", "xnat:abstractResource", "xnat:resource", "xnat:resourceCatalog",
    "xnat:mrSessionData", "xnat:ctSessionData", "xnat:petSessionData", "xnat:otherDicomSessionData",
    "xnat:crSessionData", "xnat:dxSessionData", "xnat:usSessionData", "xnat:xaSessionData", "xnat:nmSessionData",
    "xnat:mgSessionData", "xnat:srSessionData",
    "xnat:mrScanData", "xnat:ctScanData", "xnat:petScanData", "xnat:otherDicomScanData",
    "xnat:crScanData", "xnat:dxScanData", "xnat:usScanData", "xnat:xaScanData", "xnat:nmScanData",
    "xnat:mgScanData", "xnat:srScanData",
    "xdat:user",
)
MODALITIES = ("MR", "CT", "PT", "CR", "DX", "US", "XA", "NM", "MG", "SR")
SESSION_CLASSES = ("Mr", "Ct", "Pet", "Cr", "Dx", "Us", "Xa", "Nm", "Mg", "Sr", "OtherDicom")


class _Logger(logging.Logger):
    """xnat.connect gives every logger a verbose() method; the model builder calls it."""

    def verbose(self, message, *args, **kwargs):
        self.log(15, message, *args, **kwargs)


class _OfflineXnatSession:
    """What xnat.build_model asks of a session, with the two schema routes answered from pacsbox's documents."""

    debug = False
    caching = True
    xnat_version = "1.8.10"  # the version pacsbox's buildInfo announces

    def __init__(self):
        self.logger = _Logger("pacsbox-xnatpy-model", level=logging.WARNING)
        self.XNAT_CLASS_LOOKUP = {}
        self.requests = []
        # No display fields for xnatpy to inject (the search elements route is another test's business)
        self.inspect = types.SimpleNamespace(datatypes=lambda: [])

    def get_json(self, uri, **_):
        self.requests.append(uri)
        assert uri == "/xapi/schemas", uri
        return list(SCHEMA_NAMES)

    def get(self, uri, **_):
        self.requests.append(uri)
        return types.SimpleNamespace(text=schema_document(uri.removeprefix("/xapi/schemas/")), status_code=200)


@pytest.fixture(scope="module")
def xnat_session():
    session = _OfflineXnatSession()
    xnat.build_model(session, extension_types=True, connection_id="pacsbox_schema_test")
    return session


@pytest.fixture(scope="module")
def classes(xnat_session):
    return xnat_session.classes


def test_documents_are_served_by_name():
    assert SCHEMA_NAMES == ("xnat", "xdat")
    for name in SCHEMA_NAMES:
        assert schema_document(name).startswith("<?xml")
        assert schema_document(name) is schema_document(name)
    for unknown in ("security", "../xnat", "xnat.xsd"):
        with pytest.raises(KeyError):
            schema_document(unknown)


def test_xnatpy_fetches_the_list_then_each_document(xnat_session):
    assert xnat_session.requests == ["/xapi/schemas", "/xapi/schemas/xnat", "/xapi/schemas/xdat"]


def test_xnatpy_reads_the_prefixes_and_annotations():
    parser = SchemaParser(logger=_Logger("pacsbox-xnatpy-parser", level=logging.WARNING))
    parser.parse_schema_xmlstring(schema_document("xnat"), schema_uri="/xapi/schemas/xnat")
    assert parser.namespaces["xnat"] == "http://nrg.wustl.edu/xnat"
    # The annotation namespace, which is where xnatpy looks for displayIdentifiers
    assert parser.namespaces["xdat"] == "http://nrg.wustl.edu/xdat"
    assert parser.class_list["http://nrg.wustl.edu/xnat:subjectData"].display_identifier == "label"
    assert parser.class_list["http://nrg.wustl.edu/xnat:experimentData"].display_identifier == "label"

    parser = SchemaParser(logger=_Logger("pacsbox-xnatpy-parser", level=logging.WARNING))
    parser.parse_schema_xmlstring(schema_document("xdat"), schema_uri="/xapi/schemas/xdat")
    assert parser.namespaces["xdat"] == "http://nrg.wustl.edu/security"


def test_every_type_becomes_a_registered_class(xnat_session):
    assert set(REQUIRED_TYPES) <= set(DATA_TYPES)
    missing = [xsi_type for xsi_type in DATA_TYPES if xsi_type not in xnat_session.XNAT_CLASS_LOOKUP]
    assert missing == []


def test_inheritance(classes):
    for prefix in SESSION_CLASSES:
        session = getattr(classes, f"{prefix}SessionData")
        assert issubclass(session, classes.ImageSessionData), prefix
        scan = getattr(classes, f"{prefix}ScanData")
        assert issubclass(scan, classes.ImageScanData), prefix
    assert issubclass(classes.ImageSessionData, classes.SubjectAssessorData)
    assert issubclass(classes.SubjectAssessorData, classes.ExperimentData)
    assert issubclass(classes.ImageAssessorData, classes.DerivedData)
    assert issubclass(classes.DerivedData, classes.ExperimentData)
    assert issubclass(classes.ResourceCatalog, classes.Resource)
    assert issubclass(classes.Resource, classes.AbstractResource)
    assert issubclass(classes.DemographicData, classes.AbstractDemographicData)
    assert issubclass(classes.SubjectMetadata, classes.AbstractSubjectMetadata)
    assert issubclass(classes.DatatypeProtocol, classes.AbstractProtocol)
    # xnatpy's hand-written behaviour (URIs, listings, downloads) attaches by class name
    for name in ("ProjectData", "SubjectData", "ExperimentData", "SubjectAssessorData", "ImageSessionData",
                 "DerivedData", "ImageScanData", "AbstractResource", "InvestigatorData", "DemographicData"):
        assert issubclass(getattr(classes, name), getattr(mixin, name)), name
    # Objects with REST paths of their own
    for name in ("ProjectData", "SubjectData", "MrSessionData", "MrScanData", "ResourceCatalog", "ImageAssessorData"):
        assert issubclass(getattr(classes, name), XNATObject), name


@pytest.mark.parametrize(
    ("class_name", "prop", "xs_type"),
    [
        ("ProjectData", "name", "xs:string"),
        ("ProjectData", "description", "xs:string"),
        ("ProjectData", "keywords", "xs:string"),
        ("ProjectData", "secondary_id", "xs:string"),
        ("SubjectData", "group", "xs:string"),
        ("SubjectData", "src", "xs:string"),
        ("DemographicData", "age", "xs:double"),
        ("DemographicData", "gender", "xs:string"),
        ("DemographicData", "dob", "xs:date"),
        ("DemographicData", "handedness", "xs:string"),
        ("MrSessionData", "date", "xs:date"),
        ("MrSessionData", "time", "xs:time"),
        ("MrSessionData", "note", "xs:string"),
        ("MrSessionData", "project", "xs:string"),
        ("MrSessionData", "visit_id", "xs:string"),
        ("MrSessionData", "subject_id", "xs:string"),
        ("MrSessionData", "modality", "xs:string"),
        ("MrSessionData", "uid", "xs:string"),
        ("MrSessionData", "dcm_patient_name", "xs:string"),
        ("MrSessionData", "dcm_patient_id", "xs:string"),
        ("MrSessionData", "dcm_accession_number", "xs:string"),
        ("MrSessionData", "session_type", "xs:string"),
        ("MrSessionData", "field_strength", "xs:string"),
        ("PetSessionData", "study_type", "xs:string"),
        ("MrScanData", "type", "xs:string"),
        ("MrScanData", "series_description", "xs:string"),
        ("MrScanData", "quality", "xs:string"),
        ("MrScanData", "note", "xs:string"),
        ("MrScanData", "frames", "xs:integer"),
        ("MrScanData", "modality", "xs:string"),
        ("MrScanData", "uid", "xs:string"),
        ("MrScanData", "image_session_id", "xs:string"),
        ("MrScanData", "field_strength", "xs:string"),
        ("CtScanData", "series_description", "xs:string"),
        ("ImageAssessorData", "image_session_id", "xs:string"),
        ("ResourceCatalog", "label", "xs:string"),
        ("ResourceCatalog", "format", "xs:string"),
        ("ResourceCatalog", "content", "xs:string"),
    ],
)
def test_simple_properties(classes, class_name, prop, xs_type):
    field = getattr(getattr(classes, class_name), prop)
    assert isinstance(field, SearchField)
    assert field.type == xs_type


def test_nested_objects_and_listings(classes):
    # The label comes from xnatpy's own experiment/subject behaviour, searchable under XNAT's field name
    assert classes.MrSessionData.label.field_name == "label"
    assert classes.SubjectData.label.field_name == "label"
    assert classes.SubjectData.demographics is classes.DemographicData
    assert classes.SubjectData.demographics.age.type == "xs:double"
    assert classes.ProjectData.pi is classes.InvestigatorData
    assert classes.MrSessionData.scanner.manufacturer.field_name == "manufacturer"
    assert classes.MrScanData.scanner.model.field_name == "model"
    assert classes.MrScanData.parameters.tr.type == "xs:double"
    assert classes.MrScanData.parameters.voxel_res.x.type == "xs:double"
    for cls, listing in [
        (classes.SubjectData, "experiments"),
        (classes.SubjectData, "resources"),
        (classes.MrSessionData, "scans"),
        (classes.MrSessionData, "assessors"),
        (classes.MrSessionData, "resources"),
        (classes.MrScanData, "resources"),
        (classes.ProjectData, "subjects"),
        (classes.MrSessionData, "fields"),
    ]:
        assert isinstance(getattr(cls, listing), property), (cls, listing)
    # Custom variables need a simple "fields" listing
    for cls in (classes.ProjectData, classes.SubjectData, classes.MrSessionData):
        assert cls._HAS_FIELDS, cls


def _descend(cls, path):
    target = cls
    for part in path.split("/"):
        target = getattr(target, pythonize_attribute_name(part))
    return target


def test_generated_classes_agree_with_data_types(xnat_session):
    for data_type in DATA_TYPES.values():
        if data_type.kind is None:
            continue  # the nested parts; xnatpy's hand-written demographics shadow some of their fields
        cls = xnat_session.XNAT_CLASS_LOOKUP[data_type.xsi_type]
        for path, xs_type in data_type.fields.items():
            target = _descend(cls, path)
            if isinstance(target, SearchField) and target.type is not None:
                assert target.type == xs_type, (data_type.xsi_type, path)
        for path in [*data_type.children, *data_type.lists]:
            assert hasattr(cls, pythonize_attribute_name(path.split("/")[0])), (data_type.xsi_type, path)


def test_values_convert_to_python_types(classes, xnat_session):
    session = classes.MrSessionData(
        uri="/data/experiments/PB_E00001",
        xnat_session=xnat_session,
        id_="PB_E00001",
        datafields={"ID": "PB_E00001", "label": "MR1", "date": "2024-01-02", "time": "10:11:12", "modality": "MR",
                    "fieldStrength": "3.0", "dcmPatientName": "Doe^Jane"},
        overwrites={"label": "MR1"},
    )
    assert session.date == datetime.date(2024, 1, 2)
    assert session.time == datetime.time(10, 11, 12)
    assert (session.label, session.modality, session.field_strength) == ("MR1", "MR", "3.0")
    assert session.dcm_patient_name == "Doe^Jane"

    # As a scans listing builds it: xnatpy passes the lookup field (type) along, and reads it back from there
    scan = classes.MrScanData(
        uri="/data/experiments/PB_E00001/scans/1",
        xnat_session=xnat_session,
        id_="1",
        datafields={"ID": "1", "type": "T1", "series_description": "t1_mprage", "quality": "usable", "frames": "176"},
        type="T1",
    )
    assert (scan.type, scan.series_description, scan.quality, scan.frames) == ("T1", "t1_mprage", "usable", 176)


def test_data_types_describe_the_rest_levels():
    mr_session = DATA_TYPES["xnat:mrSessionData"]
    assert (mr_session.kind, mr_session.modality, mr_session.abstract) == ("experiment", "MR", False)
    assert mr_session.is_a("xnat:imageSessionData") and mr_session.is_a("xnat:subjectAssessorData")
    assert mr_session.base == "xnat:imageSessionData"
    assert {"label": "xs:string", "date": "xs:date", "subject_ID": "xs:string"}.items() <= mr_session.fields.items()
    assert mr_session.fields["scanner/manufacturer"] == "xs:string"
    assert mr_session.children["scans/scan"] == "xnat:imageScanData"
    assert "fields/field" in mr_session.lists
    assert DATA_TYPES["xnat:imageSessionData"].abstract

    mr_scan = DATA_TYPES["xnat:mrScanData"]
    assert (mr_scan.kind, mr_scan.modality) == ("scan", "MR")
    assert mr_scan.fields["parameters/tr"] == "xs:double"
    assert mr_scan.fields["frames"] == "xs:integer"
    assert "parameters/addParam" in mr_scan.lists

    subject = DATA_TYPES["xnat:subjectData"]
    assert subject.kind == "subject"
    assert subject.children["demographics"] == "xnat:abstractDemographicData"
    assert subject.children["experiments/experiment"] == "xnat:subjectAssessorData"
    assert DATA_TYPES["xnat:demographicData"].fields["age"] == "xs:double"
    assert DATA_TYPES["xnat:demographicData"].kind is None

    assert DATA_TYPES["xnat:projectData"].kind == "project"
    assert DATA_TYPES["xnat:imageAssessorData"].kind == "assessor"
    assert DATA_TYPES["xnat:resourceCatalog"].kind == "resource"
    assert {"label", "format", "URI"} <= set(DATA_TYPES["xnat:resourceCatalog"].fields)


def test_types_are_consistent():
    for data_type in DATA_TYPES.values():
        # xnatpy can only write the xs: types it knows how to format
        unknown = {t for t in data_type.fields.values() if t not in TYPE_FROM_MAP}
        assert not unknown, (data_type.xsi_type, unknown)
        dangling = {t for t in data_type.children.values() if t not in DATA_TYPES}
        assert not dangling, (data_type.xsi_type, dangling)


def test_modality_picks_the_session_and_scan_type():
    for modality in MODALITIES:
        session, scan = DATA_TYPES[session_type_for_modality(modality)], DATA_TYPES[scan_type_for_modality(modality)]
        assert (session.kind, session.modality, session.abstract) == ("experiment", modality, False)
        assert (scan.kind, scan.modality, scan.abstract) == ("scan", modality, False)
    assert session_type_for_modality("PT") == "xnat:petSessionData"
    assert scan_type_for_modality(" mr ") == "xnat:mrScanData"
    for other in ("OT", "SEG", "RTSTRUCT", ""):
        assert session_type_for_modality(other) == "xnat:otherDicomSessionData"
        assert scan_type_for_modality(other) == "xnat:otherDicomScanData"


def test_pyxnat_imports():
    import pyxnat

    assert callable(pyxnat.Interface)


def test_pyxnat_needs_no_schema_documents():
    import pyxnat

    # pyxnat 1.6.4 imports all its derivative modules when an Interface is made, and one of them needs these two
    # without declaring them
    for module in ("nibabel", "pandas"):
        pytest.importorskip(module, reason=f"pyxnat.Interface() needs {module}, which pyxnat does not declare")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now, so any request pyxnat made while connecting would fail
    interface = pyxnat.Interface(server=f"http://127.0.0.1:{port}", user="user", password="password")
    assert list(interface.manage.schemas()) == []
