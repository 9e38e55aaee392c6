"""slurmrestd answers captured on the rig (``tests/fixtures/slurmrestd/<release>/<version>``,
see its README) and a check of a document against the schemas of the version that
answered it, cut from the OpenAPI document the same slurmrestd served."""

import json

from twisted.python.filepath import FilePath

FIXTURES = FilePath(__file__).parent().parent().child("fixtures").child("slurmrestd")


def captured() -> list[tuple[str, str]]:
    """Every ``(release, version)`` captured, oldest release first."""
    found = [(release.basename(), version.basename())
             for release in FIXTURES.children() if release.isdir()
             for version in release.children() if version.isdir()]
    return sorted(found, key=lambda pair: [tuple(int(part) for part in item.strip("v")
                                                 .split(".")) for item in pair])


def releases(version: str) -> list[str]:
    """The releases whose answers in ``version`` were captured."""
    return [release for release, captured_version in captured() if captured_version == version]


def _file(where: str, name: str) -> FilePath:
    return FIXTURES.preauthChild(where).child(name + ".json")


def document(where: str, name: str) -> dict:
    """The answer ``name`` captured in ``where`` (``"26.05.3/v0.0.45"``), parsed; an
    OpenAPI document (``"26.05.3"``, ``"openapi"``) is its info and paths."""
    return json.loads(_file(where, name).getContent())


def status(where: str, name: str) -> int:
    """The HTTP status of a captured answer (``statuses.json``)."""
    return document(where, "statuses")[name]


def schemas(where: str) -> dict:
    """The schemas of the version captured in ``where``, as its slurmrestd served them."""
    return document(where, "schemas")


def violations(value, schema: dict, all_schemas: dict, path: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema``: unknown properties, wrong types, values outside
    an enum (what matters to a reader or writer of these documents)."""
    if "$ref" in schema:
        return violations(value, all_schemas[schema["$ref"].rsplit("/", 1)[1]], all_schemas,
                          path)
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool,
             "integer": int, "number": (int, float)}
    if kind in types and (not isinstance(value, types[kind])
                          or (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{path}: {value!r} is not {kind}"]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not in {schema['enum']}")
    if kind == "object" and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}: not a property")
            else:
                found += violations(item, schema["properties"][key], all_schemas,
                                    f"{path}.{key}")
    if kind == "array" and "items" in schema:
        for index, item in enumerate(value):
            found += violations(item, schema["items"], all_schemas, f"{path}[{index}]")
    return found


def conforms(value, root: str, where: str) -> list[str]:
    """Where ``value`` breaks the schema ``<version>_<root>`` captured in ``where``."""
    version = where.rsplit("/", 1)[1]
    return violations(value, {"$ref": f"#/{version}_{root}"}, schemas(where))
