"""``ContrastSet``: paired positive/negative prompts that define a concept.

Three ways in: two typed lists, a preset (persona pair x scenarios, in ``assets/``),
or an A/B multiple-choice file in the CAA format. A/B sets are letter-balanced: every
item is also shown with its options swapped, because on our models a plain mean
difference over CAA items was mostly the "(A) vs (B)" direction, not the behaviour.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import ASSETS, max_upload_bytes
from ..errors import ContrastError
from .recording import texts_hash

PRESETS = ASSETS / "presets"


@dataclass(frozen=True)
class Prompt:
    """A user message and, optionally, the start of the assistant's answer."""

    user: str
    answer: str = ""


@dataclass(frozen=True)
class ContrastSet:
    """Pairs of prompts that differ in one concept; positive side first."""

    name: str
    positive: tuple[Prompt, ...]
    negative: tuple[Prompt, ...]
    source: str = "lists"
    # For A/B sets: the answer letter of the positive side, per pair ("A"/"B"/"").
    letters: tuple[str, ...] = ()

    def __post_init__(self):
        _validate(self.positive, self.negative)

    def __len__(self) -> int:
        return len(self.positive)

    def texts(self, lm) -> tuple[list[str], list[str]]:
        """Both sides chat-formatted for ``lm``'s template."""
        def fmt(p: Prompt) -> str:
            return lm.chat(p.user, assistant_prefix=p.answer)

        return [fmt(p) for p in self.positive], [fmt(p) for p in self.negative]

    def digest(self) -> str:
        """Stable id of the prompts (provenance, cache keys)."""
        flat = [f"{p.user}\x01{p.answer}" for p in self.positive + self.negative]
        return texts_hash(flat)

    def labels(self) -> tuple[list[str], list[str]]:
        """Short text per prompt for hover labels."""
        def short(p: Prompt) -> str:
            text = f"{p.user} | {p.answer}" if p.answer else p.user
            return text if len(text) < 90 else text[:87] + "..."

        return [short(p) for p in self.positive], [short(p) for p in self.negative]


def _validate(pos, neg) -> None:
    if not pos or not neg:
        raise ContrastError("Both the positive and the negative list need prompts (one per line).")
    if len(pos) != len(neg):
        raise ContrastError(
            f"The lists must pair up: {len(pos)} positive vs {len(neg)} negative prompts. "
            "Give the same number on each side (line i of one pairs with line i of the other)."
        )
    if len(pos) < 2:
        raise ContrastError("One pair is not enough to find a direction: give at least 2 pairs (8+ is better).")
    if all(p == n for p, n in zip(pos, neg)):
        raise ContrastError("Every positive prompt equals its negative one: there is no contrast to extract.")


def from_lists(positive: str | list[str], negative: str | list[str], name: str = "custom") -> ContrastSet:
    """From two lists (or two texts with one prompt per line); line i pairs with line i."""
    def lines(x) -> list[str]:
        items = x.splitlines() if isinstance(x, str) else list(x)
        return [s.strip() for s in items if s and s.strip()]

    pos, neg = lines(positive), lines(negative)
    return ContrastSet(name, tuple(Prompt(p) for p in pos), tuple(Prompt(n) for n in neg))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.json"))


PRESET_KEYS = ("positive_persona", "negative_persona", "template", "scenarios")


def load_preset(ref: str) -> dict:
    """A preset dict (personas, template, scenarios, example texts) by name, or from a
    JSON file in the preset format (a copy of one in ``assets/presets``, edited)."""
    path = PRESETS / f"{ref}.json" if ref in preset_names() else Path(ref)
    if not path.is_file() or path.suffix != ".json":
        raise ContrastError(f"Unknown preset {ref!r}. Presets: {', '.join(preset_names())}; "
                            "or give a .json file in the preset format.")
    try:
        data = json.loads(read_text(path, max_upload_bytes(), ContrastError))
    except json.JSONDecodeError as exc:
        raise ContrastError(f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}.") from None
    return check_preset(data, path.name)


