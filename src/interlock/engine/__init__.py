"""The flow graph and the pure planner."""
