from __future__ import annotations

import pytest
from pydantic_evals.evaluators.llm_as_a_judge import judge_input_output_expected, judge_output

from agents.judge import grade, offline_judge_model, parse_sections


def test_parse_sections() -> None:
    prompt = '<Input>\nq\n</Input>\n<Output>\na\nb\n</Output>\n<Rubric>\nr\n</Rubric>'
    assert parse_sections(prompt) == {'Input': 'q', 'Output': 'a\nb', 'Rubric': 'r'}


def test_quoted_terms_must_appear() -> None:
    passed = grade('Mentions "FedEx" and "tracking"', 'Shipped with fedex, tracking FE1.')
    assert (passed.pass_, passed.score) == (True, 1.0)
    failed = grade('Mentions "FedEx" and "tracking"', 'Shipped with UPS, tracking UP1.')
    assert (failed.pass_, failed.score) == (False, 0.667)
    assert failed.reason == "Failed: mentions 'FedEx'."


def test_concise_accurate_and_apology_rules() -> None:
    assert not grade('Concise', 'word ' * 121).pass_
    assert grade('Concise', 'word ' * 120).pass_
    assert not grade('Accurate', "I don't know.").pass_
    assert not grade('Apologises for the delay', 'Your parcel ships today.').pass_
    assert grade('Apologises for the delay', "I'm sorry, your parcel ships today.").pass_


def test_expected_output_coverage() -> None:
    assert grade('ok', 'Price divided by earnings per share', expected='Price-to-earnings ratio').pass_ is False
    assert grade('ok', 'The price-to-earnings ratio is...', expected='Price-to-earnings ratio').pass_
    assert not grade('ok', '').pass_


@pytest.mark.anyio
async def test_runs_as_the_llm_judge_model() -> None:
    model = offline_judge_model()
    result = await judge_output('Hello world', 'Contains a "greeting"', model)
    assert (result.pass_, result.score) == (False, 0.5)
    result = await judge_input_output_expected(
        'What is P/E?', 'Price-to-earnings ratio: ...', 'Price-to-earnings', 'Accurate', model
    )
    assert result.pass_
    assert result.reason == 'All 3 rubric checks passed.'
