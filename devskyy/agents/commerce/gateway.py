"""The payment gateway seam and its offline twin, ``SandboxGateway``.

``PaymentGateway`` is what the financial agent charges through. A real gateway (Stripe,
Adyen…) takes a payment-method token; ``SandboxGateway`` is the honest offline default:
it takes only its published test tokens and card numbers (as Stripe's test mode
does), answers deterministically, and keeps its own record of charges in the devskyy
store, so that an idempotency key means the same thing across retries, replicas and
processes.

A payment method is a sandbox token (Stripe's test-mode names) or the test card number
behind it (spaces and dashes allowed). Token, card number, outcome:

- ``pm_card_visa``, 4242 4242 4242 4242: succeeds
- ``pm_card_mastercard``, 5555 5555 5555 4444: succeeds
- ``pm_card_chargeDeclined``, 4000 0000 0000 0002: declined, ``card_declined``
- ``pm_card_chargeDeclinedInsufficientFunds``, 4000 0000 0000 9995: declined,
  ``insufficient_funds``
- ``pm_card_chargeDeclinedExpiredCard``, 4000 0000 0000 0069: declined, ``expired_card``
- ``pm_card_timeout``, 4000 0000 0000 0408: no answer within the timeout, nothing charged
- ``pm_card_lostAnswer``, 4000 0000 0000 0507: the charge is made but its first answer
  times out; a retry with the same idempotency key gets that charge

Timeouts wait on the agent's clock (``Clock.sleep``), so tests with ``FakeClock`` see
the full timeout elapse without waiting. Idempotency follows Stripe's rules: a key
replays its first result (success or decline) and marks it ``replayed``; reusing a key
for a different amount, currency or card is refused with ``IdempotencyConflict``.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from devskyy.adapters import commerce_payments as money
from devskyy.adapters import commerce_store as store
from devskyy.adapters.clock import Clock
from devskyy.adapters.engine import Engine
from devskyy.core.commerce import CommerceError, card_brand, luhn_valid, normalize_card
from devskyy.errors import TemporaryError

DEFAULT_PAYMENT_METHOD = "pm_card_visa"


class GatewayTimeout(TemporaryError):
    """The gateway did not answer in time; the outcome is unknown until a retry with the
    same idempotency key tells it."""


class CardNotAccepted(CommerceError):
    """The card number is malformed, or not one the gateway accepts."""


class IdempotencyConflict(CommerceError):
    """An idempotency key was reused for a different charge."""


@dataclass(frozen=True)
class ChargeRequest:
    """One charge. ``payment_method`` (a token, or a sandbox test card number) never
    appears in ``repr``, errors or records; only a card's brand and last four digits do."""

    idempotency_key: str
    amount_cents: int
    currency: str
    payment_method: str = field(repr=False)
    description: str = ""


@dataclass(frozen=True)
class ChargeResult:
    """The gateway's answer: ``succeeded`` with a ``charge_id``, or ``declined`` with a code."""

    status: str
    charge_id: str | None
    amount_cents: int
    currency: str
    card_brand: str
    card_last4: str
    decline_code: str | None = None
    replayed: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


