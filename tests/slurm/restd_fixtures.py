"""slurmrestd answers for the tests (``tests/fixtures/slurmrestd``, see its README) and a
check of a document against the v0.0.41 schemas cut from Slurm's published OpenAPI."""

import json

from twisted.python.filepath import FilePath

FIXTURES = FilePath(__file__).parent().parent().child("fixtures").child("slurmrestd")


def document(version: str, name: str) -> dict:
    """The answer ``name`` of ``version`` (``v0.0.38/jobs.json``...), parsed."""
    return json.loads(FIXTURES.child(version).child(name + ".json").getContent())


def status(version: str, name: str) -> int:
    """The HTTP status of a captured answer (``statuses.json``)."""
    return json.loads(FIXTURES.child(version).child("statuses.json").getContent())[name]


def schemas(version: str = "v0.0.41") -> dict:
    return json.loads(FIXTURES.child(version).child("schemas.json").getContent())


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
