"""Prompt templates: TOML files a user can replace, checked for the placeholders each task fills.

A template file holds `name`, `task`, an optional `system` message and a `prompt` with `{placeholder}` fields
(`str.format` syntax; literal braces are doubled). The built-in ones live in `truecost/synth/templates/`.
"""

from __future__ import annotations

import hashlib
import string
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from truecost.errors import UserError

# What each task fills in: (required placeholders, optional placeholders).
PLACEHOLDERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "qa": (frozenset({"document"}), frozenset({"seed_id"})),
    "evolve": (frozenset({"examples"}), frozenset()),
    "answer": (frozenset({"instruction"}), frozenset()),
    "paraphrase": (frozenset({"text"}), frozenset()),
    "judge": (frozenset({"prompt", "response"}), frozenset()),
}
TASKS = tuple(PLACEHOLDERS)


@dataclass(frozen=True)
class Template:
    """One prompt template: its name, the task it serves, the messages it renders, and where it came from."""

    name: str
    task: str
    prompt: str
    system: str | None = None
    source: str = "builtin"

    @property
    def sha256(self) -> str:
        """Hash of what the model sees (system + prompt), so provenance pins the exact wording."""
        return hashlib.sha256(f"{self.system or ''}\x00{self.prompt}".encode()).hexdigest()[:16]

    def render(self, **values: str) -> list[dict[str, str]]:
        """The chat messages for one request."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": self.prompt.format(**values)})
        return messages


def fields_of(text: str, where: str) -> set[str]:
    """The placeholder names in a `str.format` template; UserError on unbalanced braces or positional fields."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise UserError(f"{where}: malformed template ({exc}); write literal braces as {{{{ and }}}}") from None
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise UserError(f"{where}: placeholder {{{name}}} is not a name; use one of the task's fields")
        if spec or conversion:
            raise UserError(f"{where}: placeholder {{{name}}} must be plain, without a format spec or conversion")
        names.add(name)
    return names


def check_template(template: Template) -> Template:
    """`template` if its placeholders fit its task; otherwise one line saying what is wrong."""
    where = f"template {template.source}"
    if template.task not in PLACEHOLDERS:
        raise UserError(f"{where}: unknown task {template.task!r}; one of {', '.join(TASKS)}")
    required, optional = PLACEHOLDERS[template.task]
    found = fields_of(template.prompt, where)
    if template.system:
        found |= fields_of(template.system, where + " (system)")
    missing, unknown = required - found, found - required - optional
    if missing:
        needed = ", ".join("{" + m + "}" for m in sorted(missing))
        raise UserError(f"{where}: the {template.task} prompt needs {needed}")
    if unknown:
        allowed = ", ".join("{" + f + "}" for f in sorted(required | optional))
        raise UserError(f"{where}: unknown placeholder {', '.join('{' + u + '}' for u in sorted(unknown))} "
                        f"(the {template.task} task fills {allowed})")
    return template


def parse_template(text: str, source: str, task: str | None = None) -> Template:
    """A template from TOML text; `task` (when given) must match the file's own."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"template {source}: not valid TOML ({exc})") from None
    prompt, file_task = data.get("prompt"), data.get("task", task)
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError(f"template {source}: needs a non-empty `prompt` string")
    if task is not None and file_task != task:
        raise UserError(f"template {source} is for the {file_task!r} task, not {task!r}")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise UserError(f"template {source}: `system` must be a string")
    unknown = set(data) - {"name", "task", "prompt", "system"}
    if unknown:
        raise UserError(f"template {source}: unknown key {', '.join(sorted(unknown))} (name, task, prompt, system)")
    name = str(data.get("name") or Path(source).stem)
    return check_template(Template(name=name, task=str(file_task), prompt=prompt, system=system, source=source))


def load_template(task: str, path: str | Path | None = None) -> Template:
    """The template for `task`: the file at `path`, or the built-in one."""
    if path is None:
        if task not in PLACEHOLDERS:
            raise UserError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
        text = resources.files("truecost.synth").joinpath("templates", f"{task}.toml").read_text(encoding="utf-8")
        return parse_template(text, f"builtin:{task}", task)
    file = Path(path)
    if not file.is_file():
        raise UserError(f"template file {file} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"template file {file}: cannot read it ({exc})") from None
    return parse_template(text, str(file), task)
