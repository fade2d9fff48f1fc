"""The bad-input suite of `interlock validate`: every problem located and worded for a person.

Each case is a small file under `tests/flows/bad/` (run `interlock validate tests/flows/bad/X.yaml`
to see what a user sees).

Tests go through `validate_paths` / `parse_flow`, the functions the CLI prints from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from interlock.errors import Problem, SpecError
from interlock.spec.loader import parse_flow, validate_paths
from interlock.spec.models import Flow

FLOWS = Path(__file__).resolve().parent / "flows"
BAD = FLOWS / "bad"
GOOD = FLOWS / "good"


# --------------------------------------------------------------------------------------------
# helpers


def problems_of(name: str) -> list[Problem]:
    """Every problem `validate_paths` finds in `tests/flows/bad/<name>.yaml`, checked for shape."""
    path = BAD / f"{name}.yaml"
    assert path.is_file(), path
    problems = validate_paths([path])
    assert problems, f"{name}.yaml: expected at least one problem"
    for p in problems:
        assert p.file == str(path)
        assert p.line >= 1 and p.col >= 1
        assert str(p) == f"{path}:{p.line}:{p.col}: {p.message}"  # what the CLI prints
    return problems


def only_problem(name: str) -> Problem:
    problems = problems_of(name)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def problems_in(text: str, file: str = "inline.yaml") -> list[Problem]:
    with pytest.raises(SpecError) as info:
        parse_flow(text, file)
    assert info.value.problems
    return info.value.problems


def node_flow(body: str) -> str:
    """A one-node flow whose node `a` has ``body`` (already indented by four spaces)."""
    return "id: f\nnodes:\n  a:\n    uses: noop\n" + body


def assert_words(message: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --------------------------------------------------------------------------------------------
# YAML syntax


def test_unclosed_bracket_is_invalid_yaml_at_the_line_it_is_noticed() -> None:
    p = only_problem("yaml_unclosed_bracket")
    # `a: {uses: noop` opens on line 3; the parser notices at the `:` of line 4.
    assert (p.line, p.col) == (4, 4)
    assert_words(p.message, "invalid YAML", "flow mapping", "expected ',' or '}'")


def test_unclosed_bracket_message_points_at_the_opening_line() -> None:
    p = only_problem("yaml_unclosed_bracket")
    assert p.line == 3 or "line 3" in p.message


def test_bad_indentation_is_invalid_yaml_at_the_misindented_line() -> None:
    p = only_problem("yaml_bad_indentation")
    assert (p.line, p.col) == (5, 4)
    assert_words(p.message, "invalid YAML", "expected <block end>")


def test_tab_indentation_is_invalid_yaml_at_the_tab() -> None:
    p = only_problem("yaml_tab")
    assert (p.line, p.col) == (4, 1)
    assert_words(p.message, "invalid YAML", "'\\t'", "cannot start any token")


def test_two_documents_in_one_file() -> None:
    (p,) = problems_in("id: a\nnodes:\n  a: {uses: noop}\n---\nid: b\n")
    assert (p.line, p.col) == (4, 1)
    assert_words(p.message, "invalid YAML", "single document")


# --------------------------------------------------------------------------------------------
# the document's shape


@pytest.mark.parametrize("name", ["empty", "comments_only"])
def test_empty_file(name: str) -> None:
    p = only_problem(name)
    assert (p.line, p.col) == (1, 1)
    assert_words(p.message, "empty", "`id`", "`nodes`")


def test_top_level_list_instead_of_mapping() -> None:
    p = only_problem("top_level_list")
    assert (p.line, p.col) == (1, 1)
    assert_words(p.message, "a flow is a mapping", "`id`", "`nodes`")


@pytest.mark.parametrize("text", ["just a sentence\n", "42\n", "null\n", "---\n"])
def test_top_level_scalar_is_not_a_flow(text: str) -> None:
    (p,) = problems_in(text)
    assert p.line >= 1 and p.col == 1
    assert_words(p.message, "a flow is a mapping")


def test_missing_id() -> None:
    p = only_problem("missing_id")
    assert (p.line, p.col) == (1, 1)
    assert_words(p.message, "`id`", "required")


def test_missing_nodes() -> None:
    p = only_problem("missing_nodes")
    assert (p.line, p.col) == (1, 1)
    assert_words(p.message, "`nodes`", "required")


def test_empty_nodes() -> None:
    p = only_problem("empty_nodes")
    assert (p.line, p.col) == (2, 1)
    assert_words(p.message, "`nodes`", "at least 1")


def test_nodes_that_is_not_a_mapping() -> None:
    (p,) = problems_in("id: f\nnodes: [a, b]\n")
    assert (p.line, p.col) == (2, 1)
    assert_words(p.message, "`nodes`", "dictionary")


def test_bad_flow_id_is_located() -> None:
    p = only_problem("bad_flow_id")
    assert (p.line, p.col) == (1, 1)
    assert_words(p.message, "`id`")


def test_bad_flow_id_message_names_the_id_and_the_rule() -> None:
    p = only_problem("bad_flow_id")
    assert_words(p.message, "nightly etl!", "letters, digits")
    assert "^[A-Za-z]" not in p.message


def test_bad_namespace() -> None:
    (p,) = problems_in("id: f\nnamespace: data..warehouse\nnodes:\n  a: {uses: noop}\n")
    assert (p.line, p.col) == (2, 1)
    assert_words(p.message, "`namespace`")


def test_bad_node_ids() -> None:
    first, second = problems_of("bad_node_id")
    assert (first.line, first.col) == (3, 3)
    assert_words(first.message, "bad node id `1st`", "starting with a letter")
    assert (second.line, second.col) == (5, 3)
    assert_words(second.message, "bad node id `load data`", "letters, digits")


# --------------------------------------------------------------------------------------------
# unknown and duplicate keys


def test_unknown_key_at_top_level() -> None:
    p = only_problem("unknown_key_top")
    assert (p.line, p.col) == (3, 1)
    assert_words(p.message, "unknown key `schedule`", "`flow`")


def test_unknown_key_in_a_node() -> None:
    p = only_problem("unknown_key_node")
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "unknown key `depends_on`", "`nodes.a`")


def test_unknown_key_in_retry() -> None:
    p = only_problem("unknown_key_retry")
    assert (p.line, p.col) == (7, 7)
    assert_words(p.message, "unknown key `jitter`", "`nodes.a.retry`")


def test_unknown_key_in_a_trigger() -> None:
    p = only_problem("unknown_key_trigger")
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "unknown key `when`", "`triggers.0`")


def test_unknown_key_inside_a_trigger_kind() -> None:
    text = "id: f\ntriggers:\n  - webhook:\n      key: k\n      token: s\nnodes:\n  a: {uses: noop}\n"
    (p,) = problems_in(text)
    assert (p.line, p.col) == (5, 7)
    assert_words(p.message, "unknown key `token`", "`triggers.0.webhook`")


def test_duplicate_node_id_at_the_second_one() -> None:
    p = only_problem("duplicate_node_id")
    assert (p.line, p.col) == (7, 3)
    assert_words(p.message, "duplicate key `extract`", "node ids must be unique")


def test_duplicate_key_inside_a_node_names_where() -> None:
    (p,) = problems_in(node_flow("    timeout: 5s\n    timeout: 10s\n"))
    assert (p.line, p.col) == (6, 5)
    assert_words(p.message, "duplicate key `timeout`", "`nodes.a`")


# --------------------------------------------------------------------------------------------
# the graph: needs, cycles, adapters


def test_needs_a_missing_node_names_both() -> None:
    p = only_problem("needs_missing_node")
    assert (p.line, p.col) == (7, 22)  # the `transfrom` item of `needs:`
    assert_words(p.message, "node `load` needs `transfrom`", "not a node of this flow",
                 "extract, load")


def test_node_that_needs_itself() -> None:
    problems = problems_of("needs_itself")
    assert all(p.line == 5 for p in problems)
    itself = [p for p in problems if "needs itself" in p.message]
    assert len(itself) == 1
    assert itself[0].col == 13  # the `a` inside `needs: [a]`
    assert_words(itself[0].message, "node `a` needs itself")


def test_two_cycle() -> None:
    p = only_problem("cycle_two")
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "cycle in `needs:`", "a -> b -> a")


def test_three_cycle_shows_the_whole_path() -> None:
    p = only_problem("cycle_three")
    assert (p.line, p.col) == (7, 5)  # `needs:` of `a`, the first node of the cycle met
    assert_words(p.message, "cycle in `needs:`", "a -> c -> b -> a")
    assert "start" not in p.message  # only the nodes on the cycle


def test_unknown_uses_names_the_kind() -> None:
    p = only_problem("unknown_uses")
    assert (p.line, p.col) == (4, 5)
    assert_words(p.message, "node `a`", "unknown `uses: airflow_dag_that_is_not_installed`",
                 "no installed adapter")


def test_uses_that_is_not_a_string() -> None:
    (p,) = problems_in("id: f\nnodes:\n  a:\n    uses: [noop]\n")
    assert (p.line, p.col) == (4, 5)
    assert_words(p.message, "`nodes.a.uses`", "string")


def test_node_without_uses() -> None:
    (p,) = problems_in("id: f\nnodes:\n  a:\n    needs: []\n")
    assert (p.line, p.col) == (3, 3)
    assert_words(p.message, "`nodes.a.uses`", "required")


# --------------------------------------------------------------------------------------------
# expressions


def test_expression_on_a_sibling_is_not_upstream() -> None:
    p = only_problem("expr_sibling")
    assert (p.line, p.col) == (12, 7)
    assert_words(p.message, "node `right`", "node `left`", "not upstream", "needs:")


def test_condition_on_a_downstream_node_is_not_upstream() -> None:
    p = only_problem("expr_downstream")
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "node `first`", "node `second`", "not upstream")


def test_expression_through_a_transitive_ancestor_is_fine() -> None:
    text = ("id: f\nnodes:\n  a: {uses: noop}\n  b: {uses: noop, needs: [a]}\n"
            "  c:\n    uses: noop\n    needs: [b]\n    if: nodes.a.outputs.ok\n"
            "    with:\n      v: \"{{ nodes['a'].outputs.x }} and {{ nodes.b.outputs.y }}\"\n")
    flow = parse_flow(text)
    assert flow.nodes["c"].needs == ["b"]


def test_expression_on_an_undeclared_input() -> None:
    p = only_problem("expr_undeclared_input")
    assert (p.line, p.col) == (10, 7)  # `size:`, not the declared `inputs.day` on line 9
    assert_words(p.message, "input `sise`", "does not declare", "inputs:")


def test_expression_with_an_unknown_top_level_name() -> None:
    p = only_problem("expr_unknown_name")
    assert (p.line, p.col) == (6, 7)
    assert_words(p.message, "node `a`", "unknown name `env`", "inputs.<name>")


def test_expression_that_does_not_parse() -> None:
    p = only_problem("expr_unparsable")
    assert (p.line, p.col) == (6, 7)
    assert_words(p.message, "node `a`", "cannot parse", "nodes.a.outputs.")


@pytest.mark.parametrize("condition", ["a ===", "{{ nodes. }}", "{% if %}", "{{"])
def test_condition_that_does_not_parse(condition: str) -> None:
    (p,) = problems_in(node_flow(f"    if: {condition!r}\n".replace("'", '"')))
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "node `a`", "cannot parse")


def test_expression_deep_in_with_is_located_at_its_key() -> None:
    text = node_flow('    with:\n      outer:\n        - plain\n        - key: "{{ inputs.nope }}"\n')
    (p,) = problems_in(text)
    assert (p.line, p.col) == (8, 11)
    assert_words(p.message, "input `nope`")


# --------------------------------------------------------------------------------------------
# durations, cron, time zones


def test_timeout_with_an_unknown_unit() -> None:
    p = only_problem("duration_bad_unit")
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "`nodes.a.timeout`", "bad duration '10x'", "30s")


def test_negative_backoff() -> None:
    p = only_problem("duration_negative_backoff")
    assert (p.line, p.col) == (5, 26)
    assert_words(p.message, "`nodes.a.retry.backoff`", "bad duration -5")


def test_boolean_timeout() -> None:
    p = only_problem("duration_boolean")
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "`nodes.a.timeout`", "bad duration True")


@pytest.mark.parametrize("value", ["-1s", "1 h", "ten", "5 minutes", "1h-30m", "[]", "{}", "''",
                                   "1e400"])
def test_more_bad_durations(value: str) -> None:
    (p,) = problems_in(node_flow(f"    timeout: {value}\n"))
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "bad duration")


def test_cron_minute_out_of_range() -> None:
    p = only_problem("cron_bad_minute")
    assert (p.line, p.col) == (4, 7)
    assert_words(p.message, "`triggers.0.schedule.cron`", "bad cron expression '61 * * * *'",
                 "five fields")


def test_cron_with_too_few_fields() -> None:
    p = only_problem("cron_too_few_fields")
    assert (p.line, p.col) == (4, 7)
    assert_words(p.message, "bad cron expression '* * *'", "five fields")


@pytest.mark.parametrize("cron", ["0 25 * * *", "* * 32 * *", "* * * 13 *", "", "every day"])
def test_more_bad_crons(cron: str) -> None:
    text = f'id: f\ntriggers:\n  - schedule: {{cron: "{cron}"}}\nnodes:\n  a: {{uses: noop}}\n'
    (p,) = problems_in(text)
    assert (p.line, p.col) == (3, 16)  # the `cron` key
    assert_words(p.message, "bad cron expression")


def test_bad_timezone() -> None:
    p = only_problem("bad_timezone")
    assert (p.line, p.col) == (5, 7)
    assert_words(p.message, "`triggers.0.schedule.timezone`", "unknown timezone 'Europe/Pariss'",
                 "IANA")


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../../etc/passwd", "Europe"])
def test_more_bad_timezones(tz: str) -> None:
    text = ("id: f\ntriggers:\n  - schedule:\n      cron: '0 6 * * *'\n"
            f"      timezone: '{tz}'\nnodes:\n  a: {{uses: noop}}\n")
    (p,) = problems_in(text)
    assert (p.line, p.col) == (5, 7)
    assert_words(p.message, "unknown timezone")


# --------------------------------------------------------------------------------------------
# inputs


def test_input_defaults_of_the_wrong_type() -> None:
    expected = [
        (5, "input `count` default", "expected integer", "'three'"),
        (8, "input `dry_run` default", "expected boolean", "'yes'"),
        (11, "input `ratio` default", "expected number", "boolean"),
        (14, "input `name` default", "expected string", "5"),
        (17, "input `options` default", "expected object", "list"),
        (20, "input `items` default", "expected array", "dict"),
    ]
    problems = problems_of("input_default_wrong_type")
    assert len(problems) == len(expected)
    for p, (line, *fragments) in zip(problems, expected, strict=True):
        assert (p.line, p.col) == (line, 5)
        assert_words(p.message, *fragments)


def test_unknown_input_type() -> None:
    p = only_problem("input_unknown_type")
    assert (p.line, p.col) == (4, 5)
    assert_words(p.message, "`inputs.count.type`", "'string'", "'integer'", "'boolean'")


def test_input_spec_that_is_not_a_mapping() -> None:
    (p,) = problems_in("id: f\ninputs:\n  n: integer\nnodes:\n  a: {uses: noop}\n")
    assert (p.line, p.col) == (3, 3)
    assert_words(p.message, "`inputs.n`")


# --------------------------------------------------------------------------------------------
# triggers


@pytest.mark.parametrize("name", ["trigger_two_kinds", "trigger_no_kind"])
def test_trigger_needs_exactly_one_kind(name: str) -> None:
    p = only_problem(name)
    assert (p.line, p.col) == (3, 5)
    assert_words(p.message, "`triggers.0`", "exactly one of", "`schedule`", "`webhook`", "`after`")


def test_triggers_that_is_not_a_list() -> None:
    (p,) = problems_in("id: f\ntriggers:\n  webhook: {key: k}\nnodes:\n  a: {uses: noop}\n")
    assert (p.line, p.col) == (2, 1)
    assert_words(p.message, "`triggers`", "list")


# --------------------------------------------------------------------------------------------
# every problem at once


def test_every_problem_at_once_sorted_by_line() -> None:
    problems = problems_of("many_problems")
    expected = [
        (2, 1, "unknown key `colour`"),
        (4, 26, "input `count` default: expected integer"),
        (8, 5, "bad duration '10x'"),
        (10, 5, "unknown `uses: nope`"),
        (11, 16, "needs `ghost`"),
        (16, 7, "node `b`, which is not upstream of `c`"),
        (17, 26, "unknown key `jitter`"),
        (19, 16, "bad cron expression '61 * * * *'"),
    ]
    assert [(p.line, p.col) for p in problems] == [(line, col) for line, col, _ in expected]
    for p, (_, _, fragment) in zip(problems, expected, strict=True):
        assert fragment in p.message
    assert problems == sorted(problems, key=lambda p: (p.line, p.col))


def test_spec_error_text_is_one_problem_per_line() -> None:
    path = BAD / "many_problems.yaml"
    with pytest.raises(SpecError) as info:
        parse_flow(path.read_text(), str(path))
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems) >= 6
    assert all(line.startswith(f"{path}:") for line in lines)


# --------------------------------------------------------------------------------------------
# the fixture directories


def _bad_fixtures() -> list[str]:
    return sorted(p.stem for p in BAD.glob("*.yaml"))


@pytest.mark.parametrize("name", _bad_fixtures())
def test_each_bad_fixture_reports_single_line_problems(name: str) -> None:
    for p in problems_of(name):
        assert p.message and "\n" not in p.message


def test_good_flows_have_no_problems() -> None:
    files = sorted(GOOD.rglob("*.y*ml"))
    assert len(files) >= 3
    assert validate_paths([GOOD]) == []


def test_good_fan_out_fan_in_flow_parses_in_full() -> None:
    path = GOOD / "fan_out_fan_in.yaml"
    flow = parse_flow(path.read_text(), str(path))
    assert isinstance(flow, Flow)
    assert flow.ref == "data.warehouse/nightly-etl"
    assert set(flow.nodes["load"].needs) == {"clean_orders", "clean_customers"}
    assert flow.nodes["extract"].retry.attempts == 3
    assert flow.nodes["extract"].retry.backoff == 30.0
    assert flow.nodes["extract"].retry.max_backoff == 600.0
    assert flow.nodes["extract"].timeout == 5400.0
    assert flow.nodes["clean_orders"].timeout == 0.5
    assert flow.nodes["load"].timeout == 2 * 86400.0
    assert flow.nodes["clean_customers"].if_ == "not inputs.dry_run"
    kinds = [next(k for k in ("schedule", "webhook", "after") if getattr(t, k)) for t in flow.triggers]
    assert kinds == ["schedule", "webhook", "after"]
    assert flow.inputs["batch_size"].default == 500


def test_good_flow_with_anchors_and_merge_keys() -> None:
    flow = parse_flow((GOOD / "more" / "anchors.yml").read_text())
    assert flow.nodes["b"].retry.attempts == 2
    assert flow.nodes["b"].needs == ["a"]


def test_validate_paths_over_a_directory(tmp_path: Path) -> None:
    good = (GOOD / "minimal.yaml").read_text()
    (tmp_path / "deep" / "er").mkdir(parents=True)
    files = {
        "ok.yaml": good,
        "one.yaml": "id: one\nnodes:\n  a: {uses: nope}\n",
        "deep/two.yml": "id: two\nnodes:\n  a:\n    uses: noop\n    colour: red\n",
        "deep/er/three.yaml": "id: three\nnodes:\n  a: {uses: noop, needs: [a]}\n  b: {uses: nope}\n",
        "deep/notes.txt": "this: [is not: a flow\n",
        "deep/er/README.md": "# not a flow\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)

    problems = validate_paths([tmp_path])

    by_file: dict[str, list[Problem]] = {}
    for p in problems:
        by_file.setdefault(p.file, []).append(p)
    assert set(by_file) == {str(tmp_path / f) for f in ("one.yaml", "deep/two.yml",
                                                        "deep/er/three.yaml")}
    (one,) = by_file[str(tmp_path / "one.yaml")]
    assert (one.line, one.col) == (3, 7) and "uses: nope" in one.message
    (two,) = by_file[str(tmp_path / "deep/two.yml")]
    assert (two.line, two.col) == (5, 5) and "unknown key `colour`" in two.message
    three = by_file[str(tmp_path / "deep/er/three.yaml")]
    assert any("needs itself" in p.message for p in three)
    assert any("uses: nope" in p.message and p.line == 4 for p in three)
    # each file's problems stay together, in the file's own order
    files_in_order = [p.file for p in problems]
    assert files_in_order == sorted(files_in_order, key=files_in_order.index)


def test_validate_paths_over_files_and_unreadable_ones(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"id: caf\xe9\nnodes: {}\n")
    missing = tmp_path / "missing.yaml"
    good = GOOD / "minimal.yaml"
    problems = validate_paths([good, missing, latin1, BAD / "cycle_two.yaml"])
    assert [p.file for p in problems] == [str(missing), str(latin1), str(BAD / "cycle_two.yaml")]
    assert all((p.line, p.col) == (1, 1) for p in problems[:2])
    assert_words(problems[0].message, "cannot read the file")
    assert_words(problems[1].message, "cannot read the file", "utf-8")
    assert_words(problems[2].message, "a -> b -> a")


def test_validate_paths_of_nothing() -> None:
    assert validate_paths([]) == []


# --------------------------------------------------------------------------------------------
# hostile YAML and extreme values: each a problem, never an exception


def located(name: str) -> list[Problem]:
    """Problems of `tests/flows/bad/<name>.yaml` through parse_flow: any exception but SpecError
    propagates (a crash of `interlock validate`)."""
    path = BAD / f"{name}.yaml"
    with pytest.raises(SpecError) as info:
        parse_flow(path.read_text(encoding="utf-8"), str(path))
    problems = info.value.problems
    assert problems and all(p.line >= 1 and p.col >= 1 for p in problems)
    return problems


def test_tag_that_does_not_construct() -> None:
    problems = located("yaml_bad_int_tag")  # attempts: !!int three
    assert all(p.line == 6 for p in problems)
    assert any(p.col == 17 and "invalid value 'three'" in p.message for p in problems)


def test_impossible_date() -> None:
    problems = located("yaml_impossible_date")  # description: 2024-02-30
    assert all(p.line == 2 for p in problems)
    assert any(p.col == 14 and "invalid value '2024-02-30'" in p.message
               and "out of range" in p.message for p in problems)


def test_unknown_tag_is_one_clean_line_at_the_tag() -> None:
    (p,) = located("yaml_unknown_tag")  # home: !env HOME
    assert (p.line, p.col) == (6, 13)
    assert_words(p.message, "invalid value", "'!env'")
    assert "\n" not in p.message and "<unicode string>" not in p.message


def test_merge_of_a_scalar() -> None:
    problems = located("merge_scalar")  # <<: 5
    assert any((p.line, p.col) == (4, 5) and "invalid merge (`<<`)" in p.message
               for p in problems)


def test_merge_of_a_scalar_is_one_problem() -> None:
    (p,) = located("merge_scalar")
    assert p.line == 4


def test_recursive_alias() -> None:
    (p,) = located("recursive_alias")
    assert p.line in (5, 6)
    assert_words(p.message, "recursive alias")


def test_recursive_alias_points_at_the_alias() -> None:
    (p,) = located("recursive_alias")
    assert p.line == 6 or "params" in p.message


def test_control_character() -> None:
    (p,) = located("control_character")  # description: "ding\x07"
    assert (p.line, p.col) == (5, 23)
    assert_words(p.message, "invalid YAML", "not allowed")


def test_control_character_message_shows_the_character() -> None:
    (p,) = located("control_character")
    assert "U+0007" in p.message or "\\x07" in p.message


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x9b", "\ud800", "\ufffe"])
def test_other_unreadable_characters(char: str) -> None:
    (p,) = problems_in(f'id: f\nnodes:\n  a:\n    uses: noop\n    description: "x{char}"\n')
    assert (p.line, p.col) == (5, 20)
    assert_words(p.message, "not allowed")


def test_deep_nesting() -> None:
    (p,) = located("deep_nesting")  # 1000 nested `[`
    assert_words(p.message, "nested too deeply")


def test_deep_nesting_is_located() -> None:
    (p,) = located("deep_nesting")
    assert p.line == 6


def test_deeply_nested_expression() -> None:
    (p,) = located("expr_deeply_nested")  # {{ ((((...1...)))) }}
    assert (p.line, p.col) == (6, 7)
    assert_words(p.message, "node `a`", "nested too deeply")


def test_long_chain_declared_downstream_first() -> None:
    path = GOOD / "long_chain.yaml"
    flow = parse_flow(path.read_text(), str(path))
    assert len(flow.nodes) == 600
    assert list(flow.nodes)[0] == "n599" and flow.nodes["n599"].needs == ["n598"]


def test_long_cycle_is_found() -> None:
    lines = ["id: longcycle", "nodes:"]
    lines += [f"  n{i}: {{uses: noop, needs: [n{(i - 1) % 1500}]}}" for i in range(1499, -1, -1)]
    (p,) = problems_in("\n".join(lines) + "\n")
    assert_words(p.message, "cycle in `needs:`", "n1499 -> n1498")


def test_huge_timeout() -> None:
    (p,) = located("duration_huge")  # timeout: 1 followed by 400 zeros
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "`nodes.a.timeout`", "bad duration")


def test_nan_timeout() -> None:
    (p,) = located("duration_nan")
    assert (p.line, p.col) == (5, 5)
    assert_words(p.message, "bad duration nan")


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "{backoff: .nan}", "{backoff: .inf}",
                                   "{max_backoff: .inf}"])
def test_non_finite_durations(value: str) -> None:
    key = "retry" if value.startswith("{") else "timeout"
    (p,) = problems_in(node_flow(f"    {key}: {value}\n"))
    assert p.line == 5
    assert_words(p.message, "bad duration")


def test_cron_with_six_fields() -> None:
    (p,) = located("cron_six_fields")  # Quartz-style, seconds first
    assert (p.line, p.col) == (4, 7)
    assert_words(p.message, "bad cron expression '0 0 6 * * 1-5'", "five fields")


@pytest.mark.parametrize("name,kind", [("node_id_float", "float"), ("node_id_bool", "bool")])
def test_non_string_node_id_is_reported_at_its_line(name: str, kind: str) -> None:
    problems = located(name)
    assert {(p.line, p.col) for p in problems} == {(5, 3)}
    assert any(f"read as a {kind}" in p.message and "quote it" in p.message for p in problems)
    # Quoted, `1.5` is still not a valid node id, and says so; `yes` is.
    assert len(problems) == (2 if kind == "float" else 1)


def test_date_node_id_is_located() -> None:
    problems = located("date_node_id")  # 2024-01-01: as a node id
    assert any((p.line, p.col) == (3, 3) and "quote" in p.message for p in problems)


def test_date_node_id_problems_are_all_on_its_line() -> None:
    problems = located("date_node_id")
    assert {p.line for p in problems} == {3}
    assert any("read as a date" in p.message for p in problems)


def test_line_separator_does_not_shift_line_numbers() -> None:
    (p,) = located("line_separator")  # U+2028 inside a quoted string on line 2
    assert (p.line, p.col) == (5, 5)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\r"])
def test_unusual_line_breaks_do_not_shift_line_numbers(separator: str) -> None:
    text = f'id: f\ndescription: "a{separator}b"\nnodes:\n  a:\n    uses: nope\n'
    (p,) = problems_in(text)
    assert (p.line, p.col) == (5, 5)


def test_unknown_filter_crashes() -> None:
    (p,) = located("unknown_filter")
    assert (p.line, p.col) == (9, 7)
    assert_words(p.message, "node `a`", "upper_case")


@pytest.mark.parametrize("body", [
    '    if: "run.id is weekday"\n',
    '    with: {x: "{% for x in run|nope %}{% endfor %}"}\n',
    '    with: {x: "{% filter nope %}x{% endfilter %}"}\n',
    '    with: {x: "{% block b %}{% endblock %}{% block b %}{% endblock %}"}\n',
])
def test_unknown_test_or_filter_in_conditions_and_blocks_crashes(body: str) -> None:
    (p,) = problems_in(node_flow(body))
    assert p.line == 5 and any(w in p.message for w in ("weekday", "nope", "twice"))


def test_non_string_input_name_crashes() -> None:
    (p,) = located("input_name_number")  # `1:` under `inputs:`
    assert (p.line, p.col) == (3, 3)
    assert_words(p.message, "1", "quote")


@pytest.mark.parametrize("extra", ["", "  b: {type: integer, default: x}\n"])
@pytest.mark.parametrize("key", ["yes", "1.5", "12"])
def test_non_string_input_names_are_reported(key: str, extra: str) -> None:
    text = f"id: f\ninputs:\n  {key}: {{type: string}}\n{extra}nodes:\n  a: {{uses: noop}}\n"
    problems = problems_in(text)
    assert any(p.line == 3 for p in problems)


def test_validate_paths_over_the_bad_directory_reports_every_file() -> None:
    problems = validate_paths([BAD])
    assert {Path(p.file).name for p in problems} == {p.name for p in BAD.glob("*.yaml")}


# --------------------------------------------------------------------------------------------
# hypothesis: malformed flows never crash the loader

GOOD_TEXT = (GOOD / "fan_out_fan_in.yaml").read_text()
GOOD_LINES = GOOD_TEXT.splitlines()
GOOD_DOC = yaml.safe_load(GOOD_TEXT)

# Inserted into the text; the hostile YAML features have a corpus of their own below.
SAFE_TOKENS = ["{", "}", "[", "]", ":", ": ", "-", "- ", "\t", "  ", "\n", "'", '"', "#", ",",
               "?", "|", ">", "%", "@", "`", "{{", "}}", "{%", "%}", "null", "~", "é", "→",
               "\u00a0", "😀", "\ufeff", "\u2028", "中文", "1e400", "-5", "true", "yes"]
SAFE_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cn"))
DANGEROUS_TOKENS = ["\x00", "\x07", "\x7f", "\x9b", "&a ", "*a", "<<: ", "!!int ", "!!float ",
                    "2024-02-30", "[" * 1000, " | nope ", " is nope "]
SAFE_KEYS = ["nodes", "with", "needs", "retry", "inputs", "triggers", "if", "timeout", "uses",
             "schedule", "default", "type", "cron", "id"]


def _mutations(tokens: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[Any, ...]]:
    index = st.integers(min_value=0, max_value=10_000)
    return st.one_of(
        st.tuples(st.just("delete_line"), index),
        st.tuples(st.just("duplicate_line"), index),
        st.tuples(st.just("swap_lines"), index, index),
        st.tuples(st.just("delete_char"), index, index),
        st.tuples(st.just("duplicate_char"), index, index),
        st.tuples(st.just("swap_chars"), index, index),
        st.tuples(st.just("insert"), index, index, tokens),
    )


def _apply(lines: list[str], op: tuple[Any, ...]) -> list[str]:
    if not lines:
        return lines
    kind, i, *rest = op
    i %= len(lines)
    lines = list(lines)
    if kind == "delete_line":
        del lines[i]
    elif kind == "duplicate_line":
        lines.insert(i, lines[i])
    elif kind == "swap_lines":
        j = rest[0] % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
    else:
        line = lines[i]
        k = rest[0] % (len(line) + 1)
        if kind == "insert":
            line = line[:k] + rest[1] + line[k:]
        elif line and kind == "delete_char":
            k %= len(line)
            line = line[:k] + line[k + 1:]
        elif line and kind == "duplicate_char":
            k %= len(line)
            line = line[:k] + line[k] + line[k:]
        elif len(line) > 1 and kind == "swap_chars":
            k %= len(line) - 1
            line = line[:k] + line[k + 1] + line[k] + line[k + 2:]
        lines[i] = line
    return lines


def mutated_text(tokens: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(_mutations(tokens), min_size=1, max_size=8).map(
        lambda ops: "\n".join(_reduce(GOOD_LINES, ops)) + "\n")


def _reduce(lines: list[str], ops: list[tuple[Any, ...]]) -> list[str]:
    for op in ops:
        lines = _apply(lines, op)
    return lines


INTERESTING_STRINGS = st.sampled_from([
    "noop", "nope", "extract", "load", "{{ nodes.load.outputs.x }}", "{{ inputs.day }}",
    "{{ inputs.missing }}", "{{ nodes. }}", "{{", "10s", "-5", "1h30m", "0 6 * * *",
    "61 * * * *", "Europe/Paris", "Mars/Base", "integer", "boolean", "all_done", "a b",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), INTERESTING_STRINGS,
    st.text(SAFE_CHARS, max_size=12), st.text(max_size=8),  # any text: safe_dump escapes it
)
KEYS = st.one_of(st.sampled_from(SAFE_KEYS), INTERESTING_STRINGS, st.text(max_size=6),
                 st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=12,
)
# Where in the good flow a random structure replaces what is there.
TARGETS = [("nodes",), ("nodes", "load"), ("nodes", "load", "with"), ("nodes", "load", "needs"),
           ("nodes", "extract", "retry"), ("nodes", "extract", "timeout"), ("nodes", "load", "if"),
           ("nodes", "extract", "uses"), ("inputs",), ("inputs", "batch_size"),
           ("inputs", "batch_size", "default"), ("triggers",), ("triggers", 0),
           ("triggers", 0, "schedule"), ("id",), ("namespace",), ("nodes", "new")]


def _replaced(target: tuple[Any, ...], value: Any) -> str:
    doc = yaml.safe_load(GOOD_TEXT)
    holder = doc
    for part in target[:-1]:
        holder = holder[part]
    holder[target[-1]] = value
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


structured_text = st.builds(_replaced, st.sampled_from(TARGETS), STRUCTURES)
whole_random_text = st.builds(lambda v: yaml.safe_dump(v, allow_unicode=True, sort_keys=False),
                              STRUCTURES)
random_text = st.text(st.one_of(SAFE_CHARS, st.sampled_from(["\n", "\t", ":", "-", "{", "["])),
                      max_size=80)


def assert_flow_or_located_problems(text: str) -> None:
    try:
        flow = parse_flow(text, "fuzz.yaml")
    except SpecError as exc:
        assert exc.problems, "SpecError without problems"
        for p in exc.problems:
            assert isinstance(p, Problem) and p.file == "fuzz.yaml"
            assert isinstance(p.line, int) and p.line >= 1, p
            assert isinstance(p.col, int) and p.col >= 1, p
            assert isinstance(p.message, str) and p.message.strip(), p
    else:
        assert isinstance(flow, Flow)


FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def assert_no_new_crash(text: str) -> None:
    assert_flow_or_located_problems(text)


@FUZZ
@given(st.one_of(mutated_text(st.one_of(st.sampled_from(SAFE_TOKENS), SAFE_CHARS)),
                 structured_text, whole_random_text, random_text))
def test_malformed_flows_give_a_flow_or_located_problems(text: str) -> None:
    assert_no_new_crash(text)


@FUZZ
@given(structured_text)
def test_random_structures_under_flow_keys(text: str) -> None:
    assert_no_new_crash(text)


# Control characters, aliases, merges, tags, impossible dates, deep nesting, unknown filters.
@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@example(GOOD_TEXT.replace("description: last step", "description: \"bell\x07\""))
@example(GOOD_TEXT.replace("description: last step", "description: 2024-02-30"))
@example(GOOD_TEXT.replace("    needs: [load]\n", "    needs: [load]\n    <<: 5\n"))
@given(mutated_text(st.sampled_from(DANGEROUS_TOKENS + SAFE_TOKENS)))
def test_malformed_flows_with_every_character_and_yaml_feature(text: str) -> None:
    assert_no_new_crash(text)


def test_mutation_helpers_change_the_text() -> None:
    assert _apply(["ab", "cd"], ("swap_lines", 0, 1)) == ["cd", "ab"]
    assert _apply(["ab"], ("insert", 0, 1, "{")) == ["a{b"]
    assert _apply(["ab"], ("swap_chars", 0, 0)) == ["ba"]
    assert _apply(["ab"], ("delete_char", 0, 1)) == ["a"]
    assert GOOD_DOC["id"] == "nightly-etl"
