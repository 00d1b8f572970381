"""Benchmark-suite configs: which solvers x tasks x seeds, with what budget.

A suite config is a YAML mapping::

    name: quick                     # optional, defaults to the file's stem; a file name (results/<name>.db)
    budget: 30                      # evaluations per run (one run = solver x task x seed), 1 to 10^9
    batch_size: 1                   # points asked for at once (default 1, at most 10 000)
    n_init: 10                      # optional: replaces ``n_init`` of every recipe that declares one
    eval_timeout: 600               # optional: seconds an evaluation may run (see below)
    seeds: 2                        # an int n (seeds 0..n-1) or a list of distinct ints in [0, 2^32)
    solvers:
      - rs                                          # a named recipe (solvers/rs.yaml)
      - {name: rs_sobol, solver: rs, method: sobol} # an inline recipe (needs a name)
      - {recipe: rs, name: rs_b, method: sobol}     # a named recipe with overrides
    tasks:
      - ackley_cat                                  # a registered task with its defaults
      - {name: pest_control, kwargs: {n_stages: 25}}
      - {task: ackley_cat, name: ackley_cat_10, kwargs: {n_dims: 10}}  # same task, another label
      - {name: pest_control, eval_timeout: 60}      # this task's own limit, in place of the suite's
    exclude:                        # optional (solver, task) pairs that are not run
      - {solver: rs_b, task: ackley_cat_10}
    imports: [my_package.tasks]     # optional modules imported first (they register tasks/solvers)

:func:`load_config` takes the path of a YAML file or the name of a config shipped with mcbo
(``configs/<name>.yaml`` in a checkout, the ``mcbo.configs`` package when installed), e.g. ``quick``.

Loading only checks the config's shape; whether every named recipe and task exists is checked by
:func:`mcbo.runner.executor.preflight` before a suite runs, so configs may name solvers and tasks
that are still being written. Every error is a :class:`ConfigError` naming the field, the value
and what is allowed.

``eval_timeout`` (a positive number of seconds, for the suite and/or per task; a task's own beats the
suite's) makes every evaluation of the runs it applies to run in a worker process that is ended when an
evaluation passes the limit: the evaluation is stored as failed with an error starting ``timeout:`` (one
whose process dies, ``crashed:``) and the run goes on (see :mod:`mcbo.runner.jobs`). Without it,
evaluations run in the job's own process, as they always did.

The task instance is the same for every seed (as in the MCBO protocol: the seed varies the solver);
put ``seed`` in a task's ``kwargs`` to pick another instance.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcbo.registry import shipped_dir

TOP_LEVEL_KEYS = ("name", "description", "budget", "batch_size", "n_init", "eval_timeout", "seeds", "solvers",
                  "tasks", "exclude", "imports")
TASK_KEYS = ("task", "name", "kwargs", "eval_timeout")


#: Largest budget (evaluations per run): far beyond any run a results database or a model can hold.
MAX_BUDGET = 10**9
#: What a budget (evaluations per run) must be, wherever one is given: suite configs, ``mcbo run --evals``.
BUDGET_RULE = f"an integer from 1 to {MAX_BUDGET} (the number of evaluations)"
#: Largest batch size (points per ask), as :data:`mcbo.solvers.base.MAX_ASK`.
MAX_BATCH_SIZE = 10_000
#: Seeds are integers in ``[0, MAX_SEED]`` (what numpy and torch generators take), at most ``MAX_SEEDS`` of them.
MAX_SEED = 2**32 - 1
MAX_SEEDS = 100_000
#: A suite name is a file name (it names the default database ``results/<name>.db``), never a path.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ConfigError(ValueError):
    """A suite config is malformed; the message names the field, the value and what is allowed."""


def check_budget(value: Any, field_name: str = "budget") -> int:
    """``value`` as a budget (:data:`BUDGET_RULE`); else ``ConfigError`` ``<field>: got <value>; expected ...``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BUDGET:
        raise ConfigError(f"{field_name}: got {value!r}; expected {BUDGET_RULE}")
    return int(value)


