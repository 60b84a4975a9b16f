"""The sandbox payment gateway: test cards, idempotency keys, timeouts on the fake clock."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine

from devskyy.adapters import commerce_payments as money
from devskyy.adapters.clock import FakeClock
from devskyy.agents.commerce.gateway import (
    TEST_CARDS,
    TEST_TOKENS,
    CardNotAccepted,
    ChargeRequest,
    GatewayTimeout,
    IdempotencyConflict,
    PaymentGateway,
    SandboxGateway,
)
from devskyy.errors import PermanentError, TemporaryError


@pytest.fixture
def gateway(engine: Engine, clock: FakeClock) -> SandboxGateway:
    return SandboxGateway(engine, clock, timeout_seconds=10.0)


def request(method: str, key: str = "k1", amount: int = 1400) -> ChargeRequest:
    return ChargeRequest(key, amount, "USD", method, "order o1")


def charge(gateway: SandboxGateway, method: str, key: str = "k1", amount: int = 1400):  # type: ignore[no-untyped-def]
    return asyncio.run(gateway.charge(request(method, key, amount)))


def test_the_sandbox_is_a_payment_gateway(gateway: SandboxGateway) -> None:
    as_protocol: PaymentGateway = gateway
    assert as_protocol.name == "sandbox"


@pytest.mark.parametrize("method", ["pm_card_visa", "4242424242424242", "4242 4242 4242 4242"])
def test_success_card(gateway: SandboxGateway, clock: FakeClock, method: str) -> None:
    result = charge(gateway, method)
    assert result.succeeded
    assert result.status == "succeeded"
    assert result.charge_id is not None
    assert result.charge_id.startswith("ch_sandbox_")
    assert (result.amount_cents, result.currency) == (1400, "USD")
    assert (result.card_brand, result.card_last4) == ("visa", "4242")
    assert result.replayed is False
    assert clock.sleeps == []


def test_mastercard_succeeds(gateway: SandboxGateway) -> None:
    result = charge(gateway, "pm_card_mastercard")
    assert (result.status, result.card_brand, result.card_last4) == (
        "succeeded",
        "mastercard",
        "4444",
    )


@pytest.mark.parametrize(
    ("method", "code", "last4"),
    [
        ("pm_card_chargeDeclined", "card_declined", "0002"),
        ("4000000000000002", "card_declined", "0002"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "9995"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "0069"),
    ],
)
def test_decline_cards(gateway: SandboxGateway, method: str, code: str, last4: str) -> None:
    result = charge(gateway, method)
    assert (result.status, result.decline_code, result.card_last4) == ("declined", code, last4)
    assert result.charge_id is None
    assert not result.succeeded
    # Like Stripe, the key keeps its first answer: the same decline, replayed.
    again = charge(gateway, method)
    assert (again.status, again.decline_code, again.replayed) == ("declined", code, True)


def test_a_retry_with_the_same_key_never_charges_twice(gateway: SandboxGateway) -> None:
    first = charge(gateway, "pm_card_visa")
    second = charge(gateway, "pm_card_visa")
    assert second.charge_id == first.charge_id
    assert (first.replayed, second.replayed) == (False, True)
    assert asyncio.run(gateway.charges()) == 1
    third = charge(gateway, "pm_card_visa", key="k2")
    assert third.charge_id != first.charge_id
    assert asyncio.run(gateway.charges()) == 2


def test_concurrent_charges_with_one_key_charge_once(gateway: SandboxGateway) -> None:
    async def many() -> list[str | None]:
        results = await asyncio.gather(
            *(gateway.charge(request("pm_card_visa")) for _ in range(10))
        )
        return [r.charge_id for r in results]

    ids = asyncio.run(many())
    assert len(set(ids)) == 1
    assert asyncio.run(gateway.charges()) == 1


def test_reusing_a_key_for_another_charge_is_refused(gateway: SandboxGateway) -> None:
    charge(gateway, "pm_card_visa", amount=1400)
    with pytest.raises(IdempotencyConflict) as caught:
        charge(gateway, "pm_card_visa", amount=9900)
    assert str(caught.value) == (
        "idempotency key k1 was used for a different amount, currency or card"
    )
    with pytest.raises(IdempotencyConflict):
        charge(gateway, "pm_card_mastercard", amount=1400)
    assert isinstance(caught.value, PermanentError)


def test_timeout_card_waits_the_timeout_on_the_clock_and_charges_nothing(
    gateway: SandboxGateway, clock: FakeClock
) -> None:
    started = clock.now()
    with pytest.raises(GatewayTimeout) as caught:
        charge(gateway, "pm_card_timeout")
    assert str(caught.value) == "the payment gateway did not answer within 10s"
    assert isinstance(caught.value, TemporaryError)
    assert clock.sleeps == [10.0]
    assert clock.now() == started + 10.0
    assert asyncio.run(gateway.charges()) == 0
    with pytest.raises(GatewayTimeout):
        charge(gateway, "4000 0000 0000 0408")
    assert clock.sleeps == [10.0, 10.0]


def test_lost_answer_card_charges_then_a_retry_gets_that_charge(
    gateway: SandboxGateway, clock: FakeClock
) -> None:
    with pytest.raises(GatewayTimeout):
        charge(gateway, "pm_card_lostAnswer")
    assert clock.sleeps == [10.0]
    assert asyncio.run(gateway.charges()) == 1  # the money moved although no answer came
    retry = charge(gateway, "pm_card_lostAnswer")
    assert (retry.status, retry.replayed) == ("succeeded", True)
    assert retry.charge_id == money.sandbox_charge(gateway.engine, "k1")["charge_id"]  # type: ignore[index]
    assert asyncio.run(gateway.charges()) == 1
    assert clock.sleeps == [10.0]


def test_real_looking_card_numbers_are_refused_without_echoing_them(
    gateway: SandboxGateway,
) -> None:
    real = "4111111111111111"  # Luhn-valid, not a sandbox card
    with pytest.raises(CardNotAccepted) as caught:
        charge(gateway, real)
    assert str(caught.value) == (
        "the sandbox gateway takes only its test cards; the card ending 1111 is not one "
        "(see devskyy.agents.commerce.gateway)"
    )
    assert real not in str(caught.value)
    with pytest.raises(CardNotAccepted, match=r"failed the Luhn check"):
        charge(gateway, "4242424242424241")
    with pytest.raises(CardNotAccepted, match=r"unknown sandbox payment method 'pm_card_amex'"):
        charge(gateway, "pm_card_amex")
    with pytest.raises(CardNotAccepted, match="cannot charge 0 cents"):
        charge(gateway, "pm_card_visa", amount=0)
    assert asyncio.run(gateway.charges()) == 0


def test_the_payment_method_never_shows_in_repr() -> None:
    text = repr(request("4242424242424242"))
    assert "4242424242424242" not in text
    assert "idempotency_key='k1'" in text


def test_every_token_names_a_test_card() -> None:
    assert set(TEST_TOKENS.values()) == set(TEST_CARDS)


def test_the_sandbox_record_survives_a_new_gateway_instance(
    engine: Engine, clock: FakeClock
) -> None:
    # Another replica, or the next process: the key still means the same charge.
    first = charge(SandboxGateway(engine, clock), "pm_card_visa")
    second = charge(SandboxGateway(engine, clock), "pm_card_visa")
    assert second.charge_id == first.charge_id
    assert second.replayed is True
