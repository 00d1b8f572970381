"""Tests of mcbo/tasks/labs.py: Low Autocorrelation Binary Sequences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from botorch.test_functions.synthetic import Labs as BoTorchLabs

from mcbo.tasks import build_task
from mcbo.tasks.labs import OPTIMAL_ENERGY, Labs, autocorrelation_energy, merit_factor


def _energy_loop(s: list[int]) -> int:
    """Energy from the definition, one correlation at a time."""
    n = len(s)
    return sum(sum(s[i] * s[i + k] for i in range(n - k)) ** 2 for k in range(1, n))


def _brute_force_best_energy(n: int) -> int:
    """Smallest energy over all sequences (first sign fixed: E is invariant under negation)."""
    tails = np.array(list(itertools.product([-1, 1], repeat=n - 1)))
    seqs = np.hstack([np.ones((len(tails), 1), dtype=int), tails])
    energy = np.zeros(len(seqs), dtype=np.int64)
    for k in range(1, n):
        energy += np.sum(seqs[:, : n - k] * seqs[:, k:], axis=1) ** 2
    return int(energy.min())


def _point(task: Labs, signs: list[int]) -> dict:
    return {name: s > 0 for name, s in zip(task.space.names, signs)}


def test_random_batch_is_finite_shaped_and_deterministic():
    task = Labs(n=50)
    points = task.space.sample_points(8, seed=0)
    values = task.evaluate(points)
    assert values.shape == (8,) and np.all(np.isfinite(values)) and np.all(values < 0)
    np.testing.assert_array_equal(Labs(n=50).evaluate(points), values)


def test_energy_matches_the_definition():
    rng = np.random.default_rng(0)
    for n in (2, 5, 13, 31):
        s = rng.choice([-1, 1], size=(6, n))
        np.testing.assert_array_equal(autocorrelation_energy(s), [_energy_loop(list(r)) for r in s])
        np.testing.assert_array_equal(autocorrelation_energy(s > 0), autocorrelation_energy(s))


def test_barker_13_has_merit_169_over_12():
    barker = [1, 1, 1, 1, 1, -1, -1, 1, 1, -1, 1, -1, 1]
    task = Labs(n=13)
    assert task(_point(task, barker)) == pytest.approx(-169 / 12)
    assert task.optimum == pytest.approx(-169 / 12)


@pytest.mark.parametrize("n", range(3, 15))
def test_known_optimum_matches_brute_force(n):
    assert OPTIMAL_ENERGY[n] == _brute_force_best_energy(n)
    assert Labs(n=n).optimum == pytest.approx(-(n**2) / (2 * _brute_force_best_energy(n)))


@pytest.mark.slow
@pytest.mark.parametrize("n", range(15, 21))
def test_known_optimum_matches_brute_force_slow(n):
    assert OPTIMAL_ENERGY[n] == _brute_force_best_energy(n)


def test_task_optimum_is_the_best_over_all_points_small_n():
    task = Labs(n=9)
    points = [_point(task, list(s)) for s in itertools.product([-1, 1], repeat=9)]
    assert task.evaluate(points).min() == pytest.approx(task.optimum)


@pytest.mark.parametrize("n", [10, 20, 30, 40, 50, 60])
def test_agrees_with_botorch_labs_and_its_optimizers(n):
    reference = BoTorchLabs(dim=n)
    task = Labs(n=n)
    best = reference.optimizers[0].numpy()
    assert autocorrelation_energy(best[None, :])[0] == OPTIMAL_ENERGY[n]
    assert task(dict(zip(task.space.names, (bool(v) for v in best)))) == pytest.approx(task.optimum)
    assert -task.optimum == pytest.approx(reference.optimal_value, abs=1e-3)
    bits = np.random.default_rng(n).integers(0, 2, size=(8, n))
    np.testing.assert_allclose(merit_factor(bits), reference.evaluate_true(torch.tensor(bits, dtype=torch.double)))


def test_unknown_lengths_have_no_optimum():
    assert Labs(n=27).optimum is None


def test_registered():
    task = build_task("labs", n=12)
    assert isinstance(task, Labs) and len(task.space) == 12


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, "50"])
def test_bad_length_names_the_field(bad):
    with pytest.raises(ValueError, match="n must be"):
        Labs(n=bad)


def test_bad_sequence_entries_are_rejected():
    with pytest.raises(ValueError, match=r"\+-1"):
        merit_factor(np.array([[1, 2, -1]]))