def config_dir() -> Path:
    """Folder of the shipped suite configs: ``configs/`` in a checkout, ``mcbo/configs`` when installed."""
    folder = shipped_dir("configs", "mcbo.configs")
    return folder if folder is not None else Path(__file__).resolve().parents[2] / "configs"  # none shipped


def shipped_configs() -> list[str]:
    """Names of the suite configs shipped with mcbo (``quick``, ``mcbo-mixed``, ...)."""
    folder = config_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def find_config(path_or_name: str | Path) -> Path:
    """The config file at ``path_or_name``, else the shipped config of that name; ``ConfigError`` if neither."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    if isinstance(path_or_name, str) and path_or_name in shipped_configs():
        return config_dir() / f"{path_or_name}.yaml"
    raise ConfigError(f"config file {str(path)!r} does not exist; expected the path of a suite config YAML or the "
                      f"name of a shipped config: {', '.join(shipped_configs()) or 'none installed'}")


@dataclass
class SolverSpec:
    """One solver of a suite.

    Attributes:
        label: the solver's name in the results database and reports (unique in a suite).
        recipe: a named recipe (``solvers/<name>.yaml``) or an inline recipe dict.
        overrides: top-level recipe keys replaced when building it.
    """

    label: str
    recipe: str | dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data identifying this solver (stored with every run)."""
        return {"label": self.label, "recipe": copy.deepcopy(self.recipe), "overrides": copy.deepcopy(self.overrides)}


