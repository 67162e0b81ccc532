"""The ledger: payments with their paysplits, and adjustments.

Drafts (``PaymentDraft``, ``AdjustmentDraft``) collect who pays or is adjusted, when and how
much: payments at checkout and by statement, prepayments, write-offs, discounts and NSF fees.
``build_payments`` and ``build_adjustments`` number and render them (PayAmt always equals the sum
of its SplitAmts; checks and cash get a deposit batch) and ``office_ledger`` generates one office's
ledger over the history window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from simulators import names
from simulators.generate.appointments import COMPLETE, NO_TIME, TREATMENT, Appts
from simulators.generate.arrays import (
    DAY,
    HOUR,
    MINUTE,
    business_time,
    cents,
    choose,
    days_to_dates,
    money,
    pick,
    seconds_of,
    ts,
    uniform_int,
    weekday_shift,
)
from simulators.generate.patients import PATIENT, Records
from simulators.generate.reference import OfficeCtx
from simulators.generate.schemas import table_frame

PAY_TYPES = ("Check", "Cash", "Credit Card", "Care Credit", "Patient Portal")
VISIT_PAY_WEIGHTS = (0.15, 0.17, 0.6, 0.08, 0.0)
LATER_PAY_WEIGHTS = (0.4, 0.0, 0.1, 0.0, 0.5)
AT_VISIT, LATER, PREPAY = range(3)
PAY_NOTES = ("", "", "", "", "Paid at checkout", "Copay", "Statement payment", "Thank you!")
ADJ_TYPES = ("Misc Pos Adjustment", "Misc Neg Adjustment", "Write Off", "NSF fee")
ADJ_SIGN = np.array([1, -1, -1, 1])  # matches each type's ItemValue
ADJ_NOTES = {
    "Misc Pos Adjustment": ("Balance correction", "Late fee"),
    "Misc Neg Adjustment": ("Courtesy discount", "Senior discount", "Family discount"),
    "Write Off": ("Insurance write-off", "PPO write-off", "Small balance write-off"),
    "NSF fee": ("Returned check fee",),
}


@dataclass
class Family:
    """PatNums grouped by guarantor, for picking other members of a patient's family."""

    guarantor: np.ndarray
    order: np.ndarray
    start: np.ndarray
    size: np.ndarray

    @staticmethod
    def of(guarantor: np.ndarray) -> Family:
        order = np.argsort(guarantor, kind="stable")
        size = np.bincount(guarantor, minlength=len(guarantor) + 1)
        return Family(guarantor, order, np.cumsum(size) - size, size)

    def member(self, rng: np.random.Generator, pat: np.ndarray) -> np.ndarray:
        g = self.guarantor[pat - 1]
        pos = self.start[g] + (rng.random(len(pat)) * self.size[g]).astype(np.int64)
        return self.order[pos] + 1


@dataclass
class Ledger:
    payments: pl.DataFrame
    paysplits: pl.DataFrame
    adjustments: pl.DataFrame
    split_pat: np.ndarray
    split_cents: np.ndarray
    split_stamp: np.ndarray
    adj_pat: np.ndarray
    adj_cents: np.ndarray
    adj_stamp: np.ndarray


@dataclass
class PaymentDraft:
    """Payments to build: who, for which provider/clinic, when, how much and how."""

    pat: np.ndarray
    prov: np.ndarray
    provhyg: np.ndarray
    clinic: np.ndarray
    entry: np.ndarray  # local epoch seconds the payment was entered
    cents: np.ndarray
    channel: np.ndarray

    @staticmethod
    def concat(parts: list[PaymentDraft]) -> PaymentDraft:
        return PaymentDraft(
            **{k: np.concatenate([vars(p)[k] for p in parts]) for k in vars(parts[0])}
        )


