"""Finds adapters through the `interlock.adapters` entry-point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from interlock.adapters.contract import Adapter
from interlock.config.systems import set_url_rule
from interlock.errors import InterlockError

ENTRY_POINT_GROUP = "interlock.adapters"


class UnknownAdapter(InterlockError):
    pass


class AdapterRegistry:
    """Adapter classes by kind; instances are made once and shared (adapters are stateless)."""

    def __init__(self, classes: dict[str, type[Adapter]] | None = None):
        self._classes = dict(classes or {})
        self._entry_points: dict[str, EntryPoint] = {}
        self._instances: dict[str, Adapter] = {}

    @classmethod
    def from_entry_points(cls) -> AdapterRegistry:
        registry = cls()
        # Loaded on first use, so one broken adapter package does not break the others.
        registry._entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        return registry

    def register(self, adapter_cls: type[Adapter]) -> None:
        self._classes[adapter_cls.kind] = adapter_cls
        self._instances.pop(adapter_cls.kind, None)

    def add_instance(self, adapter: Adapter) -> None:
        self._classes[adapter.kind] = type(adapter)
        self._instances[adapter.kind] = adapter

    def remove(self, kind: str) -> None:
        """Forget a kind registered with `register` or `add_instance` (entry points stay)."""
        self._classes.pop(kind, None)
        self._instances.pop(kind, None)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._classes) | frozenset(self._entry_points)

    def adapter_class(self, kind: str) -> type[Adapter]:
        if kind not in self._classes and kind in self._entry_points:
            try:
                self._classes[kind] = self._entry_points[kind].load()
            except Exception as exc:  # an installed but broken adapter package
                raise UnknownAdapter(
                    f"the adapter for `uses: {kind}` failed to load: {exc!r}") from exc
        try:
            return self._classes[kind]
        except KeyError:
            known = ", ".join(sorted(self.kinds)) or "none"
            raise UnknownAdapter(
                f"unknown `uses: {kind}`: no installed adapter has that kind (installed: {known}); "
                f"install the package that provides it"
            ) from None

    def get(self, kind: str) -> Adapter:
        if kind not in self._instances:
            self._instances[kind] = self.adapter_class(kind)()
        return self._instances[kind]


@cache
def default_registry() -> AdapterRegistry:
    return AdapterRegistry.from_entry_points()


def _needs_url(kind: str) -> bool:
    """Whether systems of ``kind`` need a `url` (`Adapter.system_has_url`); a kind with no
    working adapter does, and its nodes fail on the missing adapter."""
    try:
        return default_registry().adapter_class(kind).system_has_url
    except UnknownAdapter:
        return True


set_url_rule(_needs_url)  # config reads systems files, but only adapters know their kinds
