"""The dashboards' language: the user's stored choice, else the language cookie, else the
browser's Accept-Language; the shell's switch changes it on any page (login included); the html
element carries lang and dir from the first byte."""

from __future__ import annotations

from reintegration.preferences import user_language
from reintegration.users import authenticate
from tests.dashboards.conftest import Client, components, response_text_of

ARABIC = {"Accept-Language": "ar-IQ,ar;q=0.9"}


def _html_element(response) -> str:
    text = response.get_data(as_text=True)
    start = text.index("<html")
    return text[start : text.index(">", start) + 1]


def _shell_texts(client: Client) -> str:
    return response_text_of(client.http.get("/dashboard/_dash-layout").get_json())


def test_the_login_page_speaks_the_browsers_language_right_to_left_for_arabic(own_dashboard):
    client = Client(own_dashboard)

    arabic = client.http.get("/dashboard/login", headers=ARABIC)
    english = client.http.get("/dashboard/login", headers={"Accept-Language": "de, en;q=0.5"})

    assert _html_element(arabic) == '<html lang="ar" dir="rtl">'
    assert arabic.headers["Content-Language"] == "ar"
    assert "<title>مراقبة إعادة الإدماج</title>" in arabic.get_data(as_text=True)
    assert _html_element(english) == '<html lang="en" dir="ltr">'


def test_the_switch_on_the_login_page_sets_the_cookie_and_comes_back(own_dashboard):
    client = Client(own_dashboard)

    answer = client.http.post(
        "/dashboard/login?next=%2Fdashboard%2Fworklist",
        data={"reintegration_language": "fr"},
        headers=ARABIC,
    )

    assert answer.status_code == 303
    assert answer.headers["Location"] == "/dashboard/login?next=%2Fdashboard%2Fworklist"
    page = client.http.get("/dashboard/login", headers=ARABIC)
    assert _html_element(page) == '<html lang="fr" dir="ltr">'


def test_a_language_chosen_before_login_becomes_the_users_choice(own_dashboard):
    client = Client(own_dashboard)
    client.http.post("/dashboard/login", data={"reintegration_language": "ar"})

    client.login("manager")

    user = authenticate(own_dashboard.services.engine, own_dashboard.tokens["manager"])
    assert user_language(own_dashboard.services.engine, user) == "ar"
    assert "نظرة عامة" in _shell_texts(client)


def test_a_users_choice_follows_them_to_another_browser(own_dashboard):
    first = Client(own_dashboard)
    first.login("analyst")

    answer = first.http.post("/dashboard/overview", data={"reintegration_language": "fr"})

    assert answer.status_code == 303 and answer.headers["Location"] == "/dashboard/overview"
    second = Client(own_dashboard)
    second.login("analyst")
    page = second.http.get("/dashboard/overview", headers={"Accept-Language": "en"})
    assert _html_element(page) == '<html lang="fr" dir="ltr">'
    texts = _shell_texts(second)
    assert "Vue d’ensemble" in texts and "Se déconnecter" in texts


def test_the_stored_choice_wins_over_an_older_cookie(own_dashboard):
    client = Client(own_dashboard)
    client.login("admin")
    client.http.post("/dashboard/overview", data={"reintegration_language": "ar"})
    other = Client(own_dashboard)
    other.http.post("/dashboard/login", data={"reintegration_language": "fr"})

    other.login("admin")

    assert _html_element(other.http.get("/dashboard/overview")) == '<html lang="ar" dir="rtl">'


def test_an_unknown_language_falls_back_to_english(own_dashboard):
    client = Client(own_dashboard)
    client.login("manager")

    client.http.post("/dashboard/overview", data={"reintegration_language": "de"})

    assert _html_element(client.http.get("/dashboard/overview")) == '<html lang="en" dir="ltr">'


def test_the_switch_marks_the_current_language_and_offers_the_others(own_dashboard):
    client = Client(own_dashboard)
    client.login("enumerator")
    client.http.post("/dashboard/overview", data={"reintegration_language": "ar"})

    layout = client.http.get("/dashboard/_dash-layout").get_json()

    buttons = {c["props"]["id"]: c["props"] for c in components(layout)}
    assert buttons["shell-language-ar"]["disabled"] is True
    assert buttons["shell-language-fr"]["disabled"] is False
    assert [buttons[f"shell-language-{c}"]["children"] for c in ("en", "fr", "ar")] == [
        "English",
        "Français",
        "العربية",
    ]


def test_a_refused_page_says_why_in_the_readers_language(own_dashboard):
    client = Client(own_dashboard)
    client.login("manager")
    client.http.post("/dashboard/overview", data={"reintegration_language": "fr"})

    text = response_text_of(client.page("/worklist").get_json())

    assert "Accès non autorisé" in text
    assert (
        "La page Liste de suivi n’est pas ouverte à votre rôle (responsable) : elle est "
        "réservée aux rôles administrateur ou analyste."
    ) in text


def test_a_request_leaves_no_language_behind_in_its_thread(own_dashboard):
    from reintegration.i18n import current

    client = Client(own_dashboard)
    client.http.get("/dashboard/login", headers=ARABIC)

    assert current() == "en"
