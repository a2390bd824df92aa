"""Templates a user can replace (and the one-line errors when they are wrong), and reading model replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from truecost.errors import UserError
from truecost.synth.parse import parse_instruction, parse_paraphrase, parse_qa, parse_score
from truecost.synth.templates import TASKS, load_template


@pytest.mark.parametrize("task", TASKS)
def test_builtin_templates_load_and_render(task: str) -> None:
    template = load_template(task)
    values = {"document": "D", "seed_id": "s", "examples": "1. E", "instruction": "I", "text": "T", "prompt": "P",
              "response": "R"}
    messages = template.render(**values)
    assert messages[-1]["role"] == "user" and "{" not in messages[-1]["content"]
    assert len(template.sha256) == 16


def test_a_user_template_replaces_the_builtin_and_changes_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\ntask = "qa"\nsystem = "Be brief."\nprompt = "Doc: {document}\\nAsk {{one}}."\n')
    mine = load_template("qa", path)
    assert mine.render(document="x") == [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Doc: x\nAsk {one}."}]
    assert mine.name == "mine" and mine.sha256 != load_template("qa").sha256


@pytest.mark.parametrize(("body", "message"), [
    ('task = "qa"\nprompt = "Doc: {document"', "malformed template"),
    ('task = "qa"\nprompt = "no placeholder here"', "needs {document}"),
    ('task = "qa"\nprompt = "{document} {question}"', "unknown placeholder {question}"),
    ('task = "qa"\nprompt = "{document!r}"', "must be plain"),
    ('task = "evolve"\nprompt = "{examples}"', "is for the 'evolve' task"),
    ('task = "qa"\nprompt = "{document}"\ncolour = 1', "unknown key colour"),
    ('prompt = """unterminated', "not valid TOML"),
])
def test_malformed_templates_are_one_line_errors(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(UserError) as err:
        load_template("qa", path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_template_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_template("qa", tmp_path / "nope.toml")


def test_parse_qa_reads_decorated_replies_and_refuses_others() -> None:
    assert parse_qa("Sure!\n\n**Question:** What is x?\n**Answer:** x is y.") == [("What is x?", "x is y.")]
    assert parse_qa("Q1: a?\nA1: b.\nQ2: c?\nA2: d.") == [("a?", "b."), ("c?", "d.")]
    assert parse_qa("Question: only a question?") == []
    assert parse_qa("Question: \nAnswer: ") == []
    assert parse_qa("The answer is 42.") == []


def test_parse_instruction_paraphrase_and_score() -> None:
    assert parse_instruction("Instruction: List three primes.\n\nOutput: 2, 3, 5") == "List three primes."
    assert parse_instruction("Sure, here is a new task:\nSort a list.") == "Sort a list."
    assert parse_paraphrase('Here is the rewritten request:\n"Please sort this list."') == "Please sort this list."
    assert parse_paraphrase("   ") is None
    assert [parse_score(t) for t in ("8", "Score: 10/10", "I give it 7 out of 10", "2.5", "none")] == [8, 10, 7, None,
                                                                                                       None]
