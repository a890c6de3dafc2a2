"""Write our own harder A/B task sets to assets/tasks/ (seeded, so the files are reproducible).

Each set is built programmatically from word lists written here (no public data is
copied) and has equal counts of each correct answer, so a model that always gives one
answer scores 0.5. ``bench/find_tasks.py`` measures how the bundled models do on them.

    .venv/bin/python bench/make_tasks.py          # rewrites the four files
"""

from __future__ import annotations

import json
import random
from pathlib import Path

TASKS = Path(__file__).resolve().parents[1] / "assets" / "tasks"
TF = "Is the following statement true or false?\nStatement: {}"
SENT = "Is the sentiment of this review positive or negative?\nReview: {}"

# Disjoint categories (no member is also another category: no Mercury among planets,
# no Golf among sports, no bird among mammals), so "X is not a <other>" is true.
CATEGORIES = {
    "mammal": "A dog|A cat|A horse|A cow|A lion|A tiger|A rabbit|A wolf|A whale|A dolphin",
    "bird": "A sparrow|An eagle|A robin|A parrot|A penguin|An ostrich|An owl|A crow",
    "fruit": "An apple|A banana|A cherry|A mango|A pear|A peach|A lemon|A grape|A plum|A strawberry",
    "vegetable": "A carrot|A potato|An onion|A cabbage|A turnip|A radish|A leek|A parsnip|A beet|Spinach",
    "metal": "Iron|Copper|Gold|Silver|Aluminium|Zinc|Tin|Nickel|Platinum|Titanium",
    "planet": "Mars|Venus|Jupiter|Saturn|Neptune|Uranus|Earth",
    "country": "France|Japan|Brazil|Canada|Egypt|Kenya|Norway|Peru|India|Spain",
    "musical instrument": "A violin|A piano|A trumpet|A flute|A guitar|A cello|A harp|A clarinet|A trombone",
    "colour": "Red|Blue|Green|Yellow|Purple|Brown|Grey",
    "tool": "A hammer|A screwdriver|A wrench|A chisel|A shovel|A rake|A spanner",
    "vehicle": "A car|A bus|A bicycle|A truck|A train|A motorcycle|A tractor|A van",
    "sport": "Tennis|Football|Basketball|Hockey|Rugby|Volleyball|Baseball|Badminton|Boxing",
}


def negation(rng: random.Random) -> list[dict]:
    """Category membership, affirmed or negated: 'A whale is not a mammal.' (false)."""
    out = []
    for cat, members in CATEGORIES.items():
        for subject in members.split("|"):
            other = rng.choice([c for c in CATEGORIES if c != cat])
            for claim, truth in ((f"is a {cat}", True), (f"is not a {cat}", False),
                                 (f"is a {other}", False), (f"is not a {other}", True)):
                out.append(_tf(f"{subject} {claim}.", truth))
    return out


def arithmetic(rng: random.Random, n: int = 440) -> list[dict]:
    """'47 + 38 = 85' true or false; a false sum is off by 1, 2 or 10 (the near misses)."""
    out, i = [], -1
    while len(out) < n:
        i += 1
        a, b = rng.randint(12, 98), rng.randint(12, 98)
        op = rng.choice("+-x")
        if op == "-":
            a, b = max(a, b), min(a, b)
        elif op == "x":
            b = rng.randint(3, 9)  # two digits times one
        value = {"+": a + b, "-": a - b, "x": a * b}[op]
        truth = i % 2 == 0
        shown = value if truth else value + rng.choice([-10, -2, -1, 1, 2, 10])
        item = _tf(f"{a} {op} {b} = {shown}", truth)
        if item not in out:
            out.append(item)
    return out


