"""The API's messages in the language of Accept-Language (French, Arabic; English otherwise);
keys, codes and the problem's title stay canonical."""

from __future__ import annotations

FRENCH = {"Accept-Language": "fr-SN,fr;q=0.9,en;q=0.5"}
ARABIC = {"Accept-Language": "ar"}


def test_an_unknown_path_is_a_problem_in_french(panel):
    response = panel.client.get("/api/v2/nothing", headers=FRENCH)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["content-language"] == "fr"
    assert "Accept-Language" in response.headers["vary"]
    body = response.json()
    assert body["title"] == "Not Found"
    assert body["detail"] == (
        "il n’y a rien à /api/v2/nothing ; l’API se trouve sous /api/v1 (voir /docs)."
    )


def test_an_unknown_path_is_a_problem_in_arabic(panel):
    response = panel.client.get("/api/v2/nothing", headers=ARABIC)

    assert response.status_code == 404
    assert response.headers["content-language"] == "ar"
    assert response.json()["detail"] == (
        "لا يوجد شيء في /api/v2/nothing؛ واجهة البرمجة موجودة تحت /api/v1 (راجع /docs)."
    )


def test_an_invalid_parameter_is_named_in_french_with_its_canonical_name(panel):
    response = panel.get("/api/v1/batches?limit=0", "admin", headers=FRENCH)

    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "paramètre de requête limit : doit valoir au moins 1."
    assert body["errors"] == [
        {"location": "paramètre de requête limit", "message": "doit valoir au moins 1"}
    ]


def test_an_invalid_parameter_is_named_in_arabic(panel):
    response = panel.get("/api/v1/batches?limit=abc", "admin", headers=ARABIC)

    assert response.status_code == 422
    assert response.json()["detail"] == "معامل الاستعلام limit: يجب أن يكون عددًا صحيحًا."


def test_a_language_the_api_does_not_speak_gets_english(panel):
    response = panel.client.put("/api/v1/batches", headers={"Accept-Language": "de-DE"})

    assert response.status_code == 405
    assert response.headers["content-language"] == "en"
    assert response.json()["detail"] == "PUT is not allowed on /api/v1/batches."


def test_a_wrong_method_in_french(panel):
    response = panel.client.put("/api/v1/batches", headers=FRENCH)

    assert response.json()["detail"] == "PUT n’est pas autorisé sur /api/v1/batches."