class PaymentGateway(Protocol):
    """Charges a payment method, at most once per idempotency key."""

    name: str

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge, or replay the answer already given for ``request.idempotency_key``."""
        ...


class Behaviour(StrEnum):
    """What the sandbox does with a test card."""

    SUCCEED = "succeed"
    DECLINE = "decline"
    TIMEOUT = "timeout"
    LOST_ANSWER = "lost_answer"


TEST_CARDS: dict[str, tuple[Behaviour, str | None]] = {
    "4242424242424242": (Behaviour.SUCCEED, None),
    "5555555555554444": (Behaviour.SUCCEED, None),
    "4000000000000002": (Behaviour.DECLINE, "card_declined"),
    "4000000000009995": (Behaviour.DECLINE, "insufficient_funds"),
    "4000000000000069": (Behaviour.DECLINE, "expired_card"),
    "4000000000000408": (Behaviour.TIMEOUT, None),
    "4000000000000507": (Behaviour.LOST_ANSWER, None),
}


TEST_TOKENS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_timeout": "4000000000000408",
    "pm_card_lostAnswer": "4000000000000507",
}


def _fingerprint(request: ChargeRequest, number: str) -> str:
    # What makes two requests "the same charge". Built from the brand and last four
    # digits, never the whole number: a hash of a card number is not safe to store
    # (the number space is small enough to search).
    text = f"{request.amount_cents}:{request.currency}:{card_brand(number)}:{number[-4:]}"
    return hashlib.sha256(text.encode()).hexdigest()


def _charge_id(idempotency_key: str) -> str:
    return "ch_sandbox_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


class SandboxGateway:
    """The offline gateway (see the module docstring for its test cards).

    ``charges()`` counts the charges it has recorded (one per idempotency key): what a
    test of "a retried payment never charges twice" looks at.
    """

    name = "sandbox"

    def __init__(self, engine: Engine, clock: Clock, timeout_seconds: float = 10.0) -> None:
        self.engine = engine
        self.clock = clock
        self.timeout_seconds = timeout_seconds

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        number = self._card_number(request.payment_method)
        behaviour = TEST_CARDS[number]
        if request.amount_cents <= 0:
            raise CardNotAccepted(f"cannot charge {request.amount_cents} cents")
        fingerprint = _fingerprint(request, number)
        earlier = await asyncio.to_thread(
            money.sandbox_charge, self.engine, request.idempotency_key
        )
        if earlier is not None:
            return self._replay(earlier, fingerprint, number)
        kind, code = behaviour
        if kind is Behaviour.TIMEOUT:
            await self._time_out()
        row: dict[str, Any] = {
            "idempotency_key": request.idempotency_key,
            "charge_id": _charge_id(request.idempotency_key),
            "fingerprint": fingerprint,
            "amount_cents": request.amount_cents,
            "currency": request.currency,
            "status": "declined" if kind is Behaviour.DECLINE else "succeeded",
            "decline_code": code,
            "card_last4": number[-4:],
        }
        stored, created = await asyncio.to_thread(
            money.put_sandbox_charge, self.engine, row, self.clock.now()
        )
        if not created:  # a concurrent call with the same key won the race
            return self._replay(stored, fingerprint, number)
        if kind is Behaviour.LOST_ANSWER:
            await self._time_out()
        return self._result(stored, number, replayed=False)

    @staticmethod
    def _card_number(payment_method: str) -> str:
        """The test card behind a token or number; ``CardNotAccepted`` for anything else."""
        if payment_method in TEST_TOKENS:
            return TEST_TOKENS[payment_method]
        if payment_method.startswith(("pm_", "tok_")):
            raise CardNotAccepted(
                f"unknown sandbox payment method {payment_method!r}; known: "
                + ", ".join(TEST_TOKENS)
            )
        number = normalize_card(payment_method)
        if not luhn_valid(number):
            raise CardNotAccepted("the card number is not valid (failed the Luhn check)")
        if number not in TEST_CARDS:
            raise CardNotAccepted(
                f"the sandbox gateway takes only its test cards; the card ending "
                f"{number[-4:]} is not one (see devskyy.agents.commerce.gateway)"
            )
        return number

    async def charges(self) -> int:
        """How many charges (successful or declined) the sandbox has recorded."""
        return await asyncio.to_thread(store.count, self.engine, store.sandbox_charges)

    async def _time_out(self) -> None:
        await self.clock.sleep(self.timeout_seconds)
        raise GatewayTimeout(f"the payment gateway did not answer within {self.timeout_seconds:g}s")

    def _replay(self, stored: dict[str, Any], fingerprint: str, number: str) -> ChargeResult:
        if stored["fingerprint"] != fingerprint:
            raise IdempotencyConflict(
                f"idempotency key {stored['idempotency_key']} was used for a different "
                "amount, currency or card"
            )
        return self._result(stored, number, replayed=True)

    @staticmethod
    def _result(stored: dict[str, Any], number: str, *, replayed: bool) -> ChargeResult:
        succeeded = stored["status"] == "succeeded"
        return ChargeResult(
            status=stored["status"],
            charge_id=stored["charge_id"] if succeeded else None,
            amount_cents=int(stored["amount_cents"]),
            currency=stored["currency"],
            card_brand=card_brand(number),
            card_last4=stored["card_last4"],
            decline_code=stored["decline_code"],
            replayed=replayed,
        )
