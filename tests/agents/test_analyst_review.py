from __future__ import annotations

import pytest

from agents.analyst_review import AnalystDeps, Brief, analyse, choose_metrics, compute_metric, review_brief


def test_choose_metrics() -> None:
    assert choose_metrics('Break down revenue by product category.') == (['revenue_by_category'], None)
    assert choose_metrics('What was revenue in March?') == (['revenue_total'], '2024-03')
    assert choose_metrics('Give me an overview') == (['revenue_total', 'order_count'], None)
    assert choose_metrics('What is our churn rate?') == ([], None)
    # Reviewer feedback appended to a revision prompt must not change what is asked.
    assert choose_metrics('Top customer?\n\nReviewer issues to fix:\n- revenue missing') == (['top_customer'], None)


def test_compute_metric() -> None:
    deps = AnalystDeps()
    assert compute_metric(deps, 'order_count') == {'order_count': 30.0}
    assert compute_metric(deps, 'revenue_total', '2024-03') == {'revenue_total': 1180.0}
    with pytest.raises(ValueError, match='cannot be filtered by month'):
        compute_metric(deps, 'top_customer', '2024-03')


def test_review_flags_wrong_missing_and_undiscussed_figures() -> None:
    brief = Brief(
        headline='x',
        metrics=['revenue_by_category'],
        figures={'revenue:audio': 862.0, 'revenue:displays': 1.0, 'revenue:toys': 5.0, 'revenue:furniture': 3261.0},
        body='audio: 862.00',
    )
    review = review_brief(brief, {'revenue:audio': 862.0, 'revenue:displays': 3392.0, 'revenue:furniture': 3261.0})
    assert not review.approved
    assert review.issues == [
        "Figure 'revenue:displays' is 1.0 but the data says 3392.0.",
        "Figure 'revenue:toys' does not come from the metrics the brief names.",
        "Figure 'revenue:furniture' is not discussed in the body.",
    ]
    assert review_brief(Brief(headline='x', body='', figures={}), {}).issues == [
        'The brief has no figures to support its headline.'
    ]


@pytest.mark.anyio
async def test_pipeline_revises_until_approved() -> None:
    result = await analyse('Break down revenue by product category.', AnalystDeps())
    assert result.review.approved
    assert result.drafts == 2  # the first draft discusses only three of five figures
    assert result.brief.figures['revenue:displays'] == 3392.0


@pytest.mark.anyio
async def test_pipeline_gives_up_after_max_drafts() -> None:
    result = await analyse('What is our churn rate?', AnalystDeps())
    assert not result.review.approved
    assert result.drafts == 2
