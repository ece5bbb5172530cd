"""The estimated cost of a bulk, from the staff-edited price table, for the spend caps."""

from collections import Counter
from collections.abc import Iterable

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from communication.models import Channel, CommunicationLog, Price
from communication.services.usage import SPEND_UNITS


def number_country(e164: str) -> str:
    """ISO country of an E.164 number: its calling code, read without a parse unless the code
    is shared (+1: US, CA, …; +7: RU, KZ), then from the number itself."""
    for length in (1, 2, 3):
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(e164[1 : 1 + length] or 0))
        if regions:
            if len(regions) == 1:
                return regions[0]
            try:
                return phonenumbers.region_code_for_number(phonenumbers.parse(e164)) or regions[0]
            except phonenumbers.NumberParseException:
                return regions[0]
    return Price.ANY_COUNTRY


def estimated_cost(logs: Iterable[CommunicationLog]) -> int:
    """Sum of each log's price at its provider for its destination (SPEND_UNITS). A destination
    with no price of its own takes the provider's "*" row; with neither, it costs nothing."""
    destinations = Counter(
        (
            log.provider,
            log.channel,
            number_country(log.recipient) if log.channel == Channel.SMS else Price.ANY_COUNTRY,
        )
        for log in logs
    )
    if not destinations:
        return 0
    prices = {
        (provider, channel, country): unit_price
        for provider, channel, country, unit_price in Price.objects.filter(
            provider__in={provider for provider, _channel, _country in destinations}
        ).values_list("provider", "channel", "country", "unit_price")
    }
    total = 0
    for (provider, channel, country), count in destinations.items():
        price = prices.get(
            (provider, channel, country), prices.get((provider, channel, Price.ANY_COUNTRY), 0)
        )
        total += round(price * SPEND_UNITS) * count
    return total
