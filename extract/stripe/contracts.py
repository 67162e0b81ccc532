"""Pydantic contracts for Stripe API objects.

A contract checks what a record must have to be usable: its id (with the object's prefix),
amounts as integers in the currency's minor unit, Unix-second timestamps, and the fields that
link records (a refund's charge, a payout's balance transaction). Status and category texts are
business values: an unknown one still lands and dbt's accepted_values tests flag it. Extra
fields are allowed (and kept, because landing stores the raw record).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)


def _prefixed(prefix: str):
    def check(value: str) -> str:
        if not value.startswith(prefix):
            raise ValueError(f"expected an id starting with {prefix!r}")
        return value

    return AfterValidator(check)


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isalpha() or not value.islower():
        raise ValueError("expected a lowercase three-letter ISO currency code")
    return value


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError("expected Unix seconds (a positive integer)")
    return value


Minor = StrictInt  # an amount in the currency's minor unit (cents), signed
Epoch = Annotated[StrictInt, AfterValidator(_positive)]
Currency = Annotated[StrictStr, AfterValidator(_currency)]


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow")

    created: Epoch


class Charge(_Object):
    id: Annotated[StrictStr, _prefixed("ch_")]
    amount: Minor
    amount_refunded: Minor
    currency: Currency
    status: StrictStr
    paid: StrictBool
    refunded: StrictBool
    disputed: StrictBool
    balance_transaction: Annotated[StrictStr, _prefixed("txn_")] | None = None
    metadata: dict[str, StrictStr] = {}


class Refund(_Object):
    id: Annotated[StrictStr, _prefixed("re_")]
    amount: Minor
    currency: Currency
    charge: Annotated[StrictStr, _prefixed("ch_")] | None
    status: StrictStr
    balance_transaction: Annotated[StrictStr, _prefixed("txn_")] | None = None


class Dispute(_Object):
    id: Annotated[StrictStr, _prefixed("dp_")]
    amount: Minor
    currency: Currency
    charge: Annotated[StrictStr, _prefixed("ch_")]
    status: StrictStr
    reason: StrictStr


class BalanceTransaction(_Object):
    id: Annotated[StrictStr, _prefixed("txn_")]
    amount: Minor
    fee: Minor
    net: Minor
    currency: Currency
    available_on: Epoch
    type: StrictStr
    reporting_category: StrictStr
    source: StrictStr | None
    status: StrictStr

    @model_validator(mode="after")
    def _net(self) -> BalanceTransaction:
        # Stripe's own invariant; a broken one would unbalance every payout it is in.
        if self.amount - self.fee != self.net:
            raise ValueError("net: expected amount - fee")
        return self


class Payout(_Object):
    id: Annotated[StrictStr, _prefixed("po_")]
    amount: Minor
    currency: Currency
    arrival_date: Epoch
    automatic: StrictBool
    status: StrictStr
    balance_transaction: Annotated[StrictStr, _prefixed("txn_")] | None = None
