"""Terms files -> LicenceTerms: human-friendly fields in, the ledger's exact record out,
and every bad field named in one line. Members resolve through a fixed directory."""

from __future__ import annotations

import json
import pathlib

import click
import pytest

from cli.licensing import period_start
from cli.terms import TermsError, load_terms, terms_from_json
from contracts_vm.rules import LEDGER_RULES
from node.ledger import crypto
from node.ledger.calendar import ms_of_date

KEYS = {name: crypto.sha256(name.encode()) for name in ("codec", "oem", "r1", "r2", "judge")}


def resolve(text: str, what: str) -> bytes:
    if len(text) == 64:
        return bytes.fromhex(text)
    if text not in KEYS:
        raise ValueError(f"{what}: no member named {text!r}")
    return KEYS[text]


FULL = {
    "licence_id": "POOLED",
    "licensor": "codec",
    "licensee": "oem",
    "pool": [{"licensor": "r1", "weight": 3}, {"licensor": "r2", "weight": 1}],
    "skus": ["cam-1", "hub-1"],
    "product_classes": {"hub-1": "hubs"},
    "territories": ["DE", "FR"],
    "currency": "EUR",
    "period": "quarter",
    "start": "2026-01-01",
    "end": "2028-01-01",
    "rule": "tiered_with_cap",
    "rule_params": {"tiers": [[1000, 0], [None, 25]], "annual_cap": None},
    "payment_due_days": 45,
    "upfront_fee": 500_000,
    "minimum_annual": 1_000_000,
    "advance": 250_000,
    "late_interest_bps": 800,
    "legal_text_hash": "ab" * 32,
    "arbiter": "judge",
}


def write(tmp: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp / name
    path.write_text(text)
    return path


def test_json_terms_become_the_exact_record(tmp_path: pathlib.Path) -> None:
    terms = load_terms(write(tmp_path, "t.json", json.dumps(FULL)), resolve).terms
    assert terms.licensor == KEYS["codec"] and terms.licensee == KEYS["oem"]
    assert [(p.licensor, p.weight) for p in terms.pool] == [(KEYS["r1"], 3), (KEYS["r2"], 1)]
    assert terms.start_ms == ms_of_date(2026, 1, 1) and terms.end_ms == ms_of_date(2028, 1, 1)
    assert terms.rule == crypto.sha256(LEDGER_RULES["tiered_with_cap"].encode())
    assert terms.arbiter == KEYS["judge"] and terms.legal_text_hash == b"\xab" * 32
    assert terms.product_class("hub-1") == "hubs" and terms.annual_cap == 0
    # and the API's JSON of those terms rebuilds the same hash (what `licence sign` signs)
    api = {k: v.hex() if isinstance(v, bytes) else v for k, v in terms.to_value().items()}
    api["pool"] = [{"licensor": p["licensor"].hex(), "weight": p["weight"]} for p in api["pool"]]
    assert terms_from_json(api).terms_hash() == terms.terms_hash()


def test_toml_with_dates_rule_file_and_legal_text(tmp_path: pathlib.Path) -> None:
    write(tmp_path, "rule.py", "def royalty(usage, period):\n    return 0\n")
    write(tmp_path, "agreement.txt", "terms")
    path = write(
        tmp_path,
        "t.toml",
        'licence_id = "X"\nlicensor = "codec"\nlicensee = "' + KEYS["oem"].hex() + '"\n'
        'skus = ["a"]\ncurrency = "USD"\nperiod = "month"\nstart = 2026-03-01\n'
        'end = "2026-09-01"\nrule_file = "rule.py"\nlegal_text = "agreement.txt"\n',
    )
    loaded = load_terms(path, resolve)
    assert loaded.rule_source is not None and "royalty" in loaded.rule_source
    t = loaded.terms
    assert t.rule == crypto.sha256(loaded.rule_source.encode())
    assert t.legal_text_hash == crypto.sha256(b"terms") and t.start_ms == ms_of_date(2026, 3, 1)
    assert t.payment_due_days == 30 and t.pool == () and t.territories == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": "2026-02-30"}, "start: '2026-02-30' is not a date"),
        ({"end": "next year"}, "end: expected a date YYYY-MM-DD"),
        ({"licensor": "nobody"}, "licensor: no member named 'nobody'"),
        ({"period": "week"}, "period: expected one of month, quarter, year"),
        ({"upfront_fee": 1.5}, "upfront_fee: expected a whole number"),
        ({"rule": "no_such_rule"}, "rule: unknown library rule 'no_such_rule'"),
        ({"rule_params": {"rate": 0.5}}, "rule_params:"),
        ({"pool": [{"licensor": "r1"}]}, "pool[0]: expected exactly {licensor, weight}"),
        ({"skus": "cam-1"}, "skus: expected a list of strings"),
        ({"currency": "euro"}, "currency must be ISO 4217"),
        ({"licensee": "codec"}, "licensor and licensee differ"),
        ({"colour": "red"}, "colour: unknown field"),
    ],
)
def test_each_bad_field_is_named(tmp_path: pathlib.Path, change: dict, message: str) -> None:
    doc = {**FULL, **change}
    with pytest.raises(TermsError) as caught:
        load_terms(write(tmp_path, "t.json", json.dumps(doc)), resolve)
    assert message in caught.value.format_message()
    assert "\n" not in caught.value.format_message()


def test_missing_fields_and_both_or_neither_of_a_pair(tmp_path: pathlib.Path) -> None:
    doc = {k: v for k, v in FULL.items() if k not in ("licensee", "legal_text_hash")}
    doc["rule_file"] = "x.py"
    with pytest.raises(TermsError) as caught:
        load_terms(write(tmp_path, "t.json", json.dumps(doc)), resolve)
    problems = caught.value.problems
    assert "licensee: required" in problems
    assert any(p.startswith("rule: give exactly one of rule or rule_file") for p in problems)
    assert any(p.startswith("legal_text: give exactly one") for p in problems)


def test_amendment_licence_id_must_match(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "t.json", json.dumps(FULL))
    assert load_terms(path, resolve, "POOLED").terms.licence_id == "POOLED"
    with pytest.raises(TermsError, match="the file says 'POOLED', not 'OTHER'"):
        load_terms(path, resolve, "OTHER")
    no_id = {k: v for k, v in FULL.items() if k != "licence_id"}
    path = write(tmp_path, "n.json", json.dumps(no_id))
    assert load_terms(path, resolve, "FILLED").terms.licence_id == "FILLED"


def test_period_start_from_ids_and_dates() -> None:
    assert period_start("2026-Q3", "quarter") == ms_of_date(2026, 7, 1)
    assert period_start("2026-07", "month") == ms_of_date(2026, 7, 1)
    assert period_start("2027", "year") == ms_of_date(2027, 1, 1)
    assert period_start("2026-10-01", "quarter") == ms_of_date(2026, 10, 1)
    for bad, kind in (("2026-08-01", "quarter"), ("2026-Q5", "quarter"), ("2026-7", "month")):
        with pytest.raises(click.BadParameter):
            period_start(bad, kind)
