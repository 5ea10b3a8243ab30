"""The XNAT schema documents pacsbox serves at /xapi/schemas, and the data types they declare."""

from __future__ import annotations

import dataclasses
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal
from xml.etree import ElementTree

SCHEMA_NAMES: tuple[str, ...] = ("xnat", "xdat")
"""What ``GET /xapi/schemas`` lists. xnatpy needs both: without extension types it asks for exactly these two."""

Kind = Literal["project", "subject", "experiment", "assessor", "scan", "reconstruction", "resource"]

_XS = "{http://www.w3.org/2001/XMLSchema}"
_XDAT_ELEMENT = "{http://nrg.wustl.edu/xdat}element"  # XNAT's own annotation (abstract, displayIdentifiers)
_PACSBOX_DICOM = "{urn:pacsbox:xnat-model}dicom"  # pacsbox's annotation: modality, or the catch-all type
_WRAPPERS = frozenset(_XS + tag for tag in ("sequence", "choice", "all", "complexContent", "simpleContent"))

# The root type of each REST level. A type's kind is that of its nearest root ancestor, which makes
# xnat:imageAssessorData (a derivedData) an assessor although it is an experimentData as well.
_KIND_ROOTS: dict[str, Kind] = {
    "xnat:projectData": "project",
    "xnat:subjectData": "subject",
    "xnat:derivedData": "assessor",
    "xnat:experimentData": "experiment",
    "xnat:imageScanData": "scan",
    "xnat:reconstructedImageData": "reconstruction",
    "xnat:abstractResource": "resource",
}


@functools.cache
def schema_document(name: str) -> str:
    """The XSD text served at ``/xapi/schemas/<name>``; KeyError for a name not in SCHEMA_NAMES."""
    if name not in SCHEMA_NAMES:
        raise KeyError(name)
    return resources.files(__name__).joinpath(f"{name}.xsd").read_text(encoding="utf-8")


@dataclass(frozen=True)
class DataType:
    """One complex type of the schema documents, with everything it inherits folded in."""

    xsi_type: str
    """Qualified name as clients send it in xsiType, e.g. ``xnat:mrSessionData``."""
    ancestors: tuple[str, ...]
    """The type itself, then its base, its base's base and so on."""
    kind: Kind | None
    """The REST level it lives at; None for parts nested in those (demographics, investigators...)."""
    abstract: bool
    modality: str | None
    """The DICOM modality a session or scan type stands for."""
    fallback: bool
    """The session or scan type for DICOM modalities that have no type of their own."""
    fields: Mapping[str, str]
    """Single-valued simple fields, by XNAT field path (``label``, ``scanner/manufacturer``), to their xs: type."""
    children: Mapping[str, str]
    """Elements of a named type, by path (``demographics``, ``scans/scan``), to the declared xsi type."""
    lists: frozenset[str]
    """Paths of repeated simple elements (``fields/field``, ``sharing/share``, ``parameters/addParam``)."""
    attributes: frozenset[str] = frozenset()
    """The field paths that are XML attributes (``ID``, ``label``, ``scanner/manufacturer``), not elements."""
    element: str = ""
    """The document element of the type (``MRSession`` for xnat:mrSessionData), if the schema declares one."""

    @property
    def base(self) -> str | None:
        return self.ancestors[1] if len(self.ancestors) > 1 else None

    def is_a(self, xsi_type: str) -> bool:
        """Whether this type is ``xsi_type`` or extends it."""
        return xsi_type in self.ancestors


@dataclass
class _Declared:
    """What one complexType declares itself, before inheritance is folded in."""

    base: str | None
    abstract: bool
    modality: str | None
    fallback: bool
    fields: dict[str, str]
    children: dict[str, str]
    lists: set[str]
    attributes: set[str] = dataclasses.field(default_factory=set)


def _collect(node: ElementTree.Element, prefix: str, into: _Declared) -> None:
    for child in node:
        if child.tag in _WRAPPERS:
            _collect(child, prefix, into)
        elif child.tag == _XS + "extension":
            base = child.get("base", "")
            if base.startswith("xs:") and prefix:  # simple content: the element's own text is a field
                into.fields[prefix.rstrip("/")] = base
            _collect(child, prefix, into)
        elif child.tag == _XS + "attribute":
            into.fields[prefix + child.get("name", "")] = child.get("type", "xs:string")
            into.attributes.add(prefix + child.get("name", ""))
        elif child.tag == _XS + "element":
            _collect_element(child, prefix, into)


