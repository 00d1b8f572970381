"""The black-box task interface and the task registry.

A task owns a :class:`~mcbo.space.SearchSpace` and evaluates a batch of decoded points to an
array of objective values ``[n]``, **to be minimised** (tasks that maximise negate once, here at
the task boundary).
"""

from __future__ import annotations

import inspect
import logging
import re
import shutil
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mcbo.space import SearchSpace

logger = logging.getLogger(__name__)

TASKS: dict[str, Callable[..., "Task"]] = {}


def register_task(name: str) -> Callable[[Callable[..., "Task"]], Callable[..., "Task"]]:
    """Class decorator adding a task factory to :data:`TASKS` under ``name``."""

    def wrap(factory: Callable[..., "Task"]) -> Callable[..., "Task"]:
        if name in TASKS:
            raise ValueError(f"task name {name!r} is registered twice")
        TASKS[name] = factory
        return factory

    return wrap


def build_task(name: str, /, **kwargs: Any) -> "Task":
    """Instantiate the registered task ``name`` with keyword arguments."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available: {sorted(TASKS)}")
    return TASKS[name](**kwargs)


class MissingToolError(RuntimeError):
    """An external tool a task needs is not installed; the message names the install step."""


def require_executable(name: str, install_hint: str) -> str:
    """Path of executable ``name`` or a :class:`MissingToolError` naming ``install_hint``."""
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(f"executable {name!r} not found on PATH; install it with: {install_hint}")
    return path


class Task(ABC):
    """A black box over a search space, minimised.

    Subclasses set :attr:`name`, build :attr:`space` in ``__init__`` and implement
    :meth:`_evaluate` on validated points.

    Args:
        seed: seed of any randomness inside the black box (noise, generated instances).
    """

    name: str = "task"
    #: Known minimum of the objective, when there is one.
    optimum: float | None = None

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    @property
    @abstractmethod
    def space(self) -> SearchSpace:
        """The task's search space."""

    @abstractmethod
    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        """Objective values ``[n]`` of validated points."""

    def evaluate(self, points: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> np.ndarray:
        """Validate ``points`` against the space and return their objective values ``[n]``."""
        if isinstance(points, Mapping):
            points = [points]
        checked = [self.space.validate(p) for p in points]
        values = np.asarray(self._evaluate(checked), dtype=float).reshape(-1)
        if values.shape[0] != len(checked):
            raise RuntimeError(f"task {self.name!r} returned {values.shape[0]} values for {len(checked)} points")
        return values

    def __call__(self, point: Mapping[str, Any]) -> float:
        """Evaluate one point; the signature solvers' ``optimize`` expects of a black box."""
        return float(self.evaluate([point])[0])

    def describe(self) -> str:
        """One paragraph naming the task, its space and its source."""
        doc = (type(self).__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        return f"{self.name}: {len(self.space)} parameters ({self.space.d} encoded columns). {doc}"


def space_kinds(space: SearchSpace) -> str:
    """``<n> variables: <count> <kind>, ...`` (kinds in order of appearance): ``53 variables: 50 boolean, 3 real``."""
    counts = Counter(type(param).__name__.lower() for param in space.params)
    kinds = ", ".join(f"{count} {kind}" for kind, count in counts.items())
    return f"{len(space)} variable{'s' if len(space) != 1 else ''}: {kinds}"


@dataclass(frozen=True)
class TaskSummary:
    """What ``mcbo tasks`` lists of a registered task.

    Attributes:
        name: the registered name.
        variables: :func:`space_kinds` of its space with default arguments, or ``None`` when the task
            cannot be built without arguments (its space depends on them).
        description: one line, the first paragraph of its docstring.
    """

    name: str
    variables: str | None
    description: str


def summarize_task(name: str, width: int = 110) -> TaskSummary:
    """Build the registered task ``name`` with its defaults and summarise it (see :class:`TaskSummary`)."""
    factory = TASKS[name]
    variables = None
    try:
        variables = space_kinds(factory().space)
    except Exception as err:  # noqa: BLE001 -- a task that needs arguments (botorch, pymoo) is still listed
        logger.debug("task %r cannot be built with its defaults: %s", name, err)
    return TaskSummary(name, variables, doc_line(factory, width))


def doc_line(obj: Any, width: int = 110) -> str:
    """The first paragraph of ``obj``'s docstring without reST markup, on one line of at most ``width`` characters."""
    text = " ".join((inspect.getdoc(obj) or "").split("\n\n")[0].split())
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text).replace("``", "")
    if len(text) > width:
        text = text[: width - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return text
