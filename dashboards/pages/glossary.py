"""Glossary: the words the charts and downloads use, in plain language, for every role.

The thresholds are read from the questionnaire spec, so the page says what the index does."""

from __future__ import annotations

import dash
from dash import html

from dashboards.access import page_layout
from dashboards.data import min_cell
from reintegration.i18n import _, format_decimal, format_integer
from reintegration.questionnaire import load_questionnaire
from reintegration.roles import Capability
from reintegration.users import User

dash.register_page(
    __name__,
    path="/glossary",
    name="Glossary",
    title="Glossary · Reintegration",
    order=10,
    capability=tuple(Capability),
)

PAGE = "glossary"


def terms(smallest: int = 5) -> list[tuple[str, str]]:
    """(term, explanation) in the current language, in reading order.

    ``smallest`` is the privacy threshold: the fewest returnees a figure is shown for.
    """
    index = load_questionnaire().index
    low, high = format_decimal(index.medium_from), format_decimal(index.high_from)
    sustainable = format_decimal(index.sustainable_from)
    floor = format_decimal(index.sustainable_dimension_floor)
    cell = format_integer(smallest)
    return [
        (
            _("Score"),
            _(
                "A number from 0 (worst) to 1 (best) computed from a returnee's answers to the "
                "survey. Means are printed to 2 decimals."
            ),
        ),
        (
            _("Dimension"),
            _(
                "One of the three sides of reintegration the survey measures: economic (work, "
                "income, debt, food), social (housing and access to services such as health "
                "and education) and psychosocial (wellbeing, safety, support networks, sense of "
                "belonging). Each has its own score."
            ),
        ),
        (
            _("Composite"),
            _("The overall score: a weighted average of the three dimension scores, from 0 to 1."),
        ),
        (
            _("Level bands"),
            _(
                "Low below {low}, medium from {low}, high from {high}, on the composite score.",
                low=low,
                high=high,
            ),
        ),
        (
            _("Sustainable"),
            _(
                "A returnee's reintegration counts as sustainable when the composite is at "
                "least {sustainable} and no dimension is below {floor}. The share sustainable "
                "is the percentage of returnees for whom this holds.",
                sustainable=sustainable,
                floor=floor,
            ),
        ),
        (
            _("Weakest dimension"),
            _("The dimension with a returnee's lowest score: where support would help most."),
        ),
        (
            _("n"),
            _(
                "The number of returnees behind a figure. By survey round, a returnee counts "
                "once in each round they were surveyed in (returnee-rounds)."
            ),
        ),
        (
            _("95% interval"),
            _(
                "The range where the true value most likely lies (95 times out of 100), given "
                "how many returnees were surveyed. Small groups have wide intervals; two groups "
                "whose intervals overlap may not really differ."
            ),
        ),
        (
            _("Suppressed group"),
            _(
                "A group of fewer than {cell} returnees: its figures are not shown, to protect "
                "the people in it, and it is marked, never drawn as zero.",
                cell=cell,
            ),
        ),
        (
            _("Exact figures"),
            _(
                "Figures as computed from the data, for use within the organisation; analysts "
                "and administrators see them by default."
            ),
        ),
        (
            _("Publishable (perturbed) figures"),
            _(
                "Figures with small random changes so that no person can be recognised: small "
                "groups are gathered into one row (\u201cother groups\u201d), dates widened to "
                "whole months. Safe to share outside; managers always see these."
            ),
        ),
        (
            _("Survey round"),
            _("Returnees are surveyed several times after return: round 1, round 2, and so on."),
        ),
        (
            _("Months since return"),
            _(
                "Time between a returnee's return and the survey, in bands centred on the "
                "follow-up rounds (within 4 months, over 4 and under 9, 9 or more)."
            ),
        ),
        (
            _("Quarter of return"),
            _(
                "The three months in which returnees came back (a cohort); cohorts are compared "
                "at the same months since return."
            ),
        ),
        (
            _("Following the same returnees"),
            _(
                "Keeping only the returnees surveyed at every point of a trajectory, so that a "
                "change is a change in the same people."
            ),
        ),
        (
            _("Retention"),
            _("How many of the returnees surveyed in round 1 were surveyed again later."),
        ),
        (
            _("Raw and adjusted gap"),
            _(
                "The difference between returnees who received an assistance and those who "
                "received none: as observed (raw), and after taking into account sex, age "
                "group, return type, country and months since return (adjusted)."
            ),
        ),
        (
            _("Association, not effect"),
            _(
                "A gap shows that two groups differ, not that the assistance caused the "
                "difference: assisted returnees may differ in other ways too."
            ),
        ),
        (
            _("Design effect"),
            _(
                "How much the survey's clustering (returnees interviewed by the same "
                "enumerator or in the same place) widens an interval compared with "
                "independent interviews."
            ),
        ),
        (
            _("Flagged enumerator"),
            _(
                "An enumerator whose interviews stand out (scores or missing answers far from "
                "others'): a prompt for a supervisor's check, not a finding."
            ),
        ),
        (
            _("Index version"),
            _(
                "The version of the scoring rules (weights and thresholds) that produced the "
                "scores; every chart and download names it."
            ),
        ),
        (
            _("Unscored"),
            _("Returnees who answered too few questions to be given a score."),
        ),
        (
            _("Downloads"),
            _(
                "Every CSV ends with four columns saying where its figures come from: figures "
                "(exact, or perturbed for privacy), filters, index_version and extracted_on "
                "(the day of the download). The Excel file says the same on its \u201cread "
                "me\u201d sheet, with the meaning of each column. Interval bounds end in "
                "_lower_95 and _upper_95; shares are from 0 to 1."
            ),
        ),
    ]


@page_layout(__name__)
def layout(user: User, **_query: str) -> html.Div:
    entries = []
    for term, meaning in terms(min_cell()):
        entries += [html.Dt(term), html.Dd(meaning)]
    return html.Div(
        className=f"page page-{PAGE}",
        children=[
            html.H1(_("Glossary")),
            html.P(_("What the words on the charts and in the downloads mean."), className="intro"),
            html.Dl(entries, className="glossary section", id=f"{PAGE}-terms"),
        ],
    )
