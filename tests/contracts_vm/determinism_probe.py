"""Runs a battery of programs and prints every outcome (status, value, gas, effects,
error) as JSON; test_determinism.py compares the output across PYTHONHASHSEED values."""

from __future__ import annotations

import json

from contracts_vm import compile, execute
from contracts_vm.rules import RULES

from .support import FakeHost

HASHY = '''
def f(words):
    d = {}
    for w in words:
        d[w] = d.get(w, 0) + len(w)
    keys = [k for k in d]
    inv = {str(v) + k: k for k, v in d.items()}
    return [keys, sorted(d), list(inv.values()), "ab" in d, d]
'''
ERRORS = '''
def f(kind):
    if kind == 0:
        return [1][3]
    if kind == 1:
        return {"a": 1}["zz"]
    if kind == 2:
        x = 2
        while True:
            x = x * x
    if kind == 3:
        return g(0)
    while True:
        pass

def g(n):
    return g(n + 1)
'''
WORDS = ["delta", "alpha", "charlie", "bravo", "ab", "echo", "alpha", "zulu", "kilo"]


def battery() -> list[object]:
    out: list[object] = []
    host = FakeHost(params={
        "fee_per_unit": 35, "rate_bp": 450, "sublicense_rate_bp": 520,
        "tiers": [[100_000, 0], [5_000_000, 20], [None, 10]], "annual_cap": 500_000_000,
        "base_cap": 50_000, "minimum_annual": 10_000_000, "advance": 5_000,
        "fee_per_device": 300, "upfront_fee": 1_000, "early_bird_deadline_day": 19_000,
        "early_bird_fee": 2_900, "standard_fee": 3_200, "licence_start_day": 18_000,
        "grace_days": 90, "rates": {"US/auto": 100, "DE/auto": 120},
        "weights": {"zeta": 3, "alpha": 3, "mid": 1, "beta": 2},
        "pass_through_bp": 3_333, "annual_rate_bp": 800,
    })
    calls = [
        ("per_unit", "royalty", [1000]),
        ("percent_of_net_sales", "royalty", [120_000, 45_000]),
        ("tiered_with_cap", "royalty", [6_000_000, 0, 0]),
        ("capped_base", "royalty", [80_000, 3]),
        ("minimum_guarantee", "true_up", [[1, 2, 3]]),
        ("advance_recoupment", "royalty", [3_000]),
        ("one_time_device_fee", "royalty", [["m1", "m2", "m1"]]),
        ("time_dependent", "royalty", [10, 18_999, 19_500]),
        ("territory_rates", "royalty", [[{"territory": "BR", "product_class": "x", "units": 1}]]),
        ("pool_apportionment", "apportion", [1_000_003]),
        ("sublicence_pass_through", "pass_through", [1_000]),
        ("late_interest", "late_interest", [1_000_000, 20_000, 20_030]),
    ]
    programs = [(RULES[name], entry, args) for name, entry, args in calls]
    programs.append((HASHY, "f", [WORDS]))
    programs.extend((ERRORS, "f", [k]) for k in range(5))
    for source, entry, args in programs:
        r = execute(compile(source), entry, args, 200_000, host)
        effects = [list(r.effects.storage_writes), [[e.name, e.payload] for e in r.effects.events]]
        out.append([r.status.value, r.value, r.gas_used, effects, r.error])
    return out


if __name__ == "__main__":
    print(json.dumps(battery()))
