"""The seeded world: determinism, Open Dental shape, realism and evolution over time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest

from simulators.generate import generate_world
from simulators.world import World, WorldSpec

API_COLUMNS = {
    "definitions": "DefNum Category ItemName ItemValue ItemOrder IsHidden",
    "clinics": "ClinicNum Description Abbr Address Address2 City State Zip Phone IsHidden",
    "providers": "ProvNum Abbr LName FName Suffix Specialty IsSecondary IsHidden NationalProvID "
    "DateTStamp IsNotPerson ProvStatus",
    "operatories": "OperatoryNum OpName Abbrev IsHidden ProvDentist ProvHygienist IsHygiene "
    "ClinicNum",
    "patients": "PatNum LName FName MiddleI Preferred PatStatus Gender Position Birthdate Address "
    "Address2 City State Zip HmPhone WkPhone WirelessPhone Guarantor Email EstBalance BalTotal "
    "PriProv SecProv BillingType ChartNumber DateFirstVisit ClinicNum PreferConfirmMethod "
    "PreferContactMethod PreferRecallMethod Language TxtMsgOk DateTStamp SuperFamily SecDateEntry",
    "appointments": "AptNum PatNum AptStatus Pattern Confirmed Op Note ProvNum ProvHyg AptDateTime "
    "NextAptNum UnschedStatus IsNewPatient ProcDescript ClinicNum IsHygiene DateTStamp "
    "DateTimeArrived DateTimeSeated DateTimeDismissed AppointmentTypeNum SecDateTEntry Priority",
    "payments": "PayNum PayType PayDate PayAmt CheckNum BankBranch PayNote PatNum ClinicNum "
    "DateEntry DepositNum IsRecurringCC SecDateTEdit PaymentSource ProcessStatus",
    "paysplits": "SplitNum SplitAmt PatNum PayNum ProvNum PayPlanNum DatePay ProcNum DateEntry "
    "UnearnedType ClinicNum SecDateTEdit AdjNum",
    "adjustments": "AdjNum AdjDate AdjAmt PatNum AdjType ProvNum AdjNote ProcDate ProcNum "
    "DateEntry ClinicNum SecUserNumEntry SecDateTEdit",
    "commlogs": "CommlogNum PatNum CommDateTime CommType Note Mode_ SentOrReceived UserNum "
    "DateTStamp CommSource DateTEntry",
}
PRIMARY_KEYS = {name: cols.split()[0] for name, cols in API_COLUMNS.items()}
STAMPS = {
    "patients": "DateTStamp",
    "appointments": "DateTStamp",
    "commlogs": "DateTStamp",
    "payments": "SecDateTEdit",
    "paysplits": "SecDateTEdit",
    "adjustments": "SecDateTEdit",
}


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(WorldSpec())


@pytest.fixture(scope="module")
def big_world() -> World:
    """Enough persons for share-based realism checks to be stable."""
    return generate_world(WorldSpec(n_persons=3000, seed=11))


def office_nows(world: World) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "office": [o.key for o in world.spec.offices],
            "now": [world.office_now(o.key) for o in world.spec.offices],
        },
        schema={"office": pl.String, "now": pl.Datetime("us")},
    )


def defs(world: World, category: int) -> pl.DataFrame:
    return world.tables["definitions"].filter(pl.col("Category") == category)


def digits(column: str) -> pl.Expr:
    return pl.col(column).str.replace_all(r"\D", "")


# -- invariants, shared by generation and evolution tests ---------------------------------------


def check_keys(world: World) -> None:
    for name, key in PRIMARY_KEYS.items():
        frame = world.tables[name]
        per_office = frame.group_by("office").agg(
            pl.len(), pl.col(key).n_unique().alias("unique"), pl.col(key).min().alias("first")
        )
        assert (per_office["len"] == per_office["unique"]).all(), name
        if name != "clinics":
            assert (per_office["first"] == 1).all(), name


def check_references(world: World) -> None:
    t = world.tables
    pats = t["patients"].select("office", "PatNum")
    provs = t["providers"].select("office", pl.col("ProvNum").alias("prov"))

    def missing(frame: pl.DataFrame, column: str, target: pl.DataFrame, allow_zero=False) -> int:
        rows = frame.filter(pl.col(column) != 0) if allow_zero else frame
        key = target.columns[1]
        rows = rows.select("office", pl.col(column).alias(key))
        return len(rows.join(target, on=["office", key], how="anti"))

    def cat(category: int) -> pl.DataFrame:
        return defs(world, category).select("office", "DefNum")

    ops = t["operatories"].select("office", "OperatoryNum")
    appts = t["appointments"]
    assert missing(appts, "PatNum", pats) == 0
    assert missing(appts.filter(pl.col("AptStatus") != "Planned"), "Op", ops) == 0
    assert missing(appts, "ProvNum", provs) == 0
    assert missing(appts, "ProvHyg", provs, allow_zero=True) == 0
    assert missing(appts, "Confirmed", cat(2)) == 0
    assert missing(appts, "UnschedStatus", cat(13), allow_zero=True) == 0
    planned = appts.filter(pl.col("AptStatus") == "Planned").select("office", "AptNum")
    assert missing(appts, "NextAptNum", planned, allow_zero=True) == 0
    assert missing(t["patients"], "Guarantor", pats) == 0
    assert missing(t["patients"], "PriProv", provs) == 0
    assert missing(t["patients"], "SecProv", provs, allow_zero=True) == 0
    assert missing(t["payments"], "PatNum", pats) == 0
    assert missing(t["payments"], "PayType", cat(10)) == 0
    assert missing(t["paysplits"], "PatNum", pats) == 0
    assert missing(t["paysplits"], "PayNum", t["payments"].select("office", "PayNum")) == 0
    assert missing(t["paysplits"], "ProvNum", provs, allow_zero=True) == 0
    assert missing(t["paysplits"], "UnearnedType", cat(29), allow_zero=True) == 0
    assert missing(t["adjustments"], "PatNum", pats) == 0
    assert missing(t["adjustments"], "AdjType", cat(1)) == 0
    assert missing(t["adjustments"], "ProvNum", provs) == 0
    assert missing(t["commlogs"], "PatNum", pats) == 0
    assert missing(t["commlogs"], "CommType", cat(27)) == 0


def check_money(world: World) -> None:
    splits = (
        world.tables["paysplits"]
        .group_by("office", "PayNum")
        .agg(pl.col("SplitAmt").sum().alias("split_sum"))
    )
    joined = world.tables["payments"].join(splits, on=["office", "PayNum"], how="left")
    assert joined["split_sum"].null_count() == 0
    assert ((joined["PayAmt"] - joined["split_sum"]).abs() < 0.005).all()
    signs = defs(world, 1).select("office", pl.col("DefNum").alias("AdjType"), "ItemValue")
    adj = world.tables["adjustments"].join(signs, on=["office", "AdjType"])
    assert len(adj) == len(world.tables["adjustments"])
    assert adj.filter((pl.col("ItemValue") == "+") != (pl.col("AdjAmt") > 0)).is_empty()


def check_stamps(world: World) -> None:
    nows = office_nows(world)
    for name, column in STAMPS.items():
        late = world.tables[name].join(nows, on="office").filter(pl.col(column) > pl.col("now"))
        assert late.is_empty(), name
    appts = world.tables["appointments"]
    assert appts.filter(pl.col("DateTStamp") < pl.col("SecDateTEntry")).is_empty()
    assert appts.join(nows, on="office").filter(pl.col("SecDateTEntry") > pl.col("now")).is_empty()
    done = appts.filter(pl.col("DateTimeArrived").is_not_null())
    assert (done["AptStatus"] == "Complete").all()
    assert done.filter(
        (pl.col("DateTimeArrived") > pl.col("DateTimeSeated"))
        | (pl.col("DateTimeSeated") > pl.col("DateTimeDismissed"))
        | (pl.col("DateTimeArrived").dt.date() != pl.col("AptDateTime").dt.date())
        | (pl.col("DateTimeDismissed").dt.date() != pl.col("AptDateTime").dt.date())
    ).is_empty()


def check_truth(world: World) -> None:
    t = world.tables
    links = t["truth_patient_links"]
    assert len(links) == len(t["patients"])
    assert links.join(t["patients"], on=["office", "PatNum"], how="anti").is_empty()
    persons = t["truth_persons"]
    assert persons["person_id"].is_unique().all()
    joined = links.join(persons, on="person_id", how="left", suffix="_p")
    assert (joined["household_id"] == joined["household_id_p"]).all()
    truth_appts = t["truth_appointments"]
    assert len(truth_appts) == len(t["appointments"])
    both = t["appointments"].join(truth_appts, on=["office", "AptNum"], how="left")
    assert both.filter(
        (pl.col("AptStatus") == "Broken") != pl.col("broken_reason").is_not_null()
    ).is_empty()
    assert set(both["broken_reason"].drop_nulls()) <= {"missed", "cancelled"}


def check_types(world: World) -> None:
    """Open Dental column names and native types; "" not null; whole seconds; cents."""
    native = (pl.String, pl.Int64, pl.Float64, pl.Boolean, pl.Date, pl.Datetime("us", None))
    for name, columns in API_COLUMNS.items():
        frame = world.tables[name]
        assert frame.columns == ["office", *columns.split()], name
        for column, dtype in frame.schema.items():
            assert dtype in native, (name, column, dtype)
            if dtype == pl.Float64:
                cents = frame[column] * 100
                assert ((cents - cents.round()).abs() < 1e-6).all(), (name, column)
            if dtype == pl.Datetime("us", None):
                assert (frame[column].dt.microsecond().drop_nulls() == 0).all(), (name, column)
    for frame in world.tables.values():
        for column in frame.select(pl.col(pl.String)).columns:
            if column != "broken_reason":
                assert frame[column].null_count() == 0, column


def check_all(world: World) -> None:
    check_types(world)
    check_keys(world)
    check_references(world)
    check_money(world)
    check_stamps(world)
    check_truth(world)


# -- generation ---------------------------------------------------------------------------------


def test_generation_is_deterministic_and_seeded():
    spec = WorldSpec(n_persons=300)
    first, second = generate_world(spec), generate_world(spec)
    assert first.tables.keys() == second.tables.keys()
    for name, frame in first.tables.items():
        assert frame.equals(second.tables[name]), name
    other = generate_world(replace(spec, seed=spec.seed + 1))
    assert not other.tables["patients"].equals(first.tables["patients"])
    assert not other.tables["appointments"].equals(first.tables["appointments"])


def test_api_tables_have_open_dental_columns_and_types(world):
    check_types(world)


def test_world_invariants(world, big_world):
    check_all(world)
    check_all(big_world)


def test_definitions_cover_the_categories_connectors_use(world):
    wanted = {
        1: {"Misc Pos Adjustment", "Misc Neg Adjustment", "Write Off", "NSF fee"},
        2: {"Unconfirmed", "Left Msg", "Appointment Confirmed", "Texted"},
        4: {"Standard Account", "Insurance Only"},
        10: {"Check", "Cash", "Credit Card", "Care Credit", "Patient Portal"},
        13: {"Contact", "Left Msg"},
        27: {"ApptRelated", "Insurance", "Financial", "Recall", "Misc"},
        29: {"Prepayment"},
    }
    for office in world.spec.offices:
        office_defs = world.tables["definitions"].filter(pl.col("office") == office.key)
        for category, item_names in wanted.items():
            found = set(office_defs.filter(pl.col("Category") == category)["ItemName"])
            assert item_names <= found, (office.key, category)
        pay = dict(
            office_defs.filter(pl.col("Category") == 10).select("ItemName", "DefNum").iter_rows()
        )
        assert (pay["Check"], pay["Cash"], pay["Credit Card"]) == (69, 70, 71)


def test_clinics_only_where_configured(world):
    for office in world.spec.offices:
        clinics = world.tables["clinics"].filter(pl.col("office") == office.key)
        assert clinics["ClinicNum"].to_list() == list(range(1, len(office.clinics) + 1))
        for name in ("patients", "appointments", "operatories", "payments", "adjustments"):
            nums = set(world.table(name, office.key)["ClinicNum"])
            expected = set(range(1, len(office.clinics) + 1)) if office.clinics else {0}
            assert nums <= expected, (office.key, name)


def test_appointment_histories_look_like_a_practice(world):
    appts = world.tables["appointments"].join(office_nows(world), on="office")
    statuses = set(appts["AptStatus"])
    assert {"Scheduled", "Complete", "Broken", "UnschedList", "Planned"} <= statuses
    assert statuses & {"PtNote", "PtNoteCompleted"}
    visit_over = pl.col("AptDateTime") + pl.duration(minutes=pl.col("Pattern").str.len_chars() * 5)
    assert appts.filter(
        (pl.col("AptStatus") == "Scheduled") & (visit_over <= pl.col("now"))
    ).is_empty()
    assert appts.filter(
        (pl.col("AptStatus") == "Complete") & (pl.col("AptDateTime") > pl.col("now"))
    ).is_empty()
    assert appts["Pattern"].str.contains(r"^[/X]+$").all()
    confirmed = defs(world, 2).filter(pl.col("ItemName") != "Unconfirmed")["DefNum"]
    scheduled = appts.filter(pl.col("AptStatus") == "Scheduled")
    assert scheduled["Confirmed"].is_in(confirmed.implode()).any()
    assert (appts["DateTStamp"].is_duplicated()).sum() > len(appts) // 10  # batch ties


def check_new_patient_flags(world: World) -> None:
    real = world.tables["appointments"].filter(
        ~pl.col("AptStatus").is_in(["Planned", "PtNote", "PtNoteCompleted"])
    )
    first = real.sort("AptDateTime", "AptNum").group_by("office", "PatNum").first()
    assert first["IsNewPatient"].all()
    flagged = real.filter(pl.col("IsNewPatient"))
    assert len(flagged) == len(first)


def test_new_patient_flag_marks_each_first_visit(world):
    check_new_patient_flags(world)


def test_broken_appointments_are_explained_and_followed_up(world):
    truth = world.tables["truth_appointments"]
    reasons = set(truth["broken_reason"].drop_nulls())
    assert reasons == {"missed", "cancelled"}
    appts = world.tables["appointments"]
    broken = appts.filter(pl.col("AptStatus") == "Broken").select("office", "PatNum", "AptDateTime")
    later = appts.filter(pl.col("AptStatus").is_in(["UnschedList", "Scheduled", "Complete"]))
    followed = (
        broken.join(later, on=["office", "PatNum"], suffix="_next")
        .filter(pl.col("AptDateTime_next") >= pl.col("AptDateTime"))
        .unique(["office", "PatNum", "AptDateTime"])
    )
    assert len(followed) > 0.5 * len(broken)


def test_payments_follow_visits_and_split(world):
    pays = world.tables["payments"]
    splits = world.tables["paysplits"]
    per_payment = splits.group_by("office", "PayNum").len()
    assert (per_payment["len"] >= 2).any()
    visits = (
        world.tables["appointments"]
        .filter(pl.col("AptStatus") == "Complete")
        .select("office", "PatNum", pl.col("AptDateTime").dt.date().alias("DatePay"))
        .unique()
    )
    on_visit_day = splits.join(visits, on=["office", "PatNum", "DatePay"], how="semi")
    assert on_visit_day.select("office", "PayNum").n_unique() > 0.5 * len(pays)
    assert (splits["UnearnedType"] > 0).any()  # prepayments
    assert (pays["DepositNum"] > 0).any()
    assert set(pays["ProcessStatus"]) <= {"OfficeProcessed", "OnlineProcessed", "OnlinePending"}
    names = set(
        world.tables["adjustments"].join(
            defs(world, 1).select("office", pl.col("DefNum").alias("AdjType"), "ItemName"),
            on=["office", "AdjType"],
        )["ItemName"]
    )
    assert {"Write Off", "NSF fee"} <= names


def test_balances_roll_up_to_guarantors(world):
    p = world.tables["patients"]
    family = p.group_by("office", "Guarantor").agg(pl.col("EstBalance").sum().alias("family"))
    heads = p.filter(pl.col("PatNum") == pl.col("Guarantor")).join(
        family, left_on=["office", "PatNum"], right_on=["office", "Guarantor"]
    )
    assert ((heads["BalTotal"] - heads["family"]).abs() < 0.01).all()
    assert (p.filter(pl.col("PatNum") != pl.col("Guarantor"))["BalTotal"] == 0).all()


def test_households_share_phones(big_world):
    persons = big_world.tables["truth_persons"]
    per_household = persons.group_by("household_id").agg(pl.col("phone").n_unique())
    assert (per_household["phone"] == 1).all()
    assert (
        persons.group_by("phone").agg(pl.col("household_id").n_unique())["household_id"].max() == 1
    )
    assert persons["phone"].str.contains(r"^\d{10}$").all()
    shared_email = persons.filter(pl.col("email") != "").group_by("email").agg(pl.len())
    assert (shared_email["len"] > 1).any()
    # Children carry the guarantor's number as HmPhone.
    p = big_world.tables["patients"]
    kids = p.filter((pl.col("Position") == "Child") & (pl.col("HmPhone") != ""))
    heads = p.select("office", pl.col("PatNum").alias("Guarantor"), pl.col("HmPhone").alias("g"))
    pairs = kids.join(heads, on=["office", "Guarantor"]).filter(pl.col("g") != "")
    pairs = pairs.filter(pl.col("PatNum") != pl.col("Guarantor"))
    assert len(pairs) > 20
    same = pairs.filter(
        digits("HmPhone").str.slice(-7) == pl.col("g").str.replace_all(r"\D", "").str.slice(-7)
    )
    assert len(same) == len(pairs)


def test_some_persons_are_patients_of_two_offices(big_world):
    links = big_world.tables["truth_patient_links"]
    per_person = links.group_by("person_id").agg(pl.col("office").n_unique(), pl.len())
    share = (per_person["office"] == 2).sum() / len(big_world.tables["truth_persons"])
    assert 0.03 <= share <= 0.05
    assert (per_person["len"] == per_person["office"]).all()


def _one_edit_apart(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
        )
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def test_records_carry_front_desk_noise(big_world):
    p = (
        big_world.tables["patients"]
        .join(big_world.tables["truth_patient_links"], on=["office", "PatNum"])
        .join(big_world.tables["truth_persons"], on="person_id")
    )
    nick = p.filter(pl.col("nickname") != "")
    assert (nick["FName"] == nick["nickname"]).any()
    assert (nick["Preferred"] == nick["nickname"]).any()
    typos = [
        (a, b)
        for a, b in p.select("LName", "last_name").iter_rows()
        if a.lower() != b.lower() and _one_edit_apart(a.lower(), b.lower())
    ]
    assert len(typos) > 0.01 * len(p)
    phones = p.filter(pl.col("HmPhone") != "")["HmPhone"]
    for pattern in (
        r"^\(\d{3}\)\d{3}-\d{4}$",
        r"^\(\d{3}\) \d{3}-\d{4}$",
        r"^\d{3}\.\d{3}\.\d{4}$",
        r"^\d{10}$",
    ):
        assert phones.str.contains(pattern).any(), pattern
    assert (p["HmPhone"] == "").any()


# -- evolution ----------------------------------------------------------------------------------


def _keys(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    return frame.select("office", key)


def _advanced(days: float = 1, seed: int = 5) -> tuple[World, dict[str, pl.DataFrame], dict]:
    world = generate_world(WorldSpec())
    before = {name: frame.clone() for name, frame in world.tables.items()}
    counts = world.advance(timedelta(days=days), seed=seed)
    return world, before, counts


@pytest.fixture(scope="module")
def advanced():
    return _advanced()


def test_advance_moves_the_clock_and_keeps_invariants(advanced):
    world, _, counts = advanced
    assert world.now_utc == WorldSpec().now_utc + timedelta(days=1)
    check_all(world)
    for name in (
        "patients_created",
        "appointments_created",
        "patients_edited",
        "appointments_edited",
        "commlogs_created",
    ):
        assert counts[name] > 0, name


def test_advance_adds_rows_with_fresh_keys_and_stamps(advanced):
    world, before, counts = advanced
    old_nows = office_nows(replace(world, now_utc=WorldSpec().now_utc))
    new_nows = office_nows(world).rename({"now": "new"})
    for name, column in STAMPS.items():
        key = PRIMARY_KEYS[name]
        old, new = before[name], world.tables[name]
        assert len(new) >= len(old)
        assert _keys(old, key).join(_keys(new, key), on=["office", key], how="anti").is_empty()
        added = new.join(_keys(old, key), on=["office", key], how="anti")
        maxima = old.group_by("office").agg(pl.col(key).max().alias("max"))
        assert added.join(maxima, on="office").filter(pl.col(key) <= pl.col("max")).is_empty()
        stamped = added.join(old_nows, on="office").join(new_nows, on="office")
        outside = stamped.filter(
            (pl.col(column) <= pl.col("now")) | (pl.col(column) > pl.col("new"))
        )
        assert outside.is_empty(), name
        if name + "_created" in counts:
            assert counts[name + "_created"] == len(added), name


def test_advance_edits_existing_rows_in_place(advanced):
    world, before, _ = advanced
    old_nows = office_nows(replace(world, now_utc=WorldSpec().now_utc))
    old = before["appointments"]
    new = world.tables["appointments"]
    both = old.join(new, on=["office", "AptNum"], suffix="_new")
    changed = both.filter(pl.col("DateTStamp_new") != pl.col("DateTStamp"))
    assert len(changed) > 0
    assert (changed["AptStatus"] != changed["AptStatus_new"]).any()
    assert (
        changed.join(old_nows, on="office")
        .filter(pl.col("DateTStamp_new") <= pl.col("now"))
        .is_empty()
    )
    status_changed = both.filter(pl.col("AptStatus") != pl.col("AptStatus_new"))
    assert (status_changed["DateTStamp"] != status_changed["DateTStamp_new"]).all()
    newly_broken = status_changed.filter(pl.col("AptStatus_new") == "Broken")
    truth = world.tables["truth_appointments"].join(
        newly_broken.select("office", "AptNum"), on=["office", "AptNum"], how="semi"
    )
    assert truth["broken_reason"].null_count() == 0
    completed = status_changed.filter(pl.col("AptStatus_new") == "Complete")
    assert (completed["AptStatus"] == "Scheduled").all()


def test_ledger_changes_touch_the_patient_row(advanced):
    world, before, _ = advanced
    old_nows = office_nows(replace(world, now_utc=WorldSpec().now_utc))
    new_rows = [
        world.tables[name]
        .join(_keys(before[name], key), on=["office", key], how="anti")
        .select("office", "PatNum")
        for name, key in (("paysplits", "SplitNum"), ("adjustments", "AdjNum"))
    ]
    touched = pl.concat(new_rows).unique()
    assert len(touched) > 0
    stamps = (
        world.tables["patients"].join(touched, on=["office", "PatNum"]).join(old_nows, on="office")
    )
    assert (stamps["DateTStamp"] > stamps["now"]).all()


def test_advance_is_deterministic_for_a_seed():
    first, _, counts_a = _advanced(days=2, seed=9)
    second, _, counts_b = _advanced(days=2, seed=9)
    assert counts_a == counts_b
    for name, frame in first.tables.items():
        assert frame.equals(second.tables[name]), name
    third, _, _ = _advanced(days=2, seed=10)
    assert not third.tables["appointments"].equals(first.tables["appointments"])


def test_many_advances_keep_the_world_consistent():
    world = generate_world(WorldSpec(n_persons=600, seed=3))
    before = {name: frame.clone() for name, frame in world.tables.items()}
    for step in range(8):
        world.advance(timedelta(hours=7 + 11 * step), seed=step)
    check_all(world)
    check_new_patient_flags(world)
    for name in ("patients", "appointments", "payments", "commlogs", "truth_persons"):
        assert len(world.tables[name]) > len(before[name]), name
    # Some newcomers are known persons registering at a second office.
    new_links = world.tables["truth_patient_links"].join(
        before["truth_patient_links"], on=["office", "PatNum"], how="anti"
    )
    known = before["truth_persons"]["person_id"].max()
    assert (new_links["person_id"] <= known).any()
    assert (new_links["person_id"] > known).any()


def test_zero_and_negative_steps():
    world = generate_world(WorldSpec(n_persons=50))
    frames = dict(world.tables)
    counts = world.advance(timedelta(0))
    assert not any(counts.values())
    assert all(world.tables[name] is frame for name, frame in frames.items())
    with pytest.raises(ValueError):
        world.advance(timedelta(seconds=-1))


def test_edited_patients_match_truth_updates(advanced):
    """A new email on a record is the person's truth now (their other records go stale)."""
    world, before, counts = advanced
    assert counts["patients_edited"] > 0
    changed = (
        world.tables["patients"]
        .join(before["patients"], on=["office", "PatNum"], suffix="_old")
        .filter(pl.col("Email") != pl.col("Email_old"))
        .join(world.tables["truth_patient_links"], on=["office", "PatNum"])
        .join(world.tables["truth_persons"], on="person_id")
    )
    assert len(changed) > 0
    assert (changed["Email"] == changed["email"]).all()
    assert changed["Email"].str.contains(r"^[a-z.]+\.\d+@gmail\.com$").all()
