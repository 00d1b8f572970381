"""Suite configs: shipped configs load, bad configs fail naming the field, jobs expand as configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcbo.runner.config import ConfigError, load_config, parse_config


def test_shipped_configs_load_and_follow_their_protocols(repo_root: Path) -> None:
    configs = {p.stem: load_config(p) for p in sorted((repo_root / "configs").glob("*.yaml"))}
    assert {"quick", "mcbo-combinatorial", "mcbo-mixed", "llm-tuning"} <= set(configs)
    quick = configs["quick"]
    assert [s.label for s in quick.solvers] == ["rs", "casmopolitan"]
    assert [t.label for t in quick.tasks] == ["ackley_cat", "pest_control"]
    assert len(quick.jobs()) == 2 * 2 * 2
    for name, n_seeds in (("mcbo-combinatorial", 10), ("mcbo-mixed", 15)):
        config = configs[name]
        assert (config.budget, config.n_init, config.batch_size, len(config.seeds)) == (200, 20, 1, n_seeds)
        assert {"casmopolitan", "rs", "hc", "sa", "ga"} <= {s.label for s in config.solvers}
    combinatorial = {t.name for t in configs["mcbo-combinatorial"].tasks}
    assert {"contamination", "maxsat", "labs", "rna_inverse_folding"} <= combinatorial
    assert {"ackley53", "xgboost_hpo", "svr_hpo", "sfu"} <= {t.name for t in configs["mcbo-mixed"].tasks}
    assert {t.name for t in configs["llm-tuning"].tasks} == {"best_of_k", "speculative_decoding", "dpo_alignment",
                                                              "grpo_alignment"}


def test_loading_does_not_need_the_recipes_or_tasks_to_exist(suite_dict) -> None:
    suite_dict["solvers"] = ["a_recipe_written_next_month"]
    suite_dict["tasks"] = ["a_task_written_next_month"]
    config = parse_config(suite_dict)
    assert config.jobs()[0].key == ("a_recipe_written_next_month", "a_task_written_next_month", 0)


def test_entries_expand_into_labelled_jobs(suite_dict) -> None:
    suite_dict["solvers"].append({"recipe": "rs", "name": "rs_b", "method": "sobol"})
    suite_dict["tasks"].append({"task": "ackley_cat", "name": "ackley_cat_5", "kwargs": {"n_dims": 5}})
    suite_dict["exclude"] = [{"solver": "rs_b", "task": "ackley_cat"}, {"task": "pest_control"}]
    suite_dict["seeds"] = 3
    suite_dict["n_init"] = 4
    config = parse_config(suite_dict)
    keys = [job.key for job in config.jobs()]
    assert keys[:5] == [("rs", "ackley_cat", 0), ("rs_sobol", "ackley_cat", 0), ("rs", "ackley_cat_5", 0),
                        ("rs_sobol", "ackley_cat_5", 0), ("rs_b", "ackley_cat_5", 0)]
    assert len(keys) == 5 * 3 and len(set(keys)) == len(keys)
    by_label = {s.label: s for s in config.solvers}
    assert by_label["rs_b"].recipe == "rs" and by_label["rs_b"].overrides == {"method": "sobol"}
    assert by_label["rs_sobol"].recipe == {"solver": "rs", "method": "sobol", "name": "rs_sobol"}
    task5 = next(t for t in config.tasks if t.label == "ackley_cat_5")
    assert (task5.name, task5.kwargs) == ("ackley_cat", {"n_dims": 5})
    assert all(job.n_init == 4 and job.budget == 6 and job.batch_size == 2 for job in config.jobs())
    assert all(job.eval_timeout is None for job in config.jobs())


def test_a_tasks_eval_timeout_beats_the_suites_and_is_not_part_of_a_runs_identity(suite_dict) -> None:
    suite_dict["eval_timeout"] = 60
    suite_dict["tasks"][1]["eval_timeout"] = 0.5
    config = parse_config(suite_dict)
    assert config.eval_timeout == 60.0
    assert {job.task.label: job.eval_timeout for job in config.jobs()} == {"ackley_cat": 60.0, "pest_control": 0.5}
    del suite_dict["eval_timeout"], suite_dict["tasks"][1]["eval_timeout"]
    plain = parse_config(suite_dict)
    assert [job.identity_json() for job in config.jobs()] == [job.identity_json() for job in plain.jobs()]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"budgett": 5}, "unknown key(s) ['budgett']; allowed keys are"),
        ({"budget": 0}, "budget: got 0; expected an integer from 1 to 1000000000 (the number of evaluations)"),
        ({"budget": "30"}, "budget: got '30'; expected an integer from 1 to"),
        ({"budget": 10**23}, "budget: got 100000000000000000000000; expected an integer from 1 to 1000000000"),
        ({"budget": "10^23"}, "budget: got '10^23'; expected an integer from 1 to"),
        ({"batch_size": True}, "batch_size: got True; expected a positive integer"),
        ({"batch_size": 10**5}, "batch_size: got 100000; expected a positive integer of at most 10000"),
        ({"name": "../../../x"}, "name: got '../../../x'; expected a file name: a letter or digit, then"),
        ({"name": "a/b"}, "name: got 'a/b'; expected a file name"),
        ({"name": ".hidden"}, "name: got '.hidden'; expected a file name"),
        ({"n_init": 7}, "n_init: got 7; expected an integer no larger than budget (6)"),
        ({"seeds": [0, 0]}, "seeds: got [0, 0]; expected distinct seeds"),
        ({"seeds": [0, -1]}, "seeds[1]: got -1; expected an integer from 0 to 4294967295"),
        ({"seeds": [2**64]}, "seeds[0]: got 18446744073709551616; expected an integer from 0 to 4294967295"),
        ({"seeds": 0}, "seeds: got 0; expected a number of seeds from 1 to 100000"),
        ({"seeds": 10**23}, "seeds: got 100000000000000000000000; expected a number of seeds from 1 to 100000"),
        ({"solvers": []}, "solvers: got []; expected a non-empty list"),
        ({"solvers": ["rs", {"solver": "rs"}]}, "solvers[1].name: got None; expected a name for the inline recipe"),
        ({"solvers": [{"solver": "rs", "recipe": "rs", "name": "x"}]}, "solvers[0]: got"),
        ({"solvers": ["rs", 3]}, "solvers[1]: got 3; expected a recipe name or a mapping"),
        ({"solvers": ["rs", {"recipe": "rs"}]}, "solvers: got ['rs']; expected distinct names"),
        ({"tasks": [{"name": "ackley_cat", "kwarg": {}}]}, "only the keys ['task', 'name', 'kwargs', 'eval_timeout']"),
        ({"tasks": [{"name": "ackley_cat", "kwargs": [1]}]}, "tasks[0].kwargs: got [1]; expected a mapping"),
        ({"tasks": [""]}, "tasks[0]: got ''; expected a non-empty string"),
        ({"exclude": [{"solver": "cma"}]}, "exclude[0].solver: got 'cma'; expected one of the suite's solvers"),
        ({"exclude": [{"solver": "rs"}, {"solver": "rs_sobol"}]}, "exclude leaves no (solver, task) pair to run"),
        ({"imports": "mymodule"}, "imports: got 'mymodule'; expected a list of module names"),
        ({"eval_timeout": 0}, "eval_timeout: got 0; expected a positive number of seconds"),
        ({"eval_timeout": -5}, "eval_timeout: got -5; expected a positive number of seconds"),
        ({"eval_timeout": "10m"}, "eval_timeout: got '10m'; expected a positive number of seconds"),
        ({"eval_timeout": True}, "eval_timeout: got True; expected a positive number of seconds"),
        ({"eval_timeout": float("inf")}, "eval_timeout: got inf; expected a positive number of seconds"),
        ({"eval_timeout": float("nan")}, "eval_timeout: got nan; expected a positive number of seconds"),
        ({"tasks": ["ackley_cat", {"name": "pest_control", "eval_timeout": -1}]},
         "tasks[1].eval_timeout: got -1; expected a positive number of seconds"),
    ],
)
def test_bad_configs_raise_naming_field_value_and_what_is_allowed(suite_dict, change, expected) -> None:
    suite_dict.update(change)
    with pytest.raises(ConfigError) as info:
        parse_config(suite_dict, source="suite.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("suite.yaml")


def test_missing_required_key_and_bad_files(tmp_path: Path, suite_dict) -> None:
    del suite_dict["tasks"]
    with pytest.raises(ConfigError, match="missing required key 'tasks'"):
        parse_config(suite_dict)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("budget: [1,\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- rs\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(listed)


def test_name_defaults_to_the_file_stem(write_config, suite_dict) -> None:
    del suite_dict["name"]
    assert load_config(write_config(suite_dict, "my-suite.yaml")).name == "my-suite"
    with pytest.raises(ConfigError, match="name: got 'my suite'; .*set `name:` in the config"):
        load_config(write_config(suite_dict, "my suite.yaml"))


def test_a_shipped_config_is_found_by_name_and_budgets_share_one_rule(tmp_path: Path) -> None:
    from mcbo.runner.config import BUDGET_RULE, check_budget, find_config, shipped_configs

    assert {"quick", "mcbo-mixed", "mcbo-combinatorial"} <= set(shipped_configs())
    assert load_config("quick").name == "quick"
    assert find_config("quick").name == "quick.yaml"
    with pytest.raises(ConfigError, match="expected the path of a suite config YAML or the name of a shipped config: "
                                          ".*quick"):
        load_config("quik")
    for bad in (0, -3, 2.5, True, "30", 10**9 + 1, 10**23):
        with pytest.raises(ConfigError) as info:
            check_budget(bad, "--evals")
        assert str(info.value) == f"--evals: got {bad!r}; expected {BUDGET_RULE}"
    assert check_budget(5) == 5
