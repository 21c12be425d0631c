"""The English detector of the i18n page tests: what it reads, what it flags, what it spares."""

from __future__ import annotations

from tests.dashboards.i18n_text import english_in, figure_texts, output_texts, visible_texts


def _component(kind: str, **props):
    return {"type": kind, "namespace": "dash_html_components", "props": props}


def test_visible_texts_reads_children_labels_options_and_figures():
    layout = _component(
        "Div",
        id="x",
        className="not-read",
        children=[
            _component("H1", children="Title"),
            _component("Dropdown", placeholder="Pick", options=[{"label": "One", "value": "1"}]),
            _component(
                "Graph",
                figure={
                    "layout": {"title": {"text": "Chart"}, "xaxis": {"title": {"text": "Axis"}}},
                    "data": [{"name": "Legend", "y": ["Category"], "hovertemplate": "%{y} hover"}],
                },
            ),
            _component("DataTable", columns=[{"name": "Header", "id": "h"}], data=[{"h": "Cell"}]),
        ],
    )

    texts = visible_texts(layout)

    assert set(texts) == {
        "Title",
        "Pick",
        "One",
        "Chart",
        "Axis",
        "Legend",
        "Category",
        "%{y} hover",
        "Header",
        "Cell",
    }


def test_callback_answers_are_read_by_property():
    answer = {"response": {"page-status": {"children": "Done."}, "page-graph": {"figure": {}}}}

    assert output_texts(answer) == ["Done."]


def test_figure_texts_skip_numbers():
    assert figure_texts({"data": [{"x": [1, 2], "text": ["12%"]}]}) == ["12%"]


def test_english_is_flagged_with_its_words_in_french_and_arabic():
    assert english_in(["Les personnes de retour", "Mean scores"], "fr") == ["'Mean scores' (mean)"]
    assert english_in(["متوسط الدرجات", "the returnees"], "ar") == [
        "'the returnees' (returnees, the)"
    ]


def test_names_codes_numbers_and_shared_words_are_not_english():
    texts = [
        "SEN",
        "E01 · econ_satisfaction",
        "reintegration-risk v1",
        "scoped-manager (responsable)",
        "1 234,5 %",
        "Assistance",  # French too
        "utilisez female, male",
        "amina",
    ]

    assert english_in(texts, "fr", names=["amina"]) == []