def check_preset(data, where: str) -> dict:
    """``data`` if it is a usable preset, else a ``ContrastError`` naming what is missing."""
    if not isinstance(data, dict):
        raise ContrastError(f"{where}: a preset is a JSON object, not {type(data).__name__}.")
    missing = [k for k in PRESET_KEYS if k not in data]
    if missing:
        raise ContrastError(f"{where}: a preset needs {', '.join(PRESET_KEYS)}; missing {', '.join(missing)}.")
    template, scenarios = data["template"], data["scenarios"]
    if not isinstance(template, str) or "{persona}" not in template or "{scenario}" not in template:
        raise ContrastError(f"{where}: the template must be a text with {{persona}} and {{scenario}} in it.")
    if not isinstance(scenarios, list) or len(scenarios) < 2 or not all(isinstance(x, str) and x.strip()
                                                                        for x in scenarios):
        raise ContrastError(f"{where}: scenarios must be a list of at least 2 non-empty texts.")
    return data


def is_preset_file(path: Path) -> bool:
    """Whether ``path`` is a JSON object with the preset keys (rather than two lists or A/B items)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and any(k in data for k in PRESET_KEYS)


def from_preset(ref: str, limit: int | None = None) -> ContrastSet:
    """Persona pair x scenarios, the way representation-engineering work builds them.

    ``ref``: a preset name or a preset-format file. ``source`` is ``preset:<ref>``, which
    ``load_preset`` reads back (the scorer, the leave-one-out rule).
    """
    p = load_preset(ref)
    scenarios = p["scenarios"][:limit] if limit else p["scenarios"]

    def side(persona: str) -> tuple[Prompt, ...]:
        return tuple(Prompt(p["template"].format(persona=persona, scenario=s)) for s in scenarios)

    name = str(p.get("name") or Path(ref).stem)
    return ContrastSet(name, side(p["positive_persona"]), side(p["negative_persona"]), f"preset:{ref}")


def preset_ref(source: str) -> str | None:
    """The preset (name or file) a contrast set's ``source`` came from, else None."""
    return source.removeprefix("preset:") if source.startswith("preset:") else None


def concept_name(source: str) -> str | None:
    """The concept a preset-made set stands for (its ``name``): the one a transfer map
    must not see (leave-one-concept-out), whether the preset is shipped or a user's copy."""
    ref = preset_ref(source)
    if ref is None:
        return None
    return ref if ref in preset_names() else str(load_preset(ref).get("name") or Path(ref).stem)


_OPTION = re.compile(r"^(\s*)\(([A-Z])\)\s?(.*)$", re.M)


def swap_options(question: str) -> str | None:
    """The question with options (A) and (B) exchanged, or None if it has no such pair."""
    found = {m.group(2): m for m in _OPTION.finditer(question)}
    if set(found) != {"A", "B"}:
        return None
    a, b = found["A"], found["B"]
    first, second = sorted((a, b), key=lambda m: m.start())
    swapped_first = f"{first.group(1)}({first.group(2)}) {second.group(3)}"
    swapped_second = f"{second.group(1)}({second.group(2)}) {first.group(3)}"
    return (question[: first.start()] + swapped_first + question[first.end() : second.start()]
            + swapped_second + question[second.end():])


def _letter(answer: str) -> str:
    m = re.fullmatch(r"\s*\(?([A-Z])\)?.*", answer, re.S)
    return m.group(1) if m else ""


def swap_letters(question: str, answers) -> tuple[str, tuple[str, ...]] | None:
    """An A/B item in the other option order: the question with (A) and (B) exchanged,
    and each answer relabelled to the letter its option now has ("(A) yes" -> "(B) yes").
    None when the question has no (A)/(B) pair or the answers are not one of each.

    The one letter-swap rule of the project: contrast sets (``from_ab_items``) and
    scored datasets (``evaluation.scoring.balanced``) both use it."""
    swapped = swap_options(question)
    if swapped is None or {_letter(a) for a in answers} != {"A", "B"}:
        return None
    flip = {"A": "B", "B": "A"}

    def relabel(answer: str) -> str:
        letter = _letter(answer)
        i = answer.index(letter)
        return answer[:i] + flip[letter] + answer[i + 1:]

    return swapped, tuple(relabel(a) for a in answers)


