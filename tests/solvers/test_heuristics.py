"""Hill climbing, simulated annealing and the pymoo GA on the true objective: progress, seeds, batches,
constraints and save/load."""

import json

import pytest
import torch

from mcbo.solvers import build_solver, load_recipe
from mcbo.solvers.heuristics import GeneticAlgorithmSolver, HillClimbing, SimulatedAnnealingSolver
from mcbo.space import Boolean, Categorical, Integer, Permutation, Real, SearchSpace
from mcbo.tasks import build_task

KINDS = ["hc", "sa", "ga"]
SMALL = {"ga": {"pop_size": 10}}  # ten offspring per generation, so 30 evaluations see two generations


@pytest.fixture(scope="module")
def ackley():
    return build_task("ackley_cat")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_improves_on_its_first_ten_evaluations(ackley, kind, seed):
    solver = build_solver(kind, ackley.space, seed=seed, **SMALL.get(kind, {}))
    solver.optimize(ackley, 30)
    values = solver.history["value"]
    assert len(values) == 30 and solver.history["status"].eq("ok").all()
    assert values.iloc[10:].min() < values.iloc[:10].min()


@pytest.mark.parametrize("kind", KINDS)
def test_seeds_reproduce(ackley, kind):
    runs = []
    for seed in (5, 5, 6):
        solver = build_solver(kind, ackley.space, seed=seed, **SMALL.get(kind, {}))
        solver.optimize(ackley, 25, batch_size=3)
        runs.append(solver.history[ackley.space.names + ["value"]])
    assert runs[0].equals(runs[1])
    assert not runs[0].equals(runs[2])


@pytest.fixture
def mixed():
    space = SearchSpace([Real("x", -1, 1), Integer("n", 0, 5), Categorical("c", list("abc")), Permutation("p", 5)],
                        constraints=[lambda p: p["c"] != "c"])

    def f(p):
        return p["x"] ** 2 + p["n"] + (p["c"] == "b") + sum(abs(v - i) for i, v in enumerate(p["p"]))

    return space, f


@pytest.mark.parametrize("kind", KINDS)
def test_batches_are_new_and_feasible_and_the_search_converges(mixed, kind):
    space, f = mixed
    solver = build_solver(kind, space, seed=0)
    solver.optimize(f, 120, batch_size=4)
    h = solver.history
    assert (h["c"] != "c").all()
    encoded = space.encode(h[space.names].to_dict("records"))
    assert len(torch.unique(encoded, dim=0)) == len(h)  # nothing evaluated twice
    first = solver.ask(3)
    second = solver.ask(3)  # the first batch is still pending
    assert len(torch.unique(space.encode(first + second), dim=0)) == 6
    assert not any(p in h[space.names].to_dict("records") for p in first + second)
    assert solver.best[1] < 1.0  # near the optimum 0 (identity permutation, n = 0, c = a, x = 0)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_continues_the_same_run(ackley, kind, tmp_path):
    solver = build_solver(kind, ackley.space, seed=3, **SMALL.get(kind, {}))
    solver.optimize(ackley, 23, batch_size=3)
    pending = solver.ask(2)
    solver.save(tmp_path / "state.json")
    restored = build_solver(kind, ackley.space, seed=3, **SMALL.get(kind, {}))
    restored.load(tmp_path / "state.json")
    assert restored.pending == solver.pending
    a, b = solver.ask(3), restored.ask(3)
    assert a == b
    for s, batch in ((solver, pending + a), (restored, pending + b)):
        s.tell(batch, [ackley(p) for p in batch])
    assert solver.ask(4) == restored.ask(4)
    json.dumps(restored.state_dict())  # plain JSON data


@pytest.fixture
def bits():
    space = SearchSpace([Boolean(f"b{i}") for i in range(4)])
    target = [True, False, True, True]

    def f(p):  # weighted mismatches: a single minimum, and every neighbourhood has a unique best point
        return float(sum(2**i * (p[f"b{i}"] != t) for i, t in enumerate(target)))

    return space, f


def test_hill_climbing_restarts_when_stuck_and_never_repeats_a_point(bits):
    space, f = bits
    solver = HillClimbing(space, seed=0)
    solver.optimize(f, 16)
    assert solver.best[1] == 0.0
    assert solver.n_restarts >= 2  # the climber reached the minimum, found no better neighbour and restarted
    assert len(torch.unique(space.encode(solver.history[space.names].to_dict("records")), dim=0)) == 16


@pytest.mark.parametrize("strategy", ["first", "best"])
def test_hill_climbing_moves_to_the_first_or_the_best_improving_neighbour(bits, strategy):
    space, f = bits
    solver = HillClimbing(space, seed=4, strategy=strategy)
    batch = solver.ask(5)  # the start and its four neighbours
    start, neighbours = batch[0], batch[1:]
    assert all(sum(n[k] != start[k] for k in start) == 1 for n in neighbours)
    better = [n for n in neighbours if f(n) < f(start)]
    assert better, "the seed must give a start with an improving neighbour"
    first_better = better[0]
    told = neighbours[: neighbours.index(first_better) + 1]
    solver.tell([start] + told, [f(p) for p in [start] + told])
    solver.ask(1)
    if strategy == "first":
        assert space.decode(solver._current)[0] == first_better
    else:  # waits for the rest of the neighbourhood, then takes its best point
        assert space.decode(solver._current)[0] == start
        rest = [p for p in neighbours if p not in told]
        solver.tell(rest, [f(p) for p in rest])
        solver.ask(1)
        assert space.decode(solver._current)[0] == min(neighbours, key=f)


def test_annealing_accepts_worse_moves_when_hot_and_not_when_cold(ackley):
    hot = SimulatedAnnealingSolver(ackley.space, seed=0, init_temp=100.0, cooling=1.0)
    cold = SimulatedAnnealingSolver(ackley.space, seed=0, init_temp=1e-9, cooling=1.0)
    for solver in (hot, cold):
        solver.optimize(ackley, 40)
    # a cold chain's current point is always its best so far; a hot one wanders off it
    assert cold._current_value == cold.best[1]
    assert hot._current_value > hot.best[1]


def test_ga_does_not_evaluate_an_offspring_twice_and_tells_pymoo_every_generation(ackley):
    solver = GeneticAlgorithmSolver(ackley.space, seed=0, pop_size=6)
    solver.optimize(ackley, 30)
    tells = [e for e in solver._events if "F" in e]
    assert len(tells) >= 3
    assert solver._algorithm.n_iter >= 3
    encoded = ackley.space.encode(solver.history[ackley.space.names].to_dict("records"))
    assert len(torch.unique(encoded, dim=0)) == 30


def test_recipes_and_bad_settings():
    for kind in KINDS:
        recipe = load_recipe(kind)
        assert recipe["solver"] == kind and recipe["paper"]
    space = SearchSpace([Boolean("b")])
    with pytest.raises(ValueError, match="strategy must be 'first' or 'best'"):
        build_solver("hc", space, strategy="steepest")
    with pytest.raises(ValueError, match="cooling must be in"):
        build_solver("sa", space, cooling=1.5)
    with pytest.raises(ValueError, match="pop_size must be an integer >= 2"):
        build_solver("ga", space, pop_size=1)