@dataclass
class TaskSpec:
    """One task of a suite: the registered task ``name`` built with ``kwargs``, reported as ``label``.

    ``eval_timeout`` is the task's own limit on one evaluation, in seconds (``None``: the suite's); it is not
    part of the task's identity, so a run goes on when it changes.
    """

    label: str
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    eval_timeout: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data identifying this task (stored with every run; without ``eval_timeout``)."""
        return {"label": self.label, "name": self.name, "kwargs": copy.deepcopy(self.kwargs)}


@dataclass
class JobSpec:
    """One run of a suite: ``solver`` on ``task`` with ``seed`` for ``budget`` evaluations.

    ``eval_timeout``: seconds one evaluation may run before its worker process is ended (``None``: no limit,
    evaluations run in the job's process); like ``budget``, not part of the run's identity.
    """

    solver: SolverSpec
    task: TaskSpec
    seed: int
    budget: int
    batch_size: int = 1
    n_init: int | None = None
    imports: tuple[str, ...] = ()
    eval_timeout: float | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        """``(solver label, task label, seed)``: the run's identity in a results database."""
        return self.solver.label, self.task.label, self.seed

    def identity(self) -> dict[str, Any]:
        """What must not change between a run and its resumption (budget and batch size may)."""
        return {"solver": self.solver.to_dict(), "task": self.task.to_dict(), "seed": self.seed,
                "n_init": self.n_init}

    def identity_json(self) -> str:
        """:meth:`identity` as canonical JSON."""
        return json.dumps(self.identity(), sort_keys=True, default=str)


@dataclass
class SuiteConfig:
    """A validated suite config; :meth:`jobs` expands it into runs."""

    name: str
    budget: int
    solvers: list[SolverSpec]
    tasks: list[TaskSpec]
    seeds: list[int]
    batch_size: int = 1
    n_init: int | None = None
    eval_timeout: float | None = None
    exclude: list[tuple[str, str]] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    source: str = "config"

    def jobs(self) -> list[JobSpec]:
        """Every (solver, task, seed) run not excluded, seed-major so early results cover all pairs."""
        excluded = set(self.exclude)
        return [
            JobSpec(solver=s, task=t, seed=seed, budget=self.budget, batch_size=self.batch_size,
                    n_init=self.n_init, imports=tuple(self.imports),
                    eval_timeout=self.eval_timeout if t.eval_timeout is None else t.eval_timeout)
            for seed in self.seeds
            for t in self.tasks
            for s in self.solvers
            if (s.label, t.label) not in excluded
        ]


def load_config(path: str | Path) -> SuiteConfig:
    """Read and validate the suite config at ``path`` (YAML), or the shipped config named ``path``."""
    path = find_config(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    return parse_config(raw, default_name=path.stem, source=str(path))


def parse_config(raw: Any, default_name: str = "suite", source: str = "config") -> SuiteConfig:
    """Validate a config mapping (as read from YAML) into a :class:`SuiteConfig`."""
    where = _Where(source)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: a suite config must be a mapping, got {type(raw).__name__}")
    unknown = [k for k in raw if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; allowed keys are {list(TOP_LEVEL_KEYS)}")
    for required in ("budget", "solvers", "tasks", "seeds"):
        if required not in raw:
            raise ConfigError(f"{source}: missing required key {required!r}")

    name = raw.get("name", default_name)
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        allowed = ("a file name: a letter or digit, then letters, digits, '_', '.' or '-' (it names the default "
                   "database results/<name>.db)")
        if "name" not in raw:
            allowed += "; the name comes from the config's file name: set `name:` in the config"
        raise where.error("name", name, allowed)
    description = raw.get("description", "") or ""
    if not isinstance(description, str):
        raise where.error("description", description, "a string")
    try:
        budget = check_budget(raw["budget"])
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    batch_size = _positive_int(where, "batch_size", raw.get("batch_size", 1), MAX_BATCH_SIZE)
    n_init = raw.get("n_init")
    if n_init is not None:
        n_init = _positive_int(where, "n_init", n_init)
        if n_init > budget:
            raise where.error("n_init", n_init, f"an integer no larger than budget ({budget})")
    eval_timeout = _eval_timeout(where, "eval_timeout", raw.get("eval_timeout"))
    seeds = _parse_seeds(where, raw["seeds"])
    solvers = _parse_list(where, "solvers", raw["solvers"], _parse_solver)
    tasks = _parse_list(where, "tasks", raw["tasks"], _parse_task)
    exclude = _parse_exclude(where, raw.get("exclude") or [], solvers, tasks)
    imports = raw.get("imports") or []
    if not isinstance(imports, list) or not all(isinstance(m, str) and m for m in imports):
        raise where.error("imports", imports, "a list of module names")
    config = SuiteConfig(name=name, budget=budget, solvers=solvers, tasks=tasks, seeds=seeds,
                         batch_size=batch_size, n_init=n_init, eval_timeout=eval_timeout, exclude=exclude,
                         imports=list(imports), description=description, raw=copy.deepcopy(dict(raw)), source=source)
    if not config.jobs():
        raise ConfigError(f"{source}: exclude leaves no (solver, task) pair to run")
    return config


class _Where:
    """Formats errors as ``<source>: <field>: got <value>; expected <allowed>``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, field_name: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(f"{self.source}: {field_name}: got {value!r}; expected {allowed}")


def _positive_int(where: _Where, name: str, value: Any, largest: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (largest is not None and value > largest):
        raise where.error(name, value, "a positive integer" + (f" of at most {largest}" if largest else ""))
    return int(value)


def _eval_timeout(where: _Where, name: str, value: Any) -> float | None:
    """``value`` as seconds of ``eval_timeout`` (``None`` when not set); else ``ConfigError`` naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise where.error(name, value, "a positive number of seconds (the longest one evaluation may run), e.g. "
                                       "600 or 0.5")
    return float(value)


def _parse_seeds(where: _Where, value: Any) -> list[int]:
    allowed = (f"a number of seeds from 1 to {MAX_SEEDS} or a list of at most {MAX_SEEDS} distinct integers "
               f"from 0 to {MAX_SEED}")
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_SEEDS:
            raise where.error("seeds", value, allowed)
        return list(range(value))
    if not isinstance(value, list) or not value or len(value) > MAX_SEEDS:
        shown = f"a list of {len(value)} seeds" if isinstance(value, list) and len(value) > 10 else value
        raise where.error("seeds", shown, allowed)
    for i, seed in enumerate(value):
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise where.error(f"seeds[{i}]", seed, f"an integer from 0 to {MAX_SEED}")
    if len(set(value)) != len(value):
        raise where.error("seeds", value, "distinct seeds")
    return [int(s) for s in value]


def _parse_list(where: _Where, name: str, value: Any, parse_item) -> list:
    if not isinstance(value, list) or not value:
        raise where.error(name, value, "a non-empty list")
    items = [parse_item(where, f"{name}[{i}]", item) for i, item in enumerate(value)]
    labels = [item.label for item in items]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise where.error(name, duplicates, "distinct names (give repeated entries a different 'name')")
    return items


def _label(where: _Where, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error(name, value, "a non-empty string")
    return value


def _parse_solver(where: _Where, name: str, item: Any) -> SolverSpec:
    if isinstance(item, str):
        return SolverSpec(label=_label(where, name, item), recipe=item)
    if not isinstance(item, Mapping):
        raise where.error(name, item, "a recipe name or a mapping (an inline recipe with 'solver' and 'name', "
                                      "or 'recipe' plus overrides)")
    if "solver" in item and "recipe" in item:
        raise where.error(name, dict(item), "either 'solver' (an inline recipe) or 'recipe' (a named recipe "
                                            "with overrides), not both")
    if "solver" in item:
        if "name" not in item:
            raise where.error(f"{name}.name", None, "a name for the inline recipe (used in results and reports)")
        label = _label(where, f"{name}.name", item["name"])
        _label(where, f"{name}.solver", item["solver"])
        return SolverSpec(label=label, recipe=copy.deepcopy(dict(item)))
    if "recipe" in item:
        recipe = _label(where, f"{name}.recipe", item["recipe"])
        label = _label(where, f"{name}.name", item.get("name", recipe))
        overrides = {k: copy.deepcopy(v) for k, v in item.items() if k not in ("recipe", "name")}
        return SolverSpec(label=label, recipe=recipe, overrides=overrides)
    raise where.error(name, dict(item), "a mapping with 'solver' (an inline recipe) or 'recipe' (a named recipe)")


def _parse_task(where: _Where, name: str, item: Any) -> TaskSpec:
    if isinstance(item, str):
        return TaskSpec(label=_label(where, name, item), name=item)
    if not isinstance(item, Mapping):
        raise where.error(name, item, "a task name or a mapping with keys from " + str(list(TASK_KEYS)))
    unknown = [k for k in item if k not in TASK_KEYS]
    if unknown:
        raise where.error(f"{name}", dict(item), f"only the keys {list(TASK_KEYS)} (unknown: {unknown})")
    if "task" not in item and "name" not in item:
        raise where.error(name, dict(item), "a 'name' (the registered task) or 'task' (the registered task) "
                                            "plus 'name' (its label)")
    task_name = _label(where, f"{name}.task" if "task" in item else f"{name}.name", item.get("task", item.get("name")))
    label = _label(where, f"{name}.name", item.get("name", task_name))
    kwargs = item.get("kwargs") or {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise where.error(f"{name}.kwargs", kwargs, "a mapping of keyword arguments of the task")
    eval_timeout = _eval_timeout(where, f"{name}.eval_timeout", item.get("eval_timeout"))
    return TaskSpec(label=label, name=task_name, kwargs=copy.deepcopy(dict(kwargs)), eval_timeout=eval_timeout)


def _parse_exclude(
    where: _Where, value: Any, solvers: list[SolverSpec], tasks: list[TaskSpec]
) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise where.error("exclude", value, "a list of {solver: NAME, task: NAME} mappings")
    solver_labels = [s.label for s in solvers]
    task_labels = [t.label for t in tasks]
    pairs: list[tuple[str, str]] = []
    for i, entry in enumerate(value):
        if not isinstance(entry, Mapping) or not entry or set(entry) - {"solver", "task"}:
            raise where.error(f"exclude[{i}]", entry, "a mapping with 'solver' and/or 'task'")
        solver = entry.get("solver")
        task = entry.get("task")
        if solver is not None and solver not in solver_labels:
            raise where.error(f"exclude[{i}].solver", solver, f"one of the suite's solvers {solver_labels}")
        if task is not None and task not in task_labels:
            raise where.error(f"exclude[{i}].task", task, f"one of the suite's tasks {task_labels}")
        for s in [solver] if solver is not None else solver_labels:
            for t in [task] if task is not None else task_labels:
                pairs.append((s, t))
    return pairs
