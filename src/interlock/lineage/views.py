"""What the lineage API returns. The graph has Marquez's shape (camelCase), so tools that
read Marquez's `GET /api/v1/lineage` read Interlock's."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class NameRef(_Camel):
    namespace: str
    name: str


class Edge(_Camel):
    origin: str = Field(description="node id the data comes from")
    destination: str = Field(description="node id the data goes to")


class NodeData(_Camel):
    id: NameRef
    namespace: str
    name: str
    system: str | None = Field(default=None, description="jobs only: interlock, airflow/prod...")
    created_at: datetime
    updated_at: datetime


class GraphNode(_Camel):
    id: str = Field(description="`job:<namespace>:<name>` or `dataset:<namespace>:<name>`")
    type: Literal["JOB", "DATASET"]
    data: NodeData
    in_edges: list[Edge]
    out_edges: list[Edge]


class LineageGraph(_Camel):
    graph: list[GraphNode] = Field(description="the start node first, then by distance")
    truncated: bool = Field(description="the node cap stopped the walk before `depth`")


class Affected(_Camel):
    id: str
    namespace: str
    name: str
    system: str | None = None
    distance: int = Field(description="edges between the start node and this one (0: a job "
                                      "of the same family: parent, child)")


class Impact(_Camel):
    node_id: str
    direction: Literal["upstream", "downstream"]
    depth: int
    jobs: dict[str, list[Affected]] = Field(description="affected jobs by system")
    datasets: list[Affected]
    flows: list[str] = Field(description="Interlock flows (`namespace/flow`) with an "
                                         "affected node")
    systems: list[str]
    truncated: bool


class HistoryEntry(_Camel):
    job_id: str = Field(description="node id of the job that read or wrote the dataset")
    job: NameRef
    system: str
    access: Literal["read", "write"]
    run_id: str
    state: str | None = Field(description="the run's newest OpenLineage eventType seen "
                                          "with this dataset")
    at: datetime
    source: str = Field(description="declared, observed, openlineage or emitted")


class DatasetHistory(_Camel):
    dataset: str
    items: list[HistoryEntry]
    next_cursor: str | None = Field(description="pass back as `cursor` for older entries")
