"""The ``default`` recipe: BO configured from the kinds of variables in the space."""

import pytest

from mcbo.solvers import build_solver
from mcbo.solvers.auto import SPACE_KINDS, AutoBOSolver, space_kind
from mcbo.space import Boolean, Categorical, Integer, Permutation, Real, SearchSpace, Sequence


@pytest.mark.parametrize("params, kind", [
    ([Real("x", 0, 1), Integer("n", 0, 5)], "numeric"),
    ([Categorical("c", ["a", "b"]), Boolean("b")], "nominal"),
    ([Real("x", 0, 1), Categorical("c", ["a", "b"])], "mixed"),
    ([Sequence("s", "ACGU", 6)], "sequence"),
    ([Permutation("p", 5), Real("x", 0, 1)], "permutation"),
])
def test_space_kind(params, kind):
    assert space_kind(SearchSpace(params)) == kind


def test_default_recipe_has_a_configuration_for_every_kind_and_runs_on_each():
    spaces = {
        "numeric": SearchSpace([Real("x", -2, 2), Integer("n", 0, 9)]),
        "nominal": SearchSpace([Categorical(f"c{i}", list("abcd")) for i in range(4)]),
        "mixed": SearchSpace([Real("x", -2, 2), Categorical("c", list("abc"))]),
        "sequence": SearchSpace([Sequence("s", "ACGU", 5)]),
        "permutation": SearchSpace([Permutation("p", 5)]),
    }
    assert sorted(spaces) == sorted(SPACE_KINDS)
    for kind, space in spaces.items():
        solver = build_solver("default", space, seed=0, n_init=4)
        assert isinstance(solver, AutoBOSolver) and solver.space_kind == kind
        for _ in range(6):
            points = solver.ask(1)
            solver.tell(points, [float(sum(len(str(v)) for v in p.values())) for p in points])
        assert len(solver.history) == 6


def test_top_level_settings_override_the_chosen_configuration():
    space = SearchSpace([Real("x", 0, 1), Categorical("c", list("abc"))])
    solver = build_solver("default", space, seed=0, n_init=3, trust_region="none")
    assert solver.n_init == 3 and solver.trust_region is None


def test_bad_by_space_is_a_clear_error():
    space = SearchSpace([Real("x", 0, 1)])
    with pytest.raises(ValueError, match="by_space must map every space kind"):
        AutoBOSolver(space, by_space={"numeric": {}})
    with pytest.raises(ValueError, match="unknown setting"):
        AutoBOSolver(space, by_space={k: ({"n_innit": 3} if k == "numeric" else {}) for k in SPACE_KINDS})
