"""The offline LLM judge: a deterministic `FunctionModel` that grades an output against a rubric with plain rules.

It reads the `<Input>`, `<Output>`, `<ExpectedOutput>` and `<Rubric>` sections of the prompt `LLMJudge` builds and
runs the checks the rubric asks for; the verdict passes only when every check passes, and the score is the share
of checks passed. Rules (rubrics are written so that a real judge reads them the same way):

- the output must not be empty;
- every term the rubric puts in double quotes ("like this") must appear in the output, ignoring case;
- a rubric asking for a *concise* answer allows at most 120 words;
- a rubric asking for an *accurate* or *answering* output rejects non-answers ("I don't know", "no definition");
- a rubric mentioning an *apology* or *empathy* needs "sorry" or "apolog" in the output;
- with an expected output, at least half of its content words must appear in the output.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, infer_model
from pydantic_ai.models.function import AgentInfo
from pydantic_evals.evaluators.llm_as_a_judge import GradingOutput

from agents._offline import final_output, last_user_prompt
from agents.models import OFFLINE, offline_model, read_agent_settings, resolve_model_setting

__all__ = (
    'Check',
    'configure_judge',
    'grade',
    'judge_model',
    'judge_policy',
    'offline_judge_model',
    'parse_sections',
    'rubric_checks',
)

_SECTION = re.compile(r'<(Input|Output|ExpectedOutput|Rubric)>\n?(.*?)\n?</\1>', re.DOTALL)
_QUOTED = re.compile(r'"([^"]+)"')
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_NON_ANSWERS = ("i don't know", 'i do not know', "don't have a reliable", 'no definition', 'cannot answer')
_STOPWORDS = frozenset(
    [
        'a',
        'an',
        'and',
        'are',
        'as',
        'at',
        'be',
        'by',
        'for',
        'from',
        'in',
        'is',
        'it',
        'of',
        'on',
        'or',
        'that',
        'the',
        'this',
        'to',
        'with',
    ]
)
_MAX_CONCISE_WORDS = 120


@dataclass(frozen=True)
class Check:
    """One rule applied to the output."""

    name: str
    passed: bool


def parse_sections(prompt: str) -> dict[str, str]:
    """The tagged sections of an `LLMJudge` prompt, by tag name."""
    return {tag: body.strip() for tag, body in _SECTION.findall(prompt)}


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 2}


def rubric_checks(rubric: str, output: str, expected: str | None = None) -> list[Check]:
    """The checks the rubric (and expected output, if given) call for, applied to `output`."""
    lowered_rubric = rubric.lower()
    lowered = output.lower()
    checks = [Check('output is not empty', bool(output.strip()))]
    for term in _QUOTED.findall(rubric):
        checks.append(Check(f'mentions {term!r}', term.lower() in lowered))
    if 'concise' in lowered_rubric:
        words = len(output.split())
        checks.append(Check(f'concise ({words} words, at most {_MAX_CONCISE_WORDS})', words <= _MAX_CONCISE_WORDS))
    if 'accurate' in lowered_rubric or 'answer' in lowered_rubric:
        checks.append(Check('gives an answer', not any(phrase in lowered for phrase in _NON_ANSWERS)))
    if 'apolog' in lowered_rubric or 'empath' in lowered_rubric:
        checks.append(Check('apologises', 'sorry' in lowered or 'apolog' in lowered))
    if expected:
        wanted = _content_words(expected)
        found = wanted & _content_words(output)
        checks.append(
            Check(f'covers the expected output ({len(found)}/{len(wanted)} words)', 2 * len(found) >= len(wanted))
        )
    return checks


def grade(rubric: str, output: str, expected: str | None = None) -> GradingOutput:
    """Grade `output` against `rubric`: pass when every check passes, score = share of checks passed."""
    checks = rubric_checks(rubric, output, expected)
    failed = [c.name for c in checks if not c.passed]
    score = round(1 - len(failed) / len(checks), 3)
    reason = f'Failed: {"; ".join(failed)}.' if failed else f'All {len(checks)} rubric checks passed.'
    return GradingOutput(reason=reason, pass_=not failed, score=score)


def judge_policy(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Offline judge model: grade the prompt's output against its rubric and answer as `GradingOutput`."""
    sections = parse_sections(last_user_prompt(messages))
    grading = grade(sections.get('Rubric', ''), sections.get('Output', ''), sections.get('ExpectedOutput'))
    return final_output(info, grading.model_dump(by_alias=True))


def offline_judge_model() -> Model:
    """The offline judge, reported under the `offline_priced_as` model, as the agents are (see agents.models)."""
    return offline_model(judge_policy, 'judge')


def judge_model() -> Model:
    """The model the LLM judge runs on: the offline judge or the configured pydantic-ai model.

    A real model is built here, once, rather than passed on as a string: `LLMJudge` would build (and never close) a
    new HTTP client from a string on every judgement.
    """
    name = resolve_model_setting('judge_model', os.environ, read_agent_settings())
    return offline_judge_model() if name == OFFLINE else infer_model(name)


def configure_judge() -> None:
    """Make `judge_model()` the default model of every `LLMJudge` that does not name its own."""
    from pydantic_evals.evaluators.llm_as_a_judge import set_default_judge_model

    set_default_judge_model(judge_model())
