"""Benchmark suites: configs of solvers x tasks x seeds, run in-process or on Dask, stored in SQLite.

``load_config`` reads a suite YAML, ``run_suite`` runs (or resumes) it into a results database, and
:mod:`mcbo.runner.report` turns a database into rank tables, best values, timings and plots.
"""

from mcbo.runner.config import ConfigError, JobSpec, SolverSpec, SuiteConfig, TaskSpec, load_config, parse_config
from mcbo.runner.executor import SuiteError, SuiteInterrupted, SuiteMismatch, SuiteProgress, preflight, run_suite
from mcbo.runner.lock import DatabaseBusy
from mcbo.runner.report import Report, build_report, write_report
from mcbo.runner.storage import ResultsDB, StorageError

__all__ = [
    "ConfigError", "DatabaseBusy", "JobSpec", "Report", "ResultsDB", "SolverSpec", "StorageError", "SuiteConfig",
    "SuiteError", "SuiteInterrupted", "SuiteMismatch", "SuiteProgress", "TaskSpec", "build_report", "load_config",
    "parse_config", "preflight", "run_suite", "write_report",
]
