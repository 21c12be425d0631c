"""Labels of codes in the reader's language: the questionnaire's, pycountry's, the catalogues'."""

from __future__ import annotations

from dashboards.labels import (
    band_label,
    choices,
    country_label,
    dimension_labels,
    item_labels,
    role_label,
    value_labels,
)
from reintegration.i18n import use_language


def test_grouping_values_follow_the_language():
    with use_language("fr"):
        french = value_labels()
    with use_language("ar"):
        arabic = value_labels()

    assert (value_labels()["female"], french["female"], arabic["female"]) == (
        "Female",
        "Femme",
        "أنثى",
    )
    assert french["child"] == "Enfant (moins de 18 ans)"
    assert arabic["adult"] == "بالغ (18 سنة فأكثر)"


def test_choices_keep_their_codes_in_every_language():
    with use_language("ar"):
        arabic = choices("return_type")

    assert [code for code, _ in arabic] == [code for code, _ in choices("return_type")]
    assert dict(arabic)["forced"] == "قسرية"


def test_countries_are_named_by_pycountry_in_the_language_with_their_code():
    with use_language("fr"):
        french = country_label("SEN")
    with use_language("ar"):
        arabic = country_label("SEN")

    assert (country_label("SEN"), french) == ("Senegal (SEN)", "Sénégal (SEN)")
    assert arabic == "السّنغال (SEN)"
    assert country_label("XXX") == "XXX"


def test_items_dimensions_bands_and_roles_are_translated():
    with use_language("ar"):
        items, dimensions = item_labels(), dimension_labels()
        band, role = band_label("within 4 months"), role_label("enumerator")

    assert items["econ_satisfaction"] == "ما مدى رضاك عن وضعك الاقتصادي الحالي؟"
    assert dimensions["economic"] == "البعد الاقتصادي"
    assert (band, role) == ("خلال 4 أشهر", "باحث ميداني")
    assert band_label("within 4 months") == "within 4 months"
