"""Open registries: the names a recipe uses, mapped to the components they build.

Every kind of component a recipe names (solver kinds, models, kernels, acquisitions, acquisition
optimisers, trust regions) has one :class:`Registry`, filled by its decorator where the component
is defined, so a package outside mcbo adds one the same way::

    from mcbo.acq_optim import AcqOptimizer, register_acq_optimizer

    @register_acq_optimizer("my_search")
    class MySearch(AcqOptimizer):
        def __init__(self, n_points: int = 100) -> None: ...

A registry is also the recipe schema of its kind: the *settings* of a component are the keyword
parameters of its constructor, less the *context* the builder supplies (the space, the model, the
device...). :meth:`Registry.build` refuses an unknown name or setting with a ``ValueError`` that
names it and lists what is allowed.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T", bound=Callable[..., Any])

#: What a registered name (and a recipe file's name) may look like.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")



def shipped_dir(folder: str, package: str) -> Path | None:
    """A data folder shipped with mcbo: ``<repo>/<folder>`` in a checkout, else the installed data-only
    (namespace) package ``package`` (e.g. ``mcbo.recipes``); ``None`` when neither exists."""
    checkout = Path(__file__).resolve().parents[1] / folder
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])

def check_name(name: Any, what: str) -> str:
    """``name`` when it matches :data:`NAME_PATTERN`, else a ``ValueError`` naming ``what`` it was for."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"{what} {name!r} is not allowed: names must match {NAME_PATTERN.pattern}")
    return name


class Registry(Mapping[str, T]):
    """Name -> component class (or builder function) of one kind, filled by :meth:`register`.

    Reads as a mapping (``registry["gp"]``, ``"gp" in registry``, ``sorted(registry)``).

    Args:
        label: what the components are, as messages say it (e.g. ``"model"``).
        key: the recipe key holding the name (``"type"``: messages say "unknown model type 'rf'"; ``None``
            when the label is the key itself, as for ``nominal_kernel``).
        context: constructor parameters the builder passes itself; they are not recipe settings.
    """

    def __init__(self, label: str, key: str | None = "type", context: Iterable[str] = ()) -> None:
        self.label = label
        self.kind = f"{label} {key}" if key else label
        self.context = frozenset(context)
        self._entries: dict[str, T] = {}
        self._schemas: dict[str, _Schema] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a class or builder under ``name``; a name already taken raises ``ValueError``."""
        check_name(name, f"{self.kind} name")

        def wrap(component: T) -> T:
            if self._entries.get(name, component) is not component:
                raise ValueError(f"{self.kind} {name!r} is registered twice "
                                 f"({_qualname(self._entries[name])} and {_qualname(component)})")
            self._entries[name] = component
            self._schemas.pop(name, None)
            return component

        return wrap

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"

    def lookup(self, name: Any) -> T:
        """The component registered as ``name``; ``ValueError`` naming it and the allowed names otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; allowed: {sorted(self._entries)}") from None

    def settings(self, name: str) -> dict[str, Any]:
        """Settings of ``name``'s component -> their defaults (``inspect.Parameter.empty`` when required)."""
        return dict(self._schema(name).settings)

    def check_settings(self, name: str, settings: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming every key of ``settings`` that ``name``'s component does not take."""
        schema = self._schema(name)
        unknown = sorted(str(k) for k in settings if k not in schema.settings)
        if unknown and not schema.open_ended:
            raise ValueError(f"{self.label} {name!r}: unknown setting(s) {unknown}; "
                             f"allowed: {sorted(schema.settings)}")

    def build(self, name: Any, settings: Mapping[str, Any], **context: Any) -> Any:
        """Construct ``name``'s component from recipe ``settings`` plus the ``context`` values it accepts.

        Raises:
            ValueError: for an unknown name or setting, or settings the constructor rejects.
        """
        component = self.lookup(name)
        self.check_settings(name, settings)
        accepted = self._schema(name).parameters
        try:
            return component(**{k: v for k, v in context.items() if k in accepted}, **settings)
        except TypeError as err:
            raise ValueError(f"{self.label} {name!r}: {err}") from None

    def _schema(self, name: str) -> "_Schema":
        """The constructor signature of ``name``'s component, read once."""
        if name not in self._schemas:
            named, open_ended = _named_parameters(self.lookup(name))
            self._schemas[name] = _Schema(
                settings={p.name: p.default for p in named if p.name not in self.context},
                parameters=frozenset(p.name for p in named),
                open_ended=open_ended,
            )
        return self._schemas[name]


def _named_parameters(component: Callable[..., Any]) -> tuple[list[inspect.Parameter], bool]:
    """Keyword-passable parameters of ``component`` and whether it takes any other keyword.

    For a class whose ``__init__`` takes ``**kwargs``, those are taken to go on to the base class's
    ``__init__``, whose parameters are added in turn (a solver's ``device`` and ``dtype``).
    """
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if not inspect.isclass(component):
        params = inspect.signature(component).parameters.values()
        return [p for p in params if p.kind in kinds], any(p.kind is p.VAR_KEYWORD for p in params)
    named: dict[str, inspect.Parameter] = {}
    for klass in component.__mro__:
        if klass is object:
            break
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]  # without self
        for p in params:
            if p.kind in kinds:
                named.setdefault(p.name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return list(named.values()), False
    return list(named.values()), False  # **kwargs reaching object.__init__ accept nothing more


class _Schema(NamedTuple):
    settings: dict[str, Any]  # recipe settings -> defaults
    parameters: frozenset[str]  # every named constructor parameter (settings and context)
    open_ended: bool  # the constructor takes **kwargs: any setting is passed on


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


__all__ = ["NAME_PATTERN", "Registry", "check_name"]
