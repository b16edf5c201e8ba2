"""Issue 5's scenario: one OEM, two IoT products, a licensing web of four licences, a year
of usage from several production-line gateways, four quarters closed and settled. Every
statement and balance is checked against figures computed here with plain arithmetic
(fractions and hand-written tiers), not with the ledger's own code. The licences run the
VM's rule library in the ledger convention (contracts_vm.rules.LEDGER_RULES); the web's
terms and deploying transactions are cli/web.py's, the same ones `alps demo` sends."""

from __future__ import annotations

from fractions import Fraction

from cli import web
from node.ledger import crypto
from node.ledger.calendar import ms_of_date
from node.ledger.model import Account, Statement, k_account, k_statement
from tests.ledger.harness import Harness

MEMBERS = web.MEMBER_ROLES
PATENTS = web.PATENTS
PRICE = web.PRICE
GATEWAYS = web.GATEWAYS
OS_MINIMUM_ANNUAL = 20_000_000  # USD 200,000.00: above the year's 2% of sales, so Q4 trues up
QUARTER_ENDS = [ms_of_date(2026, m, 1) for m in (4, 7, 10)] + [ms_of_date(2027, 1, 1)]


def monthly_units(gateway: int, month: int) -> int:
    return 900 + 137 * gateway + 61 * month + (gateway * month) % 17


# -- independent expectations -------------------------------------------------------------


def half_even(x: Fraction) -> int:
    return round(x)  # Python rounds Fractions half to even


def codec_cost(n: int) -> int:
    """First 1,000 units a year free, 0.50 up to 20,000, 0.25 above (marginal)."""
    return 50 * max(0, min(n, 20_000) - 1_000) + 25 * max(0, n - 20_000)


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    exact = [Fraction(total * w, sum(weights)) for w in weights]
    shares = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def expected() -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"codec": [], "pool": [], "os": []}
    cam_ytd = 0
    os_ytd = 0
    for q in range(4):
        months = range(3 * q + 1, 3 * q + 4)
        units = {sku: 0 for sku in PRICE}
        for g, (sku, _t) in enumerate(GATEWAYS):
            units[sku] += sum(monthly_units(g, m) for m in months)
        codec = codec_cost(cam_ytd + units["cam-1"]) - codec_cost(cam_ytd)
        cam_ytd += units["cam-1"]
        pool = 120 * (units["cam-1"] + units["hub-1"])
        sales = sum(units[s] * PRICE[s] for s in PRICE)
        os_fee = half_even(Fraction(sales * 200, 10_000))
        if q == 3 and os_ytd + os_fee < OS_MINIMUM_ANNUAL:
            os_fee = OS_MINIMUM_ANNUAL - os_ytd
        os_ytd += os_fee
        out["codec"].append(codec)
        out["pool"].append(pool)
        out["os"].append(os_fee)
    return out


# -- the scenario -----------------------------------------------------------------------------


def build() -> Harness:
    t0 = ms_of_date(2026, 1, 1)
    h = Harness(MEMBERS, t0)
    shape = web.WebShape(start_ms=t0, end_ms=ms_of_date(2028, 1, 1))
    assert shape.os_minimum_annual == OS_MINIMUM_ANNUAL
    for stage in web.deployment(h.key, shape):
        for step in stage:
            h.tx(step.signer, step.tx_type, step.body)
        h.ok()
    return h


def enrol_gateways(h: Harness) -> list[crypto.Signer]:
    """One device per production line (GATEWAYS), enrolled by the OEM."""
    gateways = [crypto.Signer(bytes([0x60 + g]) * 32) for g in range(len(GATEWAYS))]
    for g, (sku, _t) in enumerate(GATEWAYS):
        h.enrol("oem", gateways[g], sku)
    return gateways


def grown(register: dict[str, int], g: int, sku: str, month: int) -> dict[str, int]:
    """Line g's cumulative registers after `month`'s production."""
    n = monthly_units(g, month)
    return {"units": register["units"] + n, "net_sales": register["net_sales"] + n * PRICE[sku]}


def test_a_year_of_the_licensing_web() -> None:
    h = build()
    gateways = enrol_gateways(h)
    h.ok()
    h.tx(
        "oem",
        "account.deposit",
        {
            "deposit_id": "fund",
            "currency": "USD",
            "amount": 500_000_000,
            "reference": "escrow",
            "counterparty": b"",
        },
    )
    h.ok()
    h.tx("bank", "account.ack_deposit", {"deposit_id": "fund"})
    h.ok()
    registers = [{"units": 0, "net_sales": 0} for _ in GATEWAYS]
    for month in range(1, 13):
        for g, (sku, territory) in enumerate(GATEWAYS):
            registers[g] = grown(registers[g], g, sku, month)
            h.usage(gateways[g], sku, territory, dict(registers[g]))
        h.ok(ms_of_date(2026, month, 15))
        if month % 3 == 0:
            h.ok(QUARTER_ENDS[month // 3 - 1])  # the quarter closes
    h.ok(ms_of_date(2027, 2, 15))  # past the last due date: everything settles

    want = expected()
    got = {
        name: [h.get(k_statement(lid, f"2026-Q{q}"), Statement) for q in range(1, 5)]
        for name, lid in (("codec", "CODEC"), ("pool", "RADIO"), ("os", "OS"))
    }
    for name in want:
        assert [s.total for s in got[name]] == want[name], name
        assert all(s.status == "paid" for s in got[name]), name
    assert [s.usage_count for s in got["codec"]] == [9, 9, 9, 9]  # 3 cam gateways x 3 months
    assert [li.label for li in got["os"][3].lines][-1] == "minimum annual guarantee true-up"

    def balance(name: str) -> int:
        acct = h.get(k_account(h.key[name], "USD"), Account)
        return acct.balance if acct else 0

    pool_shares = [0, 0, 0]
    for total in want["pool"]:
        pool_shares = [
            a + b
            for a, b in zip(
                pool_shares, largest_remainder(total, list(PATENTS.values())), strict=True
            )
        ]
    passthrough = [half_even(Fraction(t * 1_500, 10_000)) for t in want["os"]]
    assert [balance(n) for n in PATENTS] == pool_shares
    assert balance("codec") == sum(want["codec"])
    assert balance("gfx") == sum(passthrough)
    assert balance("osv") == sum(want["os"]) - sum(passthrough)
    paid = sum(sum(v) for v in want.values())
    assert balance("oem") == 500_000_000 - paid
    assert_money_conserved_usd(h)


def assert_money_conserved_usd(h: Harness) -> None:
    from node.ledger.model import k_totals

    balances = [
        Account.decode(v).balance
        for k, v in h.state().items()
        if k.startswith(b"acct/") and k.endswith(b"USD")
    ]
    totals = h.value(k_totals("USD"))
    assert totals["in_transit"] == 0
    assert sum(balances) == totals["deposited"] - totals["withdrawn"] == 500_000_000
