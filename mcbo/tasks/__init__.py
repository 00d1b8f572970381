"""Benchmark black boxes behind one interface (:class:`Task`) and a registry of them.

Importing this package registers every task; heavy or external dependencies (ABC, ViennaRNA,
scikit-learn, XGBoost) are imported lazily inside the tasks that need them.
"""

from mcbo.tasks.base import TASKS, MissingToolError, Task, build_task, register_task, require_executable
from mcbo.tasks.adapters import BoTorchTask, PymooTask, botorch_task, pymoo_task
from mcbo.tasks.alignment import DPOAlignment, GRPOAlignment
from mcbo.tasks.alignment_real import DPOAlignmentReal
from mcbo.tasks.contamination import Contamination
from mcbo.tasks.crash import CrashCategorical, CrashMixed
from mcbo.tasks.hpo import SVRHPO, XGBoostHPO
from mcbo.tasks.labs import Labs
from mcbo.tasks.llm_decoding import BestOfK, SpeculativeDecoding
from mcbo.tasks.llm_decoding_api import LLMDecodingAPI
from mcbo.tasks.llm_local import SpeculativeDecodingReal
from mcbo.tasks.logic_synthesis import LogicSynthesis, LogicSynthesisMixed
from mcbo.tasks.maxsat import MaxSat
from mcbo.tasks.pest_control import PestControl
from mcbo.tasks.rna import RNAInverseFolding
from mcbo.tasks.sfu import SfuTask
from mcbo.tasks.synthetic import Ackley53, CategoricalAckley
from mcbo.tasks.tsp import TSP

__all__ = [
    "TASKS", "Ackley53", "BestOfK", "BoTorchTask", "CategoricalAckley", "Contamination", "CrashCategorical", "CrashMixed", "DPOAlignment", "DPOAlignmentReal",
    "GRPOAlignment", "Labs", "LLMDecodingAPI", "LogicSynthesis", "LogicSynthesisMixed", "MaxSat", "MissingToolError", "PestControl",
    "PymooTask", "RNAInverseFolding", "SVRHPO", "SfuTask", "SpeculativeDecoding", "SpeculativeDecodingReal", "TSP", "Task", "XGBoostHPO",
    "botorch_task", "build_task", "pymoo_task", "register_task", "require_executable",
]