def _collect_element(element: ElementTree.Element, prefix: str, into: _Declared) -> None:
    path = prefix + element.get("name", "")
    repeated = element.get("maxOccurs", "1") != "1"
    type_ = element.get("type")
    if type_ is None:
        content = element.find(_XS + "complexType")
        if content is None:
            # Fail loudly rather than silently losing a field when the document grows a construct this reader lacks
            raise ValueError(f"element {path!r} has neither a type nor a complexType")
        if repeated:
            into.lists.add(path)
        else:
            _collect(content, path + "/", into)
    elif not type_.startswith("xs:"):
        into.children[path] = type_
    elif repeated:
        into.lists.add(path)
    else:
        into.fields[path] = type_


def _declared_types(name: str) -> dict[str, _Declared]:
    # iterparse, because the prefix of the target namespace is only visible as a namespace event
    prefixes: dict[str, str] = {}
    root = None
    for event, item in ElementTree.iterparse(io.BytesIO(schema_document(name).encode()), ("start-ns", "start")):
        if event == "start-ns":
            prefix, uri = item
            prefixes.setdefault(uri, prefix)
        elif root is None:
            root = item
    assert root is not None
    target = prefixes[root.get("targetNamespace", "")]

    declared = {}
    for element in root.findall(_XS + "element"):
        _ELEMENTS.setdefault(element.get("type", ""), element.get("name", ""))
    for complex_type in root.findall(_XS + "complexType"):
        extension = complex_type.find(f"{_XS}complexContent/{_XS}extension")
        xdat = complex_type.find(f"{_XS}annotation/{_XS}appinfo/{_XDAT_ELEMENT}")
        dicom = complex_type.find(f"{_XS}annotation/{_XS}appinfo/{_PACSBOX_DICOM}")
        entry = _Declared(
            base=extension.get("base") if extension is not None else None,
            abstract=xdat is not None and xdat.get("abstract") == "true",
            modality=dicom.get("modality") if dicom is not None else None,
            fallback=dicom is not None and dicom.get("fallback") == "true",
            fields={},
            children={},
            lists=set(),
        )
        _collect(complex_type, "", entry)
        declared[f"{target}:{complex_type.get('name')}"] = entry
    return declared


_ELEMENTS: dict[str, str] = {}  # xsi type to the name of its document element, filled while reading


def _load_data_types() -> Mapping[str, DataType]:
    declared: dict[str, _Declared] = {}
    for name in SCHEMA_NAMES:
        declared.update(_declared_types(name))

    data_types = {}
    for xsi_type in declared:
        ancestors = [xsi_type]
        while (base := declared[ancestors[-1]].base) is not None:
            ancestors.append(base)  # KeyError here means a base type that no document declares
        fields: dict[str, str] = {}
        children: dict[str, str] = {}
        lists: set[str] = set()
        attributes: set[str] = set()
        for ancestor in reversed(ancestors):  # inherited first, so the listing order follows XNAT's
            fields.update(declared[ancestor].fields)
            children.update(declared[ancestor].children)
            lists |= declared[ancestor].lists
            attributes |= declared[ancestor].attributes
        own = declared[xsi_type]
        data_types[xsi_type] = DataType(
            xsi_type=xsi_type,
            ancestors=tuple(ancestors),
            kind=next((_KIND_ROOTS[a] for a in ancestors if a in _KIND_ROOTS), None),
            abstract=own.abstract,
            modality=own.modality,
            fallback=own.fallback,
            fields=MappingProxyType(fields),
            children=MappingProxyType(children),
            lists=frozenset(lists),
            attributes=frozenset(attributes),
            element=_ELEMENTS.get(xsi_type, ""),
        )
    return MappingProxyType(data_types)


DATA_TYPES: Mapping[str, DataType] = _load_data_types()
"""Every complex type of the schema documents, by xsi type."""


def _concrete_type_by_modality(root: str) -> tuple[Mapping[str, str], str]:
    by_modality: dict[str, str] = {}
    fallback = None
    for data_type in DATA_TYPES.values():
        if data_type.abstract or not data_type.is_a(root):
            continue
        if data_type.modality is not None:
            by_modality[data_type.modality] = data_type.xsi_type
        if data_type.fallback:
            fallback = data_type.xsi_type
    if fallback is None:
        raise ValueError(f"the schema documents mark no catch-all type for {root}")
    return MappingProxyType(by_modality), fallback


_SESSION_TYPES = _concrete_type_by_modality("xnat:imageSessionData")
_SCAN_TYPES = _concrete_type_by_modality("xnat:imageScanData")


def session_type_for_modality(modality: str) -> str:
    """The image session xsi type for a study of this DICOM modality (``MR`` → ``xnat:mrSessionData``)."""
    by_modality, fallback = _SESSION_TYPES
    return by_modality.get(modality.strip().upper(), fallback)


def scan_type_for_modality(modality: str) -> str:
    """The scan xsi type for a series of this DICOM modality (``CT`` → ``xnat:ctScanData``)."""
    by_modality, fallback = _SCAN_TYPES
    return by_modality.get(modality.strip().upper(), fallback)
