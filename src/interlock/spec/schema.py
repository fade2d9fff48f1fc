"""The JSON Schema of flow files, generated from the models (committed under schemas/)."""

from __future__ import annotations

import json

from interlock.spec.models import Flow

SCHEMA_ID = "https://interlock.invalid/schemas/flow.schema.json"


def flow_schema() -> dict[str, object]:
    schema = Flow.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema, "title": "Interlock flow"}


def flow_schema_text() -> str:
    return json.dumps(flow_schema(), indent=2, sort_keys=True) + "\n"
