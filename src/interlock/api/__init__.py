"""The HTTP API: FastAPI app, dependencies, error shapes, and one router per resource."""
