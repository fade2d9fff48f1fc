"""Cross-system lineage: jobs of every system, datasets, runs and the edges between them.

    validate.py   OpenLineage events checked against the vendored spec (spec/OpenLineage.json)
    ingest.py     an event into the store, whole or not at all; replays are no-ops
    graph.py      the store writes ingest, declared and emitted share (upserts)
    naming.py     which system a job belongs to
    declared.py   a flow's produces:/consumes: as `declared` edges (on registration)
    emitted.py    the events Interlock emits for its succeeded attempts (source `emitted`)
    nodes.py      Marquez-style node ids
    walk.py       the traversal: one recursive SQL statement for both directions
    queries.py    the graph around a node, impact, a dataset's history
    views.py      what the API returns

See docs/lineage.md.
"""
