"""No chart can be sent to a third party (issue 11, finding 16): every ``dcc.Graph`` of every
page's layout has a toolbar without Plotly's cloud or Chart Studio buttons and no server to
send to. (The browser test in ``test_trust_csp_browser`` checks the toolbars as drawn.)"""

from __future__ import annotations

import dash

from dashboards.access import capabilities
from dashboards.components import graph_config
from tests.dashboards.conftest import Client

CLOUD_BUTTONS = {"sendDataToCloud", "sendChartToCloud", "editInChartStudio"}


def _gated_pages() -> list[str]:
    # The pages register themselves when an app is built (the client's fixture built one).
    return sorted(str(p["path"]) for p in dash.page_registry.values() if capabilities(p))


def _graphs(node):
    if isinstance(node, dict):
        if node.get("type") == "Graph" and node.get("namespace") == "dash_core_components":
            yield node
        for value in node.values():
            yield from _graphs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _graphs(value)


def _offers_no_cloud(config: dict) -> bool:
    return (
        config.get("showSendToCloud") is False
        and config.get("showEditInChartStudio") is False
        and config.get("showLink") is False
        and config.get("plotlyServerURL") == ""
        and config.get("displaylogo") is False
        and CLOUD_BUTTONS <= set(config.get("modeBarButtonsToRemove", []))
    )


def test_the_one_graph_config_turns_every_cloud_button_off():
    config = graph_config("overview-means")

    assert _offers_no_cloud(config)
    assert config["toImageButtonOptions"]["filename"] == "overview-means"  # PNG stays local


def test_every_graph_of_every_page_offers_no_cloud(client: Client):
    client.login("admin")  # every page is open to an admin
    layouts = {path: client.page(path).get_json() for path in _gated_pages()}

    graphs = {path: list(_graphs(layout)) for path, layout in layouts.items()}

    assert len(graphs) == 11 and not any(
        "is not open to your role" in str(x) for x in layouts.values()
    )
    # The walk finds the charts of the pages that draw, so the check below checks something.
    assert len(graphs["/overview"]) == 3 and len(graphs["/breakdowns"]) == 2
    assert sum(map(len, graphs.values())) >= 10
    for path, found in graphs.items():
        for graph in found:
            assert _offers_no_cloud(graph["props"].get("config", {})), (path, graph["props"]["id"])