def compare(rng: random.Random, n: int = 440) -> list[dict]:
    """'Which number is larger? (A) 9.11 (B) 9.9' -- decimals with different digit
    counts, and close integers. Lettered options, so the runner also scores each item
    with (A) and (B) swapped (letter-balanced); the larger is (A) in half of them."""
    out, i = [], -1
    while len(out) < n:
        i += 1
        if i % 2:
            whole = rng.randint(1, 20)
            x, y = f"{whole}.{rng.randint(11, 99)}", f"{whole}.{rng.randint(1, 9)}"
        else:
            x = str(rng.randint(100, 999))
            y = str(int(x) + rng.choice([-9, -1, 1, 9, 90, -90]))
        if x == y or float(x) == float(y):
            continue
        big = max(x, y, key=float)
        first, second = (x, y) if (i // 2) % 2 else (y, x)
        prompt = f"Which number is larger?\n(A) {first}\n(B) {second}\nAnswer with the letter."
        item = {"prompt": prompt, "choices": ["(A)", "(B)"], "answer": "(A)" if big == first else "(B)"}
        if item not in out:
            out.append(item)
    return out


# First clause one way, the clause after "but" the other way and decisive (a verdict).
POSITIVE = ["the staff were friendly", "the location was perfect", "the food looked beautiful",
            "the price was reasonable", "the first chapter was gripping", "the screen is bright and sharp",
            "the room was spotless", "the opening song was catchy", "delivery was quick",
            "the actors were charming", "the battery lasts all day", "the view was stunning"]
NEGATIVE = ["the staff were rude", "the location was noisy", "the food arrived cold",
            "the price was steep", "the first chapter dragged", "the screen scratches easily",
            "the room was cramped", "the opening song was dull", "delivery took three weeks",
            "the actors seemed bored", "the battery drains fast", "the view was of a parking lot"]
VERDICT_POS = ["overall I loved it and would happily go back", "in the end it was worth every penny",
               "I would still recommend it to anyone", "all in all it made our week",
               "honestly it exceeded my expectations", "we had a wonderful time anyway",
               "I am really glad we chose it", "it is still the best I have tried",
               "I would buy it again without a second thought", "it left us smiling"]
VERDICT_NEG = ["overall it was a huge disappointment", "in the end it was a waste of money",
               "I would not recommend it to anyone", "all in all it ruined our week",
               "honestly it fell far short of my expectations", "we had a miserable time anyway",
               "I really regret choosing it", "it is still the worst I have tried",
               "I would never buy it again", "it left us annoyed"]
# How the detail (a) and the verdict (b) are joined: verdict last, or first (then a
# model that reads only the last clause gets it wrong).
JOINS = [("{a}, but {b}.", "{a}; however, {b}.", "Although {a}, {b}."),
         ("{b}, even though {a}.", "{b}, although {a}.", "{b}, despite the fact that {a}.")]


def mixed(rng: random.Random, n: int = 440) -> list[dict]:
    """Reviews with a detail one way and a verdict the other: 'The staff were friendly,
    but overall it was a huge disappointment.' The verdict decides; it comes last in
    half of the items and first in the other half ('..., even though the staff were rude.')."""
    seen, out = set(), []
    while len(out) < n:
        positive = len(out) % 2 == 0
        start = rng.choice(NEGATIVE if positive else POSITIVE)
        verdict = rng.choice(VERDICT_POS if positive else VERDICT_NEG)
        text = rng.choice(JOINS[(len(out) // 2) % 2]).format(a=start, b=verdict)
        text = text[0].upper() + text[1:]
        if text not in seen:
            seen.add(text)
            out.append({"prompt": SENT.format(text), "choices": ["positive", "negative"],
                        "answer": "positive" if positive else "negative"})
    return out


def _tf(statement: str, truth: bool) -> dict:
    return {"prompt": TF.format(statement), "choices": ["true", "false"], "answer": "true" if truth else "false"}


def main() -> None:
    for name, make in (("negation_ab", negation), ("arithmetic_ab", arithmetic), ("compare_ab", compare),
                       ("mixed_sentiment_ab", mixed)):
        items = make(random.Random(17))
        random.Random(0).shuffle(items)
        path = TASKS / f"{name}.jsonl"
        path.write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
        answers = [it["answer"] for it in items]
        print(f"{path.relative_to(TASKS.parents[1])}: {len(items)} items, "
              f"answers {dict((a, answers.count(a)) for a in sorted(set(answers)))}")


if __name__ == "__main__":
    main()
