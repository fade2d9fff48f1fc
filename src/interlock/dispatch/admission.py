"""The controller's side of concurrency limits: which scopes a plan touches (locked first,
in key order), whether the run or a node may start now, and whom a freed slot wakes.

A held run becomes QUEUED (or ends, for `cancel_new` / `fail_new`); a held node becomes
SLOT_WAIT. Both record the scope they wait for, and the pass that frees a slot of that
scope sends ADVANCE to its oldest waiters in the same transaction (`interlock.limits`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from interlock.config.systems import Systems, load_systems
from interlock.engine.decisions import Decision, SetNode, SetRun, Submit
from interlock.limits import slots
from interlock.limits.scopes import SYSTEM, Scope, run_scopes, system_scope
from interlock.policies.context import SYSTEM_KEY
from interlock.states import NODE_IN_FLIGHT, RUN_ACTIVE, RUN_TERMINAL, RUN_WAITING, NodeState
from interlock.store.runs import Loaded


class Admission:
    def __init__(self, session: Session, loaded: Loaded):
        self.session, self.loaded = session, loaded
        self._systems: Systems | None = None
        self._run_scopes: list[Scope] | None = None

    @property
    def systems(self) -> Systems:
        if self._systems is None:
            self._systems = load_systems()
        return self._systems

    @property
    def run_scopes(self) -> list[Scope]:
        if self._run_scopes is None:
            self._run_scopes = run_scopes(self.loaded.flow)
        return self._run_scopes

    def lock(self, decisions: list[Decision]) -> None:
        """Lock every scope this plan may admit into or free, before applying any of it."""
        scopes: list[Scope] = []
        run_state = self.loaded.run.state
        for decision in decisions:
            if isinstance(decision, SetRun) and (
                    (decision.to not in RUN_TERMINAL and run_state in RUN_WAITING)
                    or (decision.to in RUN_TERMINAL and run_state in RUN_ACTIVE)):
                scopes += self.run_scopes
            elif isinstance(decision, Submit):
                scopes += filter(None, [system_scope(decision.params, self.systems)])
            elif isinstance(decision, SetNode):
                scopes += filter(None, [self.node_scope(decision.node_id),
                                        self.waiting_scope(decision.node_id)])
        if scopes:
            slots.lock(self.session, scopes)

    def held_run(self) -> Scope | None:
        """The scope that has no slot for this run now, if any (run scopes are locked)."""
        if not self.run_scopes:
            return None
        return slots.run_is_held(self.session, self.loaded.run, self.run_scopes)

    def held_node(self, submit: Submit, waiting_since: datetime | None) -> Scope | None:
        scope = system_scope(submit.params, self.systems)
        if scope is None or not slots.node_is_held(
                self.session, scope, run_id=self.loaded.run.id, node_id=submit.node_id,
                waiting_since=waiting_since):
            return None
        return scope

    def node_scope(self, node_id: str) -> Scope | None:
        """The limited system of a node's attempt in flight (whose slot it holds), if any."""
        if self.loaded.nodes[node_id].state not in {s.value for s in NODE_IN_FLIGHT}:
            return None
        attempts = self.loaded.attempts.get(node_id) or []
        if not attempts or not attempts[-1].system:
            return None
        return system_scope({SYSTEM_KEY: attempts[-1].system}, self.systems)

    def waiting_scope(self, node_id: str) -> Scope | None:
        """The limited system a node in SLOT_WAIT waits for (its `waiting_for`), if any."""
        row = self.loaded.nodes[node_id]
        if row.state != NodeState.SLOT_WAIT.value or not row.waiting_for:
            return None
        kind, _, name = row.waiting_for.partition(":")
        return system_scope({SYSTEM_KEY: name}, self.systems) if kind == SYSTEM else None

    def wake_after_run(self) -> list[str]:
        """Runs to plan again now that this run no longer holds its slots."""
        return [rid for scope in self.run_scopes for rid in slots.runs_to_wake(self.session, scope)]

    def wake_after_node(self, node_id: str, was: NodeState) -> list[str]:
        """Runs with nodes waiting for the slot ``node_id`` just gave back, if it held one;
        or, when it stops waiting without taking one (cancelled, refused), for the slot it
        may have been woken for (else the next waiter would never hear of it)."""
        if was in NODE_IN_FLIGHT:
            scope = self.node_scope(node_id)
        elif was is NodeState.SLOT_WAIT:
            scope = self.waiting_scope(node_id)
        else:
            return []
        return [] if scope is None else slots.runs_to_wake(self.session, scope)
