"""Instruction-induction tasks: shipped data, metrics, prompts, user task files."""

import json

import pytest

from mcbo.llm.tasks import EVAL_TEMPLATE, contains, exact_match, f1, first_line, list_tasks, load_task, normalize


def test_shipped_tasks_load_with_three_splits_and_a_licence():
    names = list_tasks()
    assert {"antonyms", "larger_animal", "first_letter", "word_sorting", "sentence_length", "synonyms",
            "categories"} <= set(names)
    for name in names:
        task = load_task(name)
        assert [len(task.examples(s)) for s in ("train", "valid", "test")] == [15, 20, 30]
        assert "MIT" in task.license and task.provenance
        inputs = [e.input for s in task.splits.values() for e in s]
        assert len(inputs) == len(set(inputs)), f"{name}: an input appears in two splits"


def test_task_answers_are_consistent():
    for e in load_task("word_sorting").examples("test"):
        assert e.outputs[0].split() == sorted(e.input.split())
    for e in load_task("first_letter").examples("valid"):
        assert e.outputs == (e.input[0],)
    for e in load_task("sentence_length").examples("valid"):
        assert int(e.outputs[0]) == len(e.input.rstrip(".").split())


def test_normalisation_and_metrics():
    assert normalize("  The  Answer, is: 'Cold'! ") == "answer is cold"
    assert exact_match("Cold.", ["cold"]) == 1.0 and exact_match("very cold", ["cold"]) == 0.0
    assert exact_match("an apple", ["apple", "pear"]) == 1.0
    assert f1("types of fruit", ["fruits", "types of fruit"]) == 1.0
    assert f1("musical things", ["musical instruments"]) == pytest.approx(0.5)
    assert f1("", ["x"]) == 0.0
    assert contains("It is glad, I think", ["happy", "glad"]) == 1.0
    assert contains("gladly", ["glad"]) == 0.0  # whole words only


def test_scores_use_the_first_line_of_the_answer():
    task = load_task("antonyms")
    example = task.examples("valid")[0]
    assert task.score(f"{example.outputs[0]}\nExplanation: ...", example) == 1.0
    assert task.score("\n\nnope", example) == 0.0
    assert first_line("  \n a \n b") == "a"
    assert task.prompt(" Do it. ", example) == EVAL_TEMPLATE.format(instruction="Do it.", input=example.input)


def test_fingerprint_changes_with_the_examples():
    task = load_task("antonyms")
    assert task.fingerprint("valid", 5) == task.fingerprint("valid", 5)
    assert task.fingerprint("valid", 5) != task.fingerprint("valid", 6) != task.fingerprint("test", 6)


def test_user_task_file_and_errors(tmp_path):
    split = [{"input": "a", "outputs": ["A"]}]
    path = tmp_path / "upper.json"
    path.write_text(json.dumps({"name": "upper", "metric": "exact_match", "train": split, "valid": split,
                                "test": split}))
    assert load_task(path).examples("valid")[0].outputs == ("A",)
    with pytest.raises(ValueError, match="unknown instruction task 'nope'"):
        load_task("nope")
    path.write_text(json.dumps({"metric": "bleu", "train": split, "valid": split, "test": split}))
    with pytest.raises(ValueError, match="metric 'bleu'"):
        load_task(path)
    path.write_text(json.dumps({"metric": "f1", "train": split, "valid": [{"input": 1}], "test": split}))
    with pytest.raises(ValueError, match=r"valid\[0\]"):
        load_task(path)
    with pytest.raises(ValueError, match="unknown split"):
        load_task("antonyms").examples("dev")
