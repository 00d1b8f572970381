"""Benchmark black boxes behind one interface (:class:`Task`) and a registry of them."""

from mcbo.tasks.base import TASKS, MissingToolError, Task, build_task, register_task, require_executable
from mcbo.tasks.pest_control import PestControl
from mcbo.tasks.synthetic import Ackley53, CategoricalAckley

__all__ = [
    "TASKS", "Ackley53", "CategoricalAckley", "MissingToolError", "PestControl", "Task", "build_task",
    "register_task", "require_executable",
]