def visit_payments(rng, a: Appts, idx: np.ndarray, charge: np.ndarray, now: int) -> PaymentDraft:
    """Most patients pay part of the bill at checkout, some pay the rest by statement later."""
    pay = idx[(charge[idx] > 0) & (rng.random(len(idx)) < 0.7)]
    checkout = np.where(
        a.dismissed[pay] != NO_TIME, a.dismissed[pay], a.start[pay] + a.duration[pay]
    )
    at_visit = cents(money(charge[pay]) * rng.uniform(0.4, 1.0, len(pay)))
    later = idx[(charge[idx] > 0) & (rng.random(len(idx)) < 0.25)]
    later_when = business_time(
        rng, weekday_shift(a.start[later] // DAY + rng.integers(14, 46, len(later)))
    )
    keep = later_when <= now
    later = later[keep]
    return PaymentDraft(
        pat=np.r_[a.pat[pay], a.pat[later]],
        prov=np.r_[a.prov[pay], a.prov[later]],
        provhyg=np.r_[a.provhyg[pay], a.provhyg[later]],
        clinic=np.r_[a.clinic[pay], a.clinic[later]],
        entry=np.r_[
            np.minimum(checkout + rng.integers(MINUTE, 15 * MINUTE, len(pay)), now),
            later_when[keep],
        ],
        cents=np.maximum(
            np.r_[at_visit, cents(money(charge[later]) * rng.uniform(0.3, 0.9, len(later)))], 500
        ),
        channel=np.r_[np.full(len(pay), AT_VISIT), np.full(len(later), LATER)],
    )


def prepayments(
    rng, ctx: OfficeCtx, rec: Records, pat: np.ndarray, entry: np.ndarray
) -> PaymentDraft:
    """Money paid ahead of treatment: one unearned split with no provider."""
    n = len(pat)
    return PaymentDraft(
        pat=pat,
        prov=np.zeros(n, np.int64),
        provhyg=np.zeros(n, np.int64),
        clinic=rec.clinic[pat - 1],
        entry=entry,
        cents=cents(rng.uniform(100, 1000, n)),
        channel=np.full(n, PREPAY),
    )


def deposit_time(pay_day: np.ndarray) -> np.ndarray:
    """Checks and cash go to the bank in a 16:30 batch on the next business day."""
    return weekday_shift(pay_day + 1) * DAY + 16 * HOUR + 30 * MINUTE


def build_payments(
    rng: np.random.Generator,
    ctx: OfficeCtx,
    family: Family,
    d: PaymentDraft,
    *,
    first_paynum: int,
    first_splitnum: int,
    deposits_until: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Payment rows and their paysplits (PayAmt == sum of SplitAmt, to the cent).

    Checks and cash whose bank deposit ran by ``deposits_until`` carry its DepositNum and stamp.
    """
    n = len(d.pat)
    order = np.argsort(d.entry, kind="stable")
    d = PaymentDraft(**{k: v[order] for k, v in vars(d).items()})
    paynum = np.arange(first_paynum, first_paynum + n, dtype=np.int64)
    payer = np.where(
        (d.channel != PREPAY) & (rng.random(n) < 0.6), family.guarantor[d.pat - 1], d.pat
    )
    weights = np.where(d.channel[:, None] == LATER, LATER_PAY_WEIGHTS, VISIT_PAY_WEIGHTS)
    cum = np.cumsum(weights, axis=1)
    paytype = (rng.random(n)[:, None] * cum[:, -1:] > cum).sum(axis=1)
    day = d.entry // DAY
    office_kind = paytype < 2  # checks and cash get deposited
    deposit_at = deposit_time(day)
    deposited = office_kind & (deposit_at <= deposits_until)
    deposit_num = np.where(deposited, 1 + dense_rank(deposit_at, deposited), 0)
    portal = paytype == 4
    terminal = (paytype == 2) & (rng.random(n) < 0.3)
    source = np.where(portal, np.where(rng.random(n) < 0.6, 2, 3), np.where(terminal, 1, 0))
    status = np.where(portal, np.where(d.entry > ctx.now - DAY, 2, 1), 0)
    splits = _splits(rng, family, d, paynum)
    payments = table_frame(
        "payments",
        n,
        office=ctx.key,
        PayNum=paynum,
        PayType=ctx.defnums(10, PAY_TYPES, paytype),
        PayDate=days_to_dates(day),
        PayAmt=money(d.cents),
        CheckNum=_check_numbers(rng, paytype == 0),
        BankBranch=pl.select(
            pl.when(pl.lit(paytype == 0))
            .then(pl.lit(pick(names.BANKS, rng.integers(0, len(names.BANKS), n))))
            .otherwise(pl.lit(""))
        ).to_series(),
        PayNote=pick(PAY_NOTES, rng.integers(0, len(PAY_NOTES), n)),
        PatNum=payer,
        ClinicNum=d.clinic,
        DateEntry=days_to_dates(day),
        DepositNum=deposit_num,
        IsRecurringCC=(paytype == 2) & (rng.random(n) < 0.03),
        SecDateTEdit=ts(np.where(deposited, deposit_at, d.entry)),
        PaymentSource=pick(
            ("None", "XServer", "XWeb", "PayConnect", "PaySimple", "CareCredit", "API"), source
        ),
        ProcessStatus=pick(("OfficeProcessed", "OnlineProcessed", "OnlinePending"), status),
    )
    return payments, table_frame(
        "paysplits",
        len(splits["pat"]),
        office=ctx.key,
        SplitNum=np.arange(first_splitnum, first_splitnum + len(splits["pat"])),
        **_split_columns(ctx, splits),
    )


def dense_rank(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    ranks = np.zeros(len(values), dtype=np.int64)
    uniq = np.unique(values[mask])
    ranks[mask] = np.searchsorted(uniq, values[mask])
    return ranks


def _check_numbers(rng, is_check: np.ndarray) -> pl.Series:
    nums = pl.Series(rng.integers(1001, 9999, len(is_check))).cast(pl.String)
    return pl.select(pl.when(pl.lit(is_check)).then(nums).otherwise(pl.lit(""))).to_series()


def _splits(rng, family: Family, d: PaymentDraft, paynum: np.ndarray) -> dict:
    """1-3 splits per payment: extra splits go to family members or the hygienist."""
    n = len(paynum)
    k = np.where(d.channel == PREPAY, 1, choose(rng, n, (0.8, 0.15, 0.05)) + 1)
    k = np.minimum(k, np.maximum(d.cents // 100, 1))
    owner = np.repeat(np.arange(n), k)
    nth = np.arange(len(owner)) - np.repeat(np.cumsum(k) - k, k)
    share = rng.uniform(0.2, 1.0, len(owner))
    share_sum = np.bincount(owner, weights=share, minlength=n)
    part = np.floor(d.cents[owner] * share / share_sum[owner]).astype(np.int64)
    last = np.ones(len(owner), dtype=bool)
    last[:-1] = owner[1:] != owner[:-1]
    part[last] += d.cents - np.bincount(owner, weights=part, minlength=n).astype(np.int64)
    extra = nth > 0
    member = family.member(rng, d.pat[owner])
    to_hyg = extra & (member == d.pat[owner]) & (d.provhyg[owner] > 0)
    return {
        "pat": np.where(extra, member, d.pat[owner]),
        "cents": part,
        "prov": np.where(to_hyg, d.provhyg[owner], d.prov[owner]),
        "paynum": paynum[owner],
        "day": d.entry[owner] // DAY,
        "entry": d.entry[owner],
        "clinic": d.clinic[owner],
        "prepay": d.channel[owner] == PREPAY,
    }


def _split_columns(ctx: OfficeCtx, s: dict) -> dict:
    return {
        "SplitAmt": money(s["cents"]),
        "PatNum": s["pat"],
        "PayNum": s["paynum"],
        "ProvNum": s["prov"],
        "DatePay": days_to_dates(s["day"]),
        "DateEntry": days_to_dates(s["day"]),
        "UnearnedType": np.where(s["prepay"], ctx.defnum(29, "Prepayment"), 0),
        "ClinicNum": s["clinic"],
        "SecDateTEdit": ts(s["entry"]),
    }


@dataclass
class AdjustmentDraft:
    pat: np.ndarray
    adjtype: np.ndarray  # index into ADJ_TYPES
    when: np.ndarray  # local epoch seconds entered
    cents: np.ndarray  # positive; the sign comes from the type
    prov: np.ndarray
    clinic: np.ndarray
    proc_day: np.ndarray  # -1 = no procedure date

    @staticmethod
    def concat(parts: list[AdjustmentDraft]) -> AdjustmentDraft:
        return AdjustmentDraft(
            **{k: np.concatenate([vars(p)[k] for p in parts]) for k in vars(parts[0])}
        )


def visit_adjustments(rng, a: Appts, idx: np.ndarray, now: int) -> AdjustmentDraft:
    """Write-offs on treatment, courtesy discounts and the odd positive correction."""
    n = len(idx)
    r = rng.random(n)
    kind = np.where(
        a.kind[idx] == TREATMENT,
        np.where(r < 0.1, 2, np.where(r < 0.13, 1, -1)),
        np.where(r < 0.03, 1, np.where(r < 0.04, 0, -1)),
    )
    keep = kind >= 0
    idx, kind = idx[keep], kind[keep]
    day = a.start[idx] // DAY + np.where(kind == 2, rng.integers(0, 31, len(idx)), 0)
    when = np.minimum(business_time(rng, weekday_shift(day)), now)
    amount = np.select(
        [kind == 2, kind == 1],
        [rng.uniform(5, 200, len(idx)), rng.uniform(10, 100, len(idx))],
        rng.uniform(5, 50, len(idx)),
    )
    when = np.maximum(when, a.stamp[idx])
    return AdjustmentDraft(
        pat=a.pat[idx],
        adjtype=kind,
        when=np.minimum(when, now),
        cents=cents(amount),
        prov=a.prov[idx],
        clinic=a.clinic[idx],
        proc_day=np.where(kind == 2, a.start[idx] // DAY, -1),
    )


def nsf_fees(rng, rec: Records, pat: np.ndarray, pay_day: np.ndarray, now: int) -> AdjustmentDraft:
    """A bounced check costs a flat fee a week or so later."""
    when = business_time(rng, weekday_shift(pay_day + rng.integers(3, 11, len(pat))))
    keep = when <= now
    n = keep.sum()
    return AdjustmentDraft(
        pat=pat[keep],
        adjtype=np.full(n, 3),
        when=when[keep],
        cents=np.where(rng.random(n) < 0.5, 2500, 3500),
        prov=rec.priprov[pat[keep] - 1],
        clinic=rec.clinic[pat[keep] - 1],
        proc_day=np.full(n, -1),
    )


def build_adjustments(rng, ctx: OfficeCtx, d: AdjustmentDraft, first_adjnum: int) -> pl.DataFrame:
    """Adjustment rows numbered in entry order (so rows come out in AdjNum order)."""
    d = AdjustmentDraft(**{k: v[np.argsort(d.when, kind="stable")] for k, v in vars(d).items()})
    n = len(d.pat)
    notes = [ADJ_NOTES[t] for t in ADJ_TYPES]
    flat = tuple(s for pool in notes for s in pool)
    sizes = np.array([len(p) for p in notes])
    note = (np.cumsum(sizes) - sizes)[d.adjtype] + (rng.random(n) * sizes[d.adjtype]).astype(int)
    day = d.when // DAY
    return table_frame(
        "adjustments",
        n,
        office=ctx.key,
        AdjNum=np.arange(first_adjnum, first_adjnum + n, dtype=np.int64),
        AdjDate=days_to_dates(day),
        AdjAmt=money(signed_adjustment_cents(d)),
        PatNum=d.pat,
        AdjType=ctx.defnums(1, ADJ_TYPES, d.adjtype),
        ProvNum=d.prov,
        AdjNote=pick(flat, note),
        ProcDate=days_to_dates(np.maximum(d.proc_day, 0), d.proc_day < 0),
        DateEntry=days_to_dates(day),
        ClinicNum=d.clinic,
        SecUserNumEntry=rng.integers(1, 7, n),
        SecDateTEdit=ts(d.when),
    )


def signed_adjustment_cents(d: AdjustmentDraft) -> np.ndarray:
    return d.cents * ADJ_SIGN[d.adjtype]


def office_ledger(rng, ctx: OfficeCtx, rec: Records, a: Appts, charge, window_start) -> Ledger:
    visits = np.flatnonzero((a.status == COMPLETE) & (a.start // DAY >= window_start))
    family = Family.of(rec.guarantor)
    pre = np.flatnonzero((rec.status == PATIENT) & (rng.random(len(rec.patnum)) < 0.02))
    pre_when = business_time(
        rng,
        weekday_shift(
            uniform_int(rng, np.maximum(window_start, rec.created[pre] // DAY + 1), ctx.today - 1)
        ),
    )
    pre_when = np.minimum(pre_when, ctx.now - MINUTE)
    draft = PaymentDraft.concat(
        [
            visit_payments(rng, a, visits, charge, ctx.now),
            prepayments(rng, ctx, rec, rec.patnum[pre], pre_when),
        ]
    )
    payments, paysplits = build_payments(
        rng, ctx, family, draft, first_paynum=1, first_splitnum=1, deposits_until=ctx.now
    )
    checks = payments.filter(pl.col("PayType") == ctx.defnum(10, "Check"))
    bounced = rng.random(len(checks)) < 0.03
    adj = AdjustmentDraft.concat(
        [
            visit_adjustments(rng, a, visits, ctx.now),
            nsf_fees(
                rng,
                rec,
                checks["PatNum"].to_numpy()[bounced],
                checks["PayDate"].cast(pl.Int64).to_numpy()[bounced],
                ctx.now,
            ),
        ]
    )
    adjustments = build_adjustments(rng, ctx, adj, 1)
    return Ledger(
        payments=payments,
        paysplits=paysplits,
        adjustments=adjustments,
        split_pat=paysplits["PatNum"].to_numpy(),
        split_cents=cents(paysplits["SplitAmt"].to_numpy()),
        split_stamp=seconds_of(paysplits["SecDateTEdit"]),
        adj_pat=adj.pat,
        adj_cents=signed_adjustment_cents(adj),
        adj_stamp=adj.when,
    )
