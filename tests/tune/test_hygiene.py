"""Hygiene before training: duplicates, near duplicates, contradictions, rater agreement, machine share."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.tune.hygiene import _is_machine, clean, exact_key, normalize

LONG = (
    "Our quarterly report shows revenue grew in every region, led by strong demand for the new "
    "storage line, while costs stayed flat and the support backlog fell to its lowest level in two years. "
    "Next quarter the team expects slower growth as the launch cycle ends, and plans to hire in sales, "
    "open an office in Lisbon, and spend more on research for the follow-up product due next spring"
)


def pair(prompt: str, chosen: str, rejected: str, rater: str = "alice", **meta: Any) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "meta": {"rater": rater, "machine": rater.startswith("model:"), "thread_id": "t", "checkpoint_id": "c", **meta},
    }


def verdict(prompt: str, completion: str, label: bool, rater: str) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "completion": [{"role": "assistant", "content": completion}],
        "label": label,
        "meta": {"rater": rater, "machine": False},
    }


def test_exact_duplicates_ignore_case_space_and_rater() -> None:
    records = [pair("Hi", "Hello!", "Yo."), pair("  hi ", "HELLO!", "yo.", rater="bob"), pair("Hi", "Hey!", "Yo.")]
    out, report = clean({"pairs": records})
    assert [r["chosen"][0]["content"] for r in out["pairs"]] == ["Hello!", "Hey!"]
    assert report.datasets["pairs"].exact_duplicates == 1
    assert out["pairs"][0]["meta"]["flags"] == [] and "flags" not in records[0]["meta"]  # input untouched


def test_a_person_is_kept_over_a_machine_among_copies() -> None:
    records = [pair("Hi", "Hello!", "Yo.", rater="model:judge"), pair("Hi", "Hello!", "Yo.", rater="alice")]
    out, _ = clean({"pairs": records}, max_machine_share=1)
    assert [r["meta"]["rater"] for r in out["pairs"]] == ["alice"]


def test_near_duplicates_need_both_prompt_and_replies_close() -> None:
    reworded = LONG.replace("next spring", "next spring!")
    records = [
        pair("Summarise the report", LONG, "Revenue went up."),
        pair("Summarise the report", reworded, "Revenue went up."),  # near duplicate of the first
        pair("Summarise the report", "Costs were flat.", "Revenue went up."),  # same prompt, other reply
        pair("Summarise the report", "Revenue went up.", LONG),  # the first, flipped: a contradiction, not a dup
        pair(LONG, "A good quarter.", "A bad quarter."),  # a long prompt ...
        pair(LONG, "A bad quarter.", "A good quarter."),  # ... with its replies flipped
    ]
    out, report = clean({"pairs": records})
    assert report.datasets["pairs"].near_duplicates == 1
    assert len(out["pairs"]) == 5 and reworded not in [r["chosen"][0]["content"] for r in out["pairs"]]
    assert report.near_duplicate_threshold == 0.9
    off, off_report = clean({"pairs": records}, near_duplicate_threshold=None)
    assert len(off["pairs"]) == 6 and off_report.datasets["pairs"].near_duplicates == 0


def test_contradictions_are_flagged_or_dropped() -> None:
    records = [pair("Q", "A", "B", rater="alice"), pair("Q", "B", "A", rater="bob"), pair("Q2", "A", "B")]
    out, report = clean({"pairs": records})
    assert [r["meta"]["flags"] for r in out["pairs"]] == [["contradiction"], ["contradiction"], []]
    (found,) = report.contradictions
    assert found["raters"] == ["alice", "bob"] and found["dataset"] == "pairs" and found["prompt"] == "user: q"
    dropped, dropped_report = clean({"pairs": records}, drop_contradictions=True)
    assert len(dropped["pairs"]) == 1 and dropped_report.datasets["pairs"].contradictions_dropped == 2


def test_rater_counts_and_pairwise_agreement() -> None:
    unpaired = [
        verdict("p1", "r1", True, "alice"),
        verdict("p1", "r1", True, "bob"),
        verdict("p2", "r2", True, "alice"),
        verdict("p2", "r2", False, "bob"),
        verdict("p3", "r3", False, "carol"),
    ]
    pairs = [pair("Q", "A", "B", rater="alice"), pair("Q", "A", "B", rater="carol")]
    sft = [{"prompt": u["prompt"], "completion": u["completion"], "meta": u["meta"]} for u in unpaired if u["label"]]
    _, report = clean({"pairs": pairs, "sft": sft, "unpaired": unpaired})
    counts = {r.rater: r.examples for r in report.raters}
    assert counts["alice"] == {"pairs": 1, "sft": 2, "unpaired": 2} and counts["carol"] == {"pairs": 1, "unpaired": 1}
    agreement = {a.raters: (a.shared, a.agreed) for a in report.agreement}
    assert agreement == {("alice", "bob"): (2, 1), ("alice", "carol"): (1, 1)}  # sft approvals are not counted twice
    assert report.to_dict()["agreement"][0]["rate"] == 0.5


def test_machine_share_is_capped_per_dataset() -> None:
    people = [pair(f"q{i}", "a", "b") for i in range(3)]
    machine = [pair(f"m{i}", "a", "b", rater="model:judge") for i in range(6)]
    out, report = clean({"pairs": people + machine}, max_machine_share=0.5)
    assert report.datasets["pairs"].machine_before == 6 and report.datasets["pairs"].machine_dropped == 3
    assert sum(_is_machine(r) for r in out["pairs"]) == 3
    none, _ = clean({"pairs": people + machine}, max_machine_share=0)
    assert len(none["pairs"]) == 3
    with pytest.raises(ValueError, match="max_machine_share"):
        clean({"pairs": people}, max_machine_share=1.5)


def test_normalize() -> None:
    assert normalize("  Ｈｅｌｌｏ\n\tWORLD ") == "hello world"
    assert exact_key(pair("a", "b", "c")) == exact_key(pair("A ", "B", " c", rater="other"))
    assert exact_key(pair("a", "b", "c")) != exact_key(pair("a", "c", "b"))


# -- invariants, for any data ---------------------------------------------------------------------

words = st.sampled_from(["yes", "no", "maybe", "Paris", "blue", "42", "the", "sky", "is"])
texts = st.lists(words, min_size=1, max_size=6).map(" ".join)
raters = st.sampled_from(["alice", "bob", "model:judge", "model:critic"])
pairs = st.lists(st.builds(pair, texts, texts, texts, raters), max_size=25)
shares = st.sampled_from([0.0, 0.2, 0.5, 1.0])


@settings(max_examples=60, deadline=None)
@given(records=pairs, share=shares, drop=st.booleans())
def test_clean_invariants(records: list[dict[str, Any]], share: float, drop: bool) -> None:
    out, report = clean({"pairs": records}, max_machine_share=share, drop_contradictions=drop)
    kept = out["pairs"]
    stats = report.datasets["pairs"]
    # every kept record is an input record (plus flags), in input order
    stripped = [{**r, "meta": {k: v for k, v in r["meta"].items() if k != "flags"}} for r in kept]
    positions = [records.index(r) for r in stripped]
    assert positions == sorted(positions)
    # nothing removed twice or silently
    removed = stats.exact_duplicates + stats.near_duplicates + stats.contradictions_dropped + stats.machine_dropped
    assert stats.kept == len(kept) == len(records) - removed
    # no exact duplicates left, machine share within the cap
    assert len({exact_key(r) for r in kept}) == len(kept)
    machine = sum(_is_machine(r) for r in kept)
    if share < 1 and kept:
        assert machine <= share * len(kept) + 1e-9 or machine == 0
    if drop:
        assert not any("contradiction" in r["meta"]["flags"] for r in kept)
    # cleaning again changes nothing
    again, _ = clean({"pairs": kept}, max_machine_share=share, drop_contradictions=drop)
    assert again["pairs"] == kept
