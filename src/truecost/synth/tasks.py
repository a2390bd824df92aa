"""The three ways synth writes examples, from seeds to (prompt, response) pairs with provenance:

- `qa`: a question a seed document answers, and its answer (grounded Q/A);
- `evolve`: a new instruction in the style of a few seed instructions, then its answer (self-instruct,
  Wang et al. 2022);
- `paraphrase`: a seed instruction in other words, keeping the seed's answer (or answering it afresh).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from truecost.synth.budget import Budget
from truecost.synth.files import Row
from truecost.synth.filters import Example, FilterCount, Rejection
from truecost.synth.generators import Completion, Generator, Request
from truecost.synth.parse import parse_instruction, parse_paraphrase, parse_qa
from truecost.synth.templates import Template

PhaseProgress = Callable[[str, int, int], None]  # (label, done, total)


@dataclass(frozen=True)
class TaskOptions:
    """How many requests per seed and how long they may be."""

    per_seed: int = 1
    max_new_tokens: int = 128
    max_document_chars: int = 2000  # a seed document is cut to this before it goes into the prompt
    examples_per_prompt: int = 3  # evolve: seed instructions shown in each request
    qa_context: bool = False  # qa: the example's prompt carries the document as well as the question
    seed: int = 0


@dataclass
class Generated:
    """What generation produced: the examples, every reply, and the replies that could not be read."""

    examples: list[Example] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)
    parse: FilterCount = field(default_factory=lambda: FilterCount("parse"))
    rejections: list[Rejection] = field(default_factory=list)


@dataclass
class TaskContext:
    """Everything a task needs to ask the generator."""

    generator: Generator
    budget: Budget
    template: Template
    answer_template: Template
    options: TaskOptions
    provenance: dict[str, Any]
    progress: PhaseProgress | None = None

    def ask(self, label: str, requests: list[Request], out: Generated) -> dict[str, Completion]:
        """Send `requests`; every reply lands in `out.completions`; the replies with text, by key."""
        def tick(done: int) -> None:
            if self.progress:
                self.progress(label, done, len(requests))

        tick(0)
        replies = self.generator.generate(requests, self.budget, tick) if requests else []
        out.completions.extend(replies)
        return {c.key: c for c in replies if c.error is None}


def example_id(key: str, prompt: str, response: str) -> str:
    """A stable id from the request key and the example's text."""
    return "synth-" + hashlib.sha1(f"{key}\x00{prompt}\x00{response}".encode()).hexdigest()[:16]


def _example(ctx: TaskContext, key: str, prompt: str, response: str, seed_id: str, **extra: Any) -> Example:
    provenance = {**ctx.provenance, "template": ctx.template.name, "template_sha256": ctx.template.sha256,
                  "seed_id": seed_id, "request": key, **extra}
    return Example(example_id(key, prompt, response), prompt, response, provenance)


def _unreadable(out: Generated, key: str, text: str, rule: str) -> None:
    out.parse.removed_by_rule[rule] += 1
    out.rejections.append(Rejection(key, "parse", rule, {}, text[:200]))


def _read(ctx: TaskContext, out: Generated, label: str, requests: list[Request],
          parse: Callable[[str], Any], rule: str) -> dict[str, Any]:
    """Send `requests` and read each reply with `parse`; a reply it cannot read is a `parse` rejection."""
    found = {}
    for key, reply in ctx.ask(label, requests, out).items():
        out.parse.seen += 1
        value = parse(reply.text)
        if value is None:
            _unreadable(out, key, reply.text, rule)
        else:
            found[key] = value
    return found


