"""Every error is a problem document; the OpenAPI schema says so for every operation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.access import RULES
from api.app import create_app
from api.deps import get_services


def test_an_unknown_path_is_a_problem_document(panel):
    response = panel.client.get("/api/v2/nothing")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "there is nothing at /api/v2/nothing; the API lives under /api/v1 (see /docs)."
    )


def test_a_wrong_method_is_405(panel):
    response = panel.client.put("/api/v1/batches")

    assert response.status_code == 405
    assert response.json()["detail"] == "PUT is not allowed on /api/v1/batches."


def test_malformed_json_is_422_saying_so(panel):
    response = panel.post(
        "/api/v1/score", "analyst", content=b"{nope", headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith("the body: is not valid JSON (")


def test_an_unexpected_failure_is_a_500_problem_that_reveals_nothing(panel, caplog):
    app = create_app(panel.services, dashboard=False)

    def broken():
        raise RuntimeError("secret internals CASE-0001")

    app.dependency_overrides[get_services] = broken
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/healthz")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "an unexpected error stopped this request; it has been logged for the maintainers."
    )
    assert "CASE-0001" not in response.text
    assert any("GET /healthz failed" in r.getMessage() for r in caplog.records)


def test_the_schema_documents_problems_tokens_and_operation_ids(panel):
    schema = panel.client.get("/openapi.json").json()

    assert schema["components"]["schemas"]["Problem"]["required"] == [
        "title",
        "status",
        "detail",
    ]
    seen = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            seen.add(operation["operationId"])
            public = RULES[operation["operationId"]].public
            assert ("security" in operation) is not public, f"{method} {path}"
            for status, entry in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(entry["content"]) == ["application/problem+json"], (
                        f"{method} {path} {status}"
                    )
            if not public:
                assert {"401", "403", "422"} <= set(operation["responses"])
    assert seen == set(RULES)


def test_the_home_page_leads_to_the_docs_without_dashboards(panel):
    response = panel.client.get("/", follow_redirects=False)

    assert response.status_code == 307 and response.headers["location"] == "/docs"


def test_access_lines_name_the_route_template_not_the_path(panel, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="api.access")
    panel.get("/api/v1/returnees/CASE-NUMBER-TYPED-BY-MISTAKE", "analyst")

    lines = [r.getMessage() for r in caplog.records if r.name == "api.access"]
    assert lines and all("CASE-NUMBER" not in line for line in lines)
    assert any(line.startswith("GET /api/v1/returnees/{key} 422") for line in lines)


def test_healthz_is_503_when_the_store_does_not_answer(fresh, tmp_path):
    from dataclasses import replace

    from reintegration.store.engine import create_store_engine

    gone = create_store_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    broken = replace(fresh.services, engine=gone)
    app = create_app(broken, dashboard=False)
    with TestClient(app) as client:
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["detail"] == "the store does not answer; see the server's log."
