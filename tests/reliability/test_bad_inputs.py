"""Bad search spaces, ``ask`` sizes, hand-edited save files and malformed NAP checkpoints: each raises one clear
``ValueError`` naming the parameter or the file's field (never a raw KeyError/AttributeError/RuntimeError or a
NaN later on), and a failed load leaves the solver as it was."""

import pytest

from tests.reliability.faults import (
    BAD_CHECKPOINTS,
    BAD_SPACES,
    BAD_STATES,
    run_bad_checkpoint,
    run_bad_input,
    run_bad_state,
)


@pytest.mark.parametrize("name", list(BAD_SPACES()))
def test_bad_spaces_are_refused_naming_the_parameter(name):
    run, must_name = BAD_SPACES()[name]
    out = run_bad_input("space", name, run, must_name)
    assert out.ok and out.clean_errors == 1, (out.raw, out.problems, out.detail)


@pytest.mark.parametrize("name", list(BAD_STATES))
def test_hand_edited_save_files_are_refused_naming_the_field(name, tmp_path):
    out = run_bad_state(name, tmp_path)
    assert out.ok and out.clean_errors == 1, (out.raw, out.problems, out.detail)


@pytest.mark.parametrize("name", list(BAD_CHECKPOINTS()))
def test_malformed_checkpoints_are_refused_naming_the_field(name, tmp_path):
    out = run_bad_checkpoint(name, tmp_path)
    assert out.ok and out.clean_errors == 1, (out.raw, out.problems, out.detail)