def qa_task(ctx: TaskContext, seeds: list[Row]) -> Generated:
    """Grounded Q/A: one request per seed document (times `per_seed`); the first pair of each reply."""
    out, opts = Generated(), ctx.options
    docs = {seed.id: seed.prompt[:opts.max_document_chars] for seed in seeds}
    requests = [Request(f"{seed.id}#{k}", ctx.template.render(document=docs[seed.id], seed_id=seed.id),
                        opts.max_new_tokens) for seed in seeds for k in range(opts.per_seed)]
    first_pair = _read(ctx, out, "generating Q/A", requests, lambda text: next(iter(parse_qa(text)), None),
                       "no_question_answer")
    for key, (question, answer) in first_pair.items():
        seed_id = key.rsplit("#", 1)[0]
        prompt = f"{docs[seed_id]}\n\n{question}" if opts.qa_context else question
        example = _example(ctx, key, prompt, answer, seed_id)
        example.source = docs[seed_id]
        out.examples.append(example)
    out.parse.kept = len(out.examples)
    return out


def _answer(ctx: TaskContext, out: Generated, prompts: dict[str, tuple[str, str]], label: str
            ) -> dict[str, str]:
    """Answers to new instructions (key -> (instruction, seed id)); unanswered ones are parse rejections."""
    requests = [Request(f"{key}/answer", ctx.answer_template.render(instruction=instruction),
                        ctx.options.max_new_tokens) for key, (instruction, _) in prompts.items()]
    replies = ctx.ask(label, requests, out)
    answers = {}
    for key in prompts:
        reply = replies.get(f"{key}/answer")
        if reply is None:  # the budget stopped it, or the endpoint failed it
            _unreadable(out, key, prompts[key][0], "answer_not_generated")
        elif reply.text.strip():
            answers[key] = reply.text.strip()
        else:
            _unreadable(out, key, prompts[key][0], "empty_answer")
    return answers


def evolve_task(ctx: TaskContext, seeds: list[Row]) -> Generated:
    """Self-instruct: each request shows a few seed instructions and asks for a new one, then answers it."""
    out, opts = Generated(), ctx.options
    rng = random.Random(opts.seed)
    shown = min(opts.examples_per_prompt, len(seeds))
    requests, chosen = [], {}
    for i in range(len(seeds) * opts.per_seed):
        picked = rng.sample(seeds, shown)
        examples = "\n".join(f"{n}. {seed.prompt}" for n, seed in enumerate(picked, 1))
        key = f"evolve-{i}"
        chosen[key] = ",".join(seed.id for seed in picked)
        requests.append(Request(key, ctx.template.render(examples=examples), opts.max_new_tokens))
    written = _read(ctx, out, "writing instructions", requests, parse_instruction, "no_instruction")
    instructions = {key: (instruction, chosen[key]) for key, instruction in written.items()}
    for key, answer in _answer(ctx, out, instructions, "answering instructions").items():
        instruction, seed_ids = instructions[key]
        out.examples.append(_example(ctx, key, instruction, answer, seed_ids,
                                     answer_template=ctx.answer_template.name, response_from="generator"))
    out.parse.kept = len(out.examples)
    return out


def paraphrase_task(ctx: TaskContext, seeds: list[Row]) -> Generated:
    """Paraphrases of seed instructions; the seed's answer is kept, or the paraphrase is answered afresh."""
    out, opts = Generated(), ctx.options
    by_key = {f"{seed.id}#{k}": seed for seed in seeds for k in range(opts.per_seed)}
    requests = [Request(key, ctx.template.render(text=seed.prompt), opts.max_new_tokens)
                for key, seed in by_key.items()]
    rewritten = _read(ctx, out, "paraphrasing", requests, parse_paraphrase, "no_paraphrase")
    to_answer = {k: (text, by_key[k].id) for k, text in rewritten.items() if by_key[k].response is None}
    answers = _answer(ctx, out, to_answer, "answering paraphrases") if to_answer else {}
    for key, text in rewritten.items():
        seed = by_key[key]
        if seed.response is not None:
            out.examples.append(_example(ctx, key, text, seed.response, seed.id, response_from="seed"))
        elif key in answers:
            out.examples.append(_example(ctx, key, text, answers[key], seed.id,
                                         answer_template=ctx.answer_template.name, response_from="generator"))
    out.parse.kept = len(out.examples)
    return out


TASK_FUNCTIONS: dict[str, Callable[[TaskContext, list[Row]], Generated]] = {
    "qa": qa_task, "evolve": evolve_task, "paraphrase": paraphrase_task}
