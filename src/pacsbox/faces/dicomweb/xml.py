"""The DICOM XML model (PS3.19 Native DICOM Model, as PS3.18 uses it), written from the DICOM JSON model."""

from __future__ import annotations

from xml.etree import ElementTree

NAMESPACE = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
DICOM_XML = "application/dicom+xml"
_NAME_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def native_model(model: dict) -> bytes:
    """A ``NativeDicomModel`` document of one DICOM JSON object."""
    root = ElementTree.Element("NativeDicomModel", {"xmlns": NAMESPACE})
    _attributes(root, model)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(root, encoding="utf-8",
                                                                               xml_declaration=False)


def _attributes(parent: ElementTree.Element, model: dict) -> None:
    from pydicom.datadict import keyword_for_tag  # pydicom loads on the first XML answer, not at start-up

    for key in sorted(model):
        attribute = model[key]
        tag = int(key, 16)
        node = ElementTree.SubElement(parent, "DicomAttribute", {"tag": key.upper(), "vr": attribute.get("vr", "UN")})
        keyword = keyword_for_tag(tag)
        if keyword:
            node.set("keyword", keyword)
        if "BulkDataURI" in attribute:
            ElementTree.SubElement(node, "BulkData", {"uri": attribute["BulkDataURI"]})
        elif "InlineBinary" in attribute:
            ElementTree.SubElement(node, "InlineBinary").text = attribute["InlineBinary"]
        for number, value in enumerate(attribute.get("Value", []), start=1):
            if attribute.get("vr") == "SQ":
                _attributes(ElementTree.SubElement(node, "Item", {"number": str(number)}), value)
            elif attribute.get("vr") == "PN":
                _person_name(ElementTree.SubElement(node, "PersonName", {"number": str(number)}), value)
            else:
                child = ElementTree.SubElement(node, "Value", {"number": str(number)})
                child.text = "" if value is None else str(value)


def _person_name(node: ElementTree.Element, value: dict) -> None:
    for group in ("Alphabetic", "Ideographic", "Phonetic"):
        if group not in value:
            continue
        element = ElementTree.SubElement(node, group)
        for name, text in zip(_NAME_COMPONENTS, value[group].split("^"), strict=False):
            if text:
                ElementTree.SubElement(element, name).text = text
