"""Read the deployable Salesforce metadata (salesforce/force-app) as describe() would see it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from connectors.salesforce.describe import FieldInfo

REPO = Path(__file__).resolve().parents[2]
SFDX = REPO / "salesforce"
DEFAULT = SFDX / "force-app" / "main" / "default"
NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
PERMSET = DEFAULT / "permissionsets" / "Advocate_Sync_Integration.permissionset-meta.xml"

#: Metadata type -> the type describe() reports.
DESCRIBE_TYPES = {
    "Picklist": "picklist",
    "MultiselectPicklist": "multipicklist",
    "Checkbox": "boolean",
    "Number": "double",
    "Text": "string",
    "LongTextArea": "textarea",
    "Date": "date",
    "Lookup": "reference",
}


def text_of(el: ET.Element, tag: str) -> str | None:
    found = el.find(f"m:{tag}", NS)
    return found.text if found is not None else None


def permissions() -> dict[str, tuple[bool, bool]]:
    root = ET.parse(PERMSET).getroot()
    return {
        str(text_of(fp, "field")): (
            text_of(fp, "readable") == "true",
            text_of(fp, "editable") == "true",
        )
        for fp in root.findall("m:fieldPermissions", NS)
    }


def metadata_describe(object_name: str) -> dict[str, FieldInfo]:
    """What describe() would say about ``object_name`` once the metadata is deployed, as seen
    by a user with the permission set (standard keys added)."""
    perms = permissions()
    fields = {
        "Id": FieldInfo(name="Id", type="id"),
        "SystemModstamp": FieldInfo(name="SystemModstamp", type="datetime"),
    }
    for path in sorted((DEFAULT / "objects" / object_name / "fields").glob("*.field-meta.xml")):
        root = ET.parse(path).getroot()
        name = str(text_of(root, "fullName"))
        required = text_of(root, "required") == "true"
        _, editable = perms.get(f"{object_name}.{name}", (required, False))
        values = tuple(
            str(text_of(v, "fullName")) for v in root.findall(".//m:valueSetDefinition/m:value", NS)
        )
        restricted = root.find(".//m:valueSet/m:restricted", NS)
        fields[name] = FieldInfo(
            name=name,
            type=DESCRIBE_TYPES[str(text_of(root, "type"))],
            updateable=editable,
            picklist_values=values,
            restricted_picklist=restricted is not None and restricted.text == "true",
        )
    return fields
