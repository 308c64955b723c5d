"""The pure strategy helpers: normalising, voting, ranking, confidence, schemas."""

from __future__ import annotations

import pytest

from actors import answerchecks as checks
from actors import strategies as st


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Canberra.", "canberra"),
        ("  The  answer\nis 42 ", "the answer is 42"),
        ("1,000", "1000.0"),
        ("3.50", "3.5"),
        ("-2", "-2.0"),
        ("Yes!", "yes"),
    ],
)
def test_normalise_folds_case_space_punctuation_and_numbers(a: str, b: str) -> None:
    assert st.normalise(a) == st.normalise(b)


def test_normalise_keeps_different_answers_apart() -> None:
    assert st.normalise("3.5") != st.normalise("35")
    assert st.normalise("Paris") != st.normalise("Lyon")


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("so the answer is (B), final", r"\(([A-D])\)", "B"),
        ("first 3 then 4. Final answer: 17", r"answer:\s*(-?\d+)", "17"),
        ("A then B", r"[AB]", "B"),  # the last match wins
        ("nothing here", r"answer: (\d+)", None),
        ("whole text", None, "whole text"),
    ],
)
def test_extract(text: str, pattern: str | None, expected: str | None) -> None:
    assert st.extract(text, pattern) == expected


def test_vote_picks_the_plurality_and_its_share() -> None:
    out = st.vote({"a": "42", "b": "42.0", "c": "41"}, None, {})
    assert out is not None
    assert out.winner == "42" and out.answer == "42"
    assert out.confidence == pytest.approx(2 / 3) and not out.tie
    assert out.votes[0] == {"answer": "42", "count": 2, "models": ["a", "b"], "winner": True}
    assert out.votes[1]["models"] == ["c"]


def test_vote_with_a_pattern_compares_only_the_extracted_part() -> None:
    answers = {
        "a": "Long reasoning. Answer: (C)",
        "b": "Other words. Answer: (c)",
        "c": "Answer: (A)",
    }
    out = st.vote(answers, r"Answer:\s*\(([A-D])\)", {})
    assert out is not None and out.winner == "c" and out.answer == "C"


def test_vote_ties_go_to_the_better_recent_success_rate_and_are_reported() -> None:
    out = st.vote({"a": "x", "b": "y"}, None, {"a": 0.5, "b": 0.9})
    assert out is not None and out.tie and out.winner == "y"
    assert out.votes[0]["tie_broken_by"] == "success_rate"


def test_vote_without_readable_answers_is_none() -> None:
    assert st.vote({"a": "  ", "b": "..."}, r"(\d+)", {}) is None


def test_all_agree_needs_two_equal_answers() -> None:
    assert st.all_agree(["Paris.", "paris"], None)
    assert not st.all_agree(["Paris"], None)
    assert not st.all_agree(["Paris", "Lyon"], None)
    assert not st.all_agree(["x", "y"], r"(\d)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Analysis...\nRanking: B > A > C", ["B", "A", "C"]),
        ("ranking: C, A, B.", ["C", "A", "B"]),
        ("I think Answer C is best, then Answer A, and finally Answer B.", ["C", "A", "B"]),
        ("My ranking\n1. B\n", ["B"]),
        ("Best: A\nRanking: A > B", ["A", "B"]),
        ("no idea", None),
        ("Ranking: Z > Q", None),
    ],
)
def test_parse_ranking_reads_well_formed_and_sloppy_rankings(text, expected) -> None:
    result = st.parse_ranking(text, ["A", "B", "C"])
    if expected == ["B"]:
        assert result is None  # a single label is no ranking
    else:
        assert result == expected


def test_borda_is_normalised_for_the_missing_self_vote() -> None:
    """Nobody ranks their own answer: each ranking's places are worth 1 down to 0 over the
    candidates it could rank; a candidate's score is its mean over the others' rankings."""
    scores = st.borda({"a": ["b", "c"], "b": ["a", "c"], "c": ["a", "b"]}, ["a", "b", "c"])
    assert scores == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert st.borda_confidence(scores) == 0.5


def test_borda_shares_the_places_a_ranking_leaves_out() -> None:
    # d ranks only b among a, b, c: b is worth 1; a and c share the 0.5 and 0 left.
    scores = st.borda({"d": ["b"]}, ["a", "b", "c", "d"])
    assert scores == {"a": 0.25, "b": 1.0, "c": 0.25, "d": 0.0}  # d: nobody else ranked
    assert st.borda_confidence({}) == 0.0


