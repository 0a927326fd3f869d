"""Rates as settings write them."""

import pytest

from api.throttling import parse_rate


@pytest.mark.parametrize(("rate", "parsed"), [("120/m", (120, 60)), ("5/s", (5, 1)), ("1000/hour", (1000, 3600))])
def test_rates_are_read_as_a_count_per_period(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["", "0/m", "-1/m", "ten/m", "10/w", "10"])
def test_a_bad_rate_says_how_to_write_one(rate):
    with pytest.raises(ValueError, match="e.g. 120/m"):
        parse_rate(rate)


def test_a_bad_rate_setting_is_a_startup_error(settings):
    from api.apps import check_api_rate

    assert check_api_rate() == []
    settings.API_RATE = "lots"
    (error,) = check_api_rate()
    assert error.id == "api.E001" and "REVSEARCH_API_RATE" in error.msg
