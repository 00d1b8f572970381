"""Tests of mcbo/tasks/rna.py (RNA inverse folding with ViennaRNA)."""

from __future__ import annotations

import numpy as np
import pytest

from mcbo.tasks import build_task
from mcbo.tasks.rna import RNAInverseFolding, eterna_targets, resolve_target

RNA = pytest.importorskip("RNA", reason="ViennaRNA (pip install viennarna) is not installed")


@pytest.mark.parametrize("target_id", sorted(i for i, t in eterna_targets().items() if t["solution"]))
def test_shipped_solution_solves_its_target(target_id):
    entry = eterna_targets()[target_id]
    task = RNAInverseFolding(target=target_id)
    assert task.space.d == len(entry["structure"])
    assert task.evaluate({"sequence": entry["solution"]})[0] == 0.0


def test_the_mcbo_papers_target_65_and_its_best_known_sequence():
    entry = eterna_targets()[65]
    assert entry["structure"] == ".(((((........)((((....))))..))))......." and entry["solution"] is None
    task = RNAInverseFolding(target=65)
    assert task.space.d == 40
    assert task.evaluate({"sequence": entry["best_known"]["sequence"]})[0] == entry["best_known"]["distance"]


def test_value_is_hamming_distance_of_mfe_structure():
    task = build_task("rna_inverse_folding", target="(((((......)))))")
    # Poly-A cannot pair, so it folds open and misses each of the 10 paired positions.
    assert task.fold("A" * 16) == "." * 16
    assert task.evaluate({"sequence": "A" * 16})[0] == 10.0


def test_random_batch_evaluates_repeatably():
    task = RNAInverseFolding(target=15)
    points = task.space.sample_points(3, seed=0)
    values = task.evaluate(points)
    assert values.shape == (3,)
    assert np.all((values >= 0) & (values <= len(task.target))) and np.all(values == np.round(values))
    np.testing.assert_array_equal(RNAInverseFolding(target="15").evaluate(points), values)


def test_dot_bracket_target_accepted():
    assert resolve_target("((...))") == "((...))"
    assert RNAInverseFolding(target="((((....))))").space.d == 12


@pytest.mark.parametrize(
    ("target", "fragment"),
    [("((x))", "'((x))'"), ("(((...", "never closed"), ("())(", "closes no"), (999, "shipped ids"), ("", "")],
)
def test_bad_targets_raise_naming_the_value(target, fragment):
    with pytest.raises(ValueError, match="target") as err:
        RNAInverseFolding(target=target)
    assert fragment in str(err.value)
    if isinstance(target, int):
        assert str(sorted(eterna_targets())) in str(err.value)