def read_text(path: Path, max_bytes: int, error: type[Exception]) -> str:
    """A user file as UTF-8 text: exists, under ``max_bytes``, decodable; else ``error``."""
    if not path.is_file():
        raise error(f"File {str(path)!r} does not exist.")
    if path.stat().st_size > max_bytes:
        raise error(f"{path.name} is larger than {max_bytes >> 20} MiB; split it or use a smaller file.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path.name} is not UTF-8 text (byte {exc.start}). Save it as UTF-8.") from None


def read_items(path: str | Path) -> list[dict]:
    """JSON list or JSONL of dicts; errors name the line or item that is wrong."""
    path = Path(path)
    text = read_text(path, max_upload_bytes(), ContrastError)
    try:
        if text.lstrip().startswith("["):
            items = json.loads(text)
        else:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise ContrastError(f"{path.name} is not valid JSON/JSONL: {exc.msg} at line {exc.lineno}.") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ContrastError(f"{path.name} must hold a list of objects (JSON list or one object per line).")
    return items


def from_ab_items(items: list[dict], name: str = "ab", balance: bool = True) -> ContrastSet:
    """CAA items: positive = question + matching answer, negative = question + the other.

    With ``balance`` each item whose options can be swapped is added a second time with
    (A) and (B) exchanged, so the answer letter cancels out of the mean difference.
    """
    pos, neg, letters = [], [], []
    for i, item in enumerate(items):
        item = _caa_view(item)
        try:
            q, match, other = (str(item[k]) for k in
                               ("question", "answer_matching_behavior", "answer_not_matching_behavior"))
        except KeyError as exc:
            raise ContrastError(f"Item {i + 1} lacks the field {exc.args[0]!r} (CAA format needs "
                                "question, answer_matching_behavior, answer_not_matching_behavior).") from None
        if not q.strip() or not match.strip() or match.strip() == other.strip():
            raise ContrastError(f"Item {i + 1} has an empty question or two identical answers.")
        pos.append(Prompt(q, match)), neg.append(Prompt(q, other)), letters.append(_letter(match))
        swapped = swap_letters(q, (match, other)) if balance else None
        if swapped is not None:
            q2, (match2, other2) = swapped
            pos.append(Prompt(q2, match2)), neg.append(Prompt(q2, other2))
            letters.append(_letter(match2))
    return ContrastSet(name, tuple(pos), tuple(neg), f"ab:{name}", tuple(letters))


def _caa_view(item: dict) -> dict:
    """A generic ``{prompt, choices, answer}`` item seen as CAA: correct vs each wrong answer."""
    if isinstance(item, dict) and "question" not in item and {"prompt", "choices", "answer"} <= set(item):
        wrong = [c for c in item["choices"] if c != item["answer"]]
        if wrong:
            return {"question": item["prompt"], "answer_matching_behavior": item["answer"],
                    "answer_not_matching_behavior": wrong[0]}
    return item


def from_source(spec: str, limit: int | None = None) -> ContrastSet:
    """A preset name or preset-format file, a two-list JSON ``{"positive": [...],
    "negative": [...]}``, or an A/B file."""
    if spec in preset_names():
        return from_preset(spec, limit)
    path = Path(spec)
    if not path.exists():
        raise ContrastError(f"{spec!r} is neither a preset ({', '.join(preset_names())}) nor a file.")
    if path.suffix == ".json" and is_preset_file(path):
        return from_preset(spec, limit)
    if path.suffix == ".json" and path.read_text(encoding="utf-8", errors="replace").lstrip().startswith("{"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None  # JSONL under a .json name, or broken: read_items explains which
    else:
        data = None
    if isinstance(data, dict):
        if not {"positive", "negative"} <= set(data):
            raise ContrastError(f"{path.name}: a two-list file needs the keys 'positive' and 'negative' "
                                f"(or, for a preset, {', '.join(PRESET_KEYS)}).")
        return from_lists(data["positive"][:limit], data["negative"][:limit], path.stem)
    items = read_items(path)
    return from_ab_items(items[:limit] if limit else items, path.stem)