def test_agreement_is_the_mean_pairwise_jaccard_of_word_sets() -> None:
    assert st.agreement(["the sky is blue", "The sky is blue."]) == 1.0
    assert st.agreement(["a b", "c d"]) == 0.0
    assert st.agreement(["a b", "a c", "a b"]) == pytest.approx((1 / 3 + 1 + 1 / 3) / 3, abs=1e-4)
    assert st.agreement(["alone"]) is None


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_schema_errors() -> None:
    assert checks.schema_errors('{"city": "Canberra"}', SCHEMA) == ({"city": "Canberra"}, [])
    assert checks.schema_errors('```json\n{"city": "X"}\n```', SCHEMA)[1] == []
    _, errors = checks.schema_errors('{"town": 1}', SCHEMA)
    assert errors and "city" in errors[0]
    assert "not valid JSON" in checks.schema_errors("Canberra", SCHEMA)[1][0]
    assert checks.check_schema(SCHEMA) is None
    assert "invalid JSON Schema" in (checks.check_schema({"type": 5}) or "")
    assert checks.check_schema([1]) == "schema must be a JSON object"


def test_cache_keys_are_stable_and_sensitive() -> None:
    assert st.cache_key(a=1, b=[1, 2]) == st.cache_key(b=[1, 2], a=1)
    assert st.cache_key(a=1) != st.cache_key(a=2)
    assert 0 <= st.stable_seed(st.cache_key(a=1)) < 2**32


# --- user patterns cannot stall the coordinator -----------------------------------------

EVIL = r"(a|aa)+$"  # exponential backtracking: re takes minutes on 40 characters


def test_a_catastrophic_pattern_gives_up_as_no_match() -> None:
    assert st.extract("a" * 40 + "!", EVIL) is None


def test_patterns_see_only_the_end_of_a_huge_reply() -> None:
    text = "answer: 1\n" + "x" * (st.PATTERN_MAX_INPUT + 10) + "\nanswer: 2"
    assert st.extract(text, r"answer:\s*(\d)") == "2"


def test_a_vote_where_no_reply_matches_the_pattern_falls_back_to_the_replies() -> None:
    answers = {"a": "Canberra", "b": "Canberra", "c": "Sydney"}
    result = st.vote(answers, r"answer:\s*(\w+)", {})
    assert result is not None
    assert result.answer == "Canberra"
    assert result.confidence == 0.0
    assert all(v["pattern_matched"] is False for v in result.votes)


def test_a_vote_where_the_pattern_matches_some_replies_ignores_the_rest() -> None:
    answers = {"a": "answer: 4", "b": "four", "c": "answer: 4"}
    result = st.vote(answers, r"answer:\s*(\d)", {})
    assert result is not None and result.answer == "4"
    assert "pattern_matched" not in result.votes[0]


# --- the agreement map ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "pattern", "same"),
    [
        ("Canberra", "The capital of Australia is Canberra.", None, True),
        ("Sydney", "The capital of Australia is Canberra.", None, False),
        ("The capital is Sydney.", "The capital is Canberra.", None, False),
        ("answer: 42", "so... answer: 42.0", r"answer:\s*([\d.]+)", True),
        ("answer: 42", "answer: 41", r"answer:\s*(\d+)", False),
        ("", "anything", None, False),
    ],
)
def test_same_answer(a: str, b: str, pattern: str | None, same: bool) -> None:
    assert st.same_answer(a, b, pattern) is same


def test_the_agreement_map_names_the_dissenter_and_the_clusters() -> None:
    """One model said Sydney and two said Canberra: the synthesize strategy used to give
    only a Jaccard number."""
    answers = {"a": "Canberra.", "b": "It is Sydney.", "c": "The capital is Canberra"}
    out = st.agreement_map(answers, "The capital of Australia is Canberra.", None)
    assert out["score"] == 0.6667 and out["dissenters"] == ["b"]
    assert [c["models"] for c in out["clusters"]] == [["a", "c"], ["b"]]
    assert st.agreement_map(answers, None, None)["score"] is None
    assert st.agreement_map({}, "x", None) == {"score": None, "dissenters": [], "clusters": []}


def test_validation_errors_name_the_missing_sections_and_the_pattern() -> None:
    validate = {"regex": r"Confidence: \d+%", "required_sections": ["Summary", "Risks"]}
    good = "## Summary\nfine\n**Risks** none\nConfidence: 80%"
    assert checks.validation_errors(good, validate) == []
    assert checks.validation_errors("Summary: fine", validate) == [
        "does not match the required pattern 'Confidence: \\\\d+%'",
        "missing the section 'Risks'",
    ]
    assert checks.validation_errors("anything", None) == []
