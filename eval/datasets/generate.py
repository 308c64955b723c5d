"""Writes the three bundled evaluation datasets (run from the repository root:
``python eval/datasets/generate.py``; a test checks the committed files match).

- ``arithmetic.jsonl``: word problems of two or three steps; graded ``numeric``.
- ``geography.jsonl``: capitals and physical geography; graded ``contains``.
- ``reasoning.jsonl``: multiple choice (orderings, sequences, syllogisms, calendars,
  fractions); graded ``choice``.

Numbers and option orders come from a fixed seed, and every answer is computed here, not
typed, so each one is right by construction.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).parent
SEED = 2026


def arithmetic(rng: random.Random) -> list[dict]:
    templates = [
        (
            "A baker makes {a} loaves every morning and {b} every afternoon. How many loaves "
            "does she make in {c} days?",
            lambda a, b, c: (a + b) * c,
        ),
        (
            "A library has {a} shelves with {b} books each. It lends out {c} books. How many "
            "books are left on the shelves?",
            lambda a, b, c: a * b - c,
        ),
        (
            "Tickets cost {a} dollars for adults and {b} dollars for children. What do {c} "
            "adults and 3 children pay in total?",
            lambda a, b, c: a * c + 3 * b,
        ),
        (
            "A train travels at {a} km per hour for {b} hours, then at {c} km per hour for 2 "
            "hours. How many kilometres does it travel?",
            lambda a, b, c: a * b + 2 * c,
        ),
        (
            "Sam has {a} marbles. He gives {b} to each of his {c} friends. How many marbles "
            "does he have left?",
            lambda a, b, c: a - b * c,
        ),
        (
            "A garden is {a} metres long and {b} metres wide. A path takes up {c} square "
            "metres. How many square metres are left for plants?",
            lambda a, b, c: a * b - c,
        ),
    ]
    items = []
    for i in range(60):
        text, answer = templates[i % len(templates)]
        while True:
            a, b, c = rng.randint(12, 90), rng.randint(3, 15), rng.randint(2, 9)
            if "marbles" in text:
                a = b * c + rng.randint(1, 40)
            if "lends" in text or "path" in text:
                c = rng.randint(5, a * b - 1)
            value = answer(a, b, c)
            if value > 0:
                break
        prompt = text.format(a=a, b=b, c=c) + " Give the final answer as a number."
        items.append(
            {"id": f"arith-{i + 1:02d}", "prompt": prompt, "answer": value, "grader": "numeric"}
        )
    return items


CAPITALS = [
    ("Australia", "Canberra"),
    ("Canada", "Ottawa"),
    ("Brazil", "Brasília"),
    ("Turkey", "Ankara"),
    ("Switzerland", "Bern"),
    ("New Zealand", "Wellington"),
    ("South Africa", "Pretoria"),
    ("Nigeria", "Abuja"),
    ("Pakistan", "Islamabad"),
    ("Morocco", "Rabat"),
    ("Vietnam", "Hanoi"),
    ("Kazakhstan", "Astana"),
    ("Myanmar", "Naypyidaw"),
    ("Tanzania", "Dodoma"),
    ("Bolivia", "Sucre"),
    ("Sri Lanka", "Sri Jayawardenepura Kotte"),
    ("Côte d'Ivoire", "Yamoussoukro"),
    ("Germany", "Berlin"),
    ("Japan", "Tokyo"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Peru", "Lima"),
    ("Chile", "Santiago"),
    ("Argentina", "Buenos Aires"),
    ("Norway", "Oslo"),
    ("Finland", "Helsinki"),
    ("Poland", "Warsaw"),
    ("Hungary", "Budapest"),
    ("Portugal", "Lisbon"),
    ("Greece", "Athens"),
    ("Thailand", "Bangkok"),
    ("Indonesia", "Jakarta"),
    ("Philippines", "Manila"),
    ("South Korea", "Seoul"),
    ("Mongolia", "Ulaanbaatar"),
    ("Iran", "Tehran"),
    ("Saudi Arabia", "Riyadh"),
    ("Ethiopia", "Addis Ababa"),
    ("Ghana", "Accra"),
    ("Colombia", "Bogotá"),
    ("Venezuela", "Caracas"),
    ("Cuba", "Havana"),
    ("Ireland", "Dublin"),
    ("Iceland", "Reykjavík"),
    ("Austria", "Vienna"),
]
ALSO = {
    "Brasília": ["Brasilia"],
    "Bogotá": ["Bogota"],
    "Reykjavík": ["Reykjavik"],
    "Sri Jayawardenepura Kotte": ["Kotte"],
    "Naypyidaw": ["Nay Pyi Taw", "Naypyitaw"],
    "Astana": ["Nur-Sultan"],
    "Sucre": ["La Paz"],
}
FACTS = [
    ("Which ocean lies between Africa and Australia?", ["Indian Ocean", "Indian"]),
    ("What is the longest river in South America?", ["Amazon"]),
    ("What is the highest mountain in Africa?", ["Kilimanjaro"]),
    ("Which desert covers most of northern Africa?", ["Sahara"]),
    ("What is the largest lake in Africa by area?", ["Lake Victoria", "Victoria"]),
    ("Which mountain range separates Europe from Asia in Russia?", ["Ural", "Urals"]),
    ("What is the smallest country in the world by area?", ["Vatican"]),
    ("Which strait separates Spain from Morocco?", ["Gibraltar"]),
    ("On which continent is the Atacama Desert?", ["South America"]),
    ("What is the largest island in the world?", ["Greenland"]),
    ("Which river flows through Baghdad?", ["Tigris"]),
    ("Which country has the most natural lakes?", ["Canada"]),
    ("What is the deepest lake in the world?", ["Baikal"]),
    ("Which sea lies between Italy and the Balkans?", ["Adriatic"]),
    ("In which country is the Mekong Delta?", ["Vietnam"]),
]


def geography() -> list[dict]:
    items = []
    for i, (country, capital) in enumerate(CAPITALS, start=1):
        items.append(
            {
                "id": f"geo-{i:02d}",
                "prompt": f"What is the capital of {country}?",
                "answers": [capital, *ALSO.get(capital, [])],
                "grader": "contains",
            }
        )
    for j, (question, answers) in enumerate(FACTS, start=len(CAPITALS) + 1):
        items.append(
            {"id": f"geo-{j:02d}", "prompt": question, "answers": answers, "grader": "contains"}
        )
    return items


NAMES = ["Ann", "Ben", "Cal", "Dee", "Eve", "Fay", "Gus", "Hal"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NONSENSE = ["bloops", "razzies", "lazzies", "snarks", "glims", "trovs", "quibs", "marls"]


def _choice(rng: random.Random, question: str, right: str, wrong: list[str]) -> tuple[str, str]:
    options = [right, *wrong[:3]]
    rng.shuffle(options)
    letters = "ABCD"
    lines = "\n".join(f"({letters[i]}) {o}" for i, o in enumerate(options))
    prompt = f"{question}\n{lines}\nAnswer with the letter of the correct option."
    return prompt, letters[options.index(right)]


def reasoning(rng: random.Random) -> list[dict]:
    items = []
    for i in range(60):
        kind = i % 5
        if kind == 0:  # a chain of comparisons
            people = rng.sample(NAMES, 4)
            facts = " ".join(
                f"{people[k]} is taller than {people[k + 1]}." for k in rng.sample(range(3), 3)
            )
            asked = rng.choice(["tallest", "shortest"])
            right = people[0] if asked == "tallest" else people[3]
            wrong = [p for p in people if p != right]
            prompt, letter = _choice(rng, f"{facts} Who is the {asked}?", right, wrong)
        elif kind == 1:  # a sequence
            start, step = rng.randint(2, 9), rng.randint(2, 4)
            if rng.random() < 0.5:
                seq = [start * step**k for k in range(5)]
                nxt = seq[-1] * step
            else:
                seq = [start + step * k * (k + 1) // 2 for k in range(5)]
                nxt = start + step * 5 * 6 // 2
            shown = ", ".join(str(x) for x in seq[:4])
            wrong = [str(nxt + d) for d in rng.sample([-step, step, 2 * step, -1, 1], 3)]
            prompt, letter = _choice(
                rng, f"What number comes next: {shown}, {seq[4]}, ?", str(nxt), wrong
            )
        elif kind == 2:  # a syllogism
            a, b, c = rng.sample(NONSENSE, 3)
            if rng.random() < 0.5:
                q = f"All {a} are {b}. All {b} are {c}. Are all {a} {c}?"
                right = "Yes, necessarily"
            else:
                q = f"All {a} are {b}. Some {b} are {c}. Are all {a} {c}?"
                right = "Not necessarily"
            options = [
                "Yes, necessarily",
                "Not necessarily",
                "No, none of them are",
                "Only if there are more " + c + " than " + a,
            ]
            prompt, letter = _choice(rng, q, right, [o for o in options if o != right])
        elif kind == 3:  # a calendar
            today = rng.randrange(7)
            ahead = rng.randint(8, 40)
            right = DAYS[(today + ahead) % 7]
            wrong = [d for d in rng.sample(DAYS, 7) if d != right]
            prompt, letter = _choice(
                rng,
                f"If today is {DAYS[today]}, what day of the week is it in {ahead} days?",
                right,
                wrong,
            )
        else:  # fractions
            fracs: list[Fraction] = []
            while len(fracs) < 4:
                f = Fraction(rng.randint(1, 9), rng.randint(2, 10))
                if f < 1 and f not in fracs:
                    fracs.append(f)
            asked = rng.choice(["largest", "smallest"])
            right_f = max(fracs) if asked == "largest" else min(fracs)
            wrong = [f"{f.numerator}/{f.denominator}" for f in fracs if f != right_f]
            prompt, letter = _choice(
                rng,
                f"Which of these fractions is the {asked}?",
                f"{right_f.numerator}/{right_f.denominator}",
                wrong,
            )
        items.append(
            {"id": f"reason-{i + 1:02d}", "prompt": prompt, "answer": letter, "grader": "choice"}
        )
    return items


def render(items: list[dict]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def datasets() -> dict[str, str]:
    rng = random.Random(SEED)
    return {
        "arithmetic.jsonl": render(arithmetic(rng)),
        "geography.jsonl": render(geography()),
        "reasoning.jsonl": render(reasoning(rng)),
    }


if __name__ == "__main__":
    for name, text in datasets().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / name}: {text.count(chr(10))} items")
