"""Flow documents: models, loading with located errors, inputs, JSON Schema."""

from interlock.spec.inputs import InputError, check_inputs
from interlock.spec.loader import load_flow, parse_flow, validate_paths
from interlock.spec.models import Flow, Node

__all__ = ["Flow", "InputError", "Node", "check_inputs", "load_flow", "parse_flow",
           "validate_paths"]
