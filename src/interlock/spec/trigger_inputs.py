"""A trigger's `inputs:`: the run's inputs mapped from what fired it.

```yaml
triggers:
  - after: {system: airflow/prod, dag_id: load_orders}
    inputs:
      day: "{{ trigger.details.conf.day }}"     # the DAG run's conf
      rows: "{{ trigger.details.exit_code }}"   # a cron job's exit code
```

Each value renders with one name, `trigger` (what fired: its recorded context plus what is
only shown to the mapping, see `triggers.firing`), and the result goes through the flow's
`inputs:` like any start, so a value the inputs refuse refuses the firing. The values come
from other systems: they become typed inputs, never code (a node uses them as it uses any
input, quoted in a shell command, refused in an inline script).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from interlock.config.yamlpos import Located
from interlock.errors import ExpressionError, Problem
from interlock.spec.expressions import SECRET_FUNCTION, references, render, strings_in
from interlock.spec.inputs import InputError

TRIGGER = "trigger"  # the one name a mapping may use


def check(doc: Located) -> Iterator[Problem]:
    """Each mapped name is a declared input; each expression uses `trigger` only."""
    raw = doc.value if isinstance(doc.value, dict) else {}
    triggers = raw.get("triggers")
    declared = raw.get("inputs") if isinstance(raw.get("inputs"), dict) else {}
    for i, trigger in enumerate(triggers if isinstance(triggers, list) else []):
        mapping = trigger.get("inputs") if isinstance(trigger, dict) else None
        if not isinstance(mapping, dict):
            continue
        for name in mapping:
            if name not in declared:
                yield doc.at(("triggers", i, "inputs", name),
                             f"trigger {i + 1}: input `{name}` is not declared under the "
                             f"flow's `inputs:`; declare it or remove it from the mapping")
        for path, text in strings_in(mapping, ("triggers", i, "inputs")):
            try:
                refs = references(text)
            except ExpressionError as exc:
                yield doc.at(path, f"trigger {i + 1}: {exc}")
                continue
            for name in sorted(refs.names - {TRIGGER}):
                hint = ("secrets are for nodes' `with:`, not inputs" if name == SECRET_FUNCTION
                        else "a trigger's inputs come from `trigger` (what fired the run)")
                yield doc.at(path, f"trigger {i + 1}: `{name}` cannot be used here; {hint}")


def map_inputs(mapping: dict[str, Any], trigger: dict[str, Any]) -> dict[str, Any]:
    """The mapped inputs; raises InputError naming each input whose value failed (what
    fired lacks the field, or a filter failed on it)."""
    mapped, problems = {}, {}
    for name, value in mapping.items():
        try:
            mapped[name] = render(value, {TRIGGER: trigger})
        except ExpressionError as exc:
            problems[name] = f"not mapped from what fired the run: {exc}"
    if problems:
        raise InputError(problems)
    return mapped
