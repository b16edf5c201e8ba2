"""The rule library in the licensing ledger's convention: `royalty(usage, period)`.

The ledger runs every licence rule as `royalty(usage, period)` (node/ledger/rules.py):
usage is {territory: {product_class: {metric: quantity}}} for one licence and period,
period is {"id", "start_day", "end_day", "year", "contract_year", "is_year_end"}, terms
come from param(), year-to-date figures from aggregate("ytd_earned") and
aggregate("ytd_<metric>"), and the result is a list of [label, amount] line items.

`LEDGER_RULES[name]` is the library rule RULES[name] with its per-rule entry renamed to
`library_royalty` (the text is otherwise unchanged, so the ledger and the library compute
with one implementation and the library's own code hashes and gas stay as they are),
followed by shared usage helpers and a `royalty(usage, period)` that sums the usage the
library entry needs and calls it.

Library rules the ledger applies natively as licence terms, for every licence alike, are
listed in NATIVE_TERMS with the LicenceTerms field that expresses them.
"""

from .money_rules import INTEREST_AND_POOLS
from .sales import SALES
from .terms import TERMS

LIBRARY_ENTRY = "\ndef royalty("
RENAMED_ENTRY = "\ndef library_royalty("

USAGE_HELPERS = '''

def param_or(name, default):
    value = param(name)
    if value is None:
        return default
    return value


def usage_total(usage, metric):
    """metric summed over every territory and product class."""
    total = 0
    for territory in sorted(usage.keys()):
        classes = usage[territory]
        for product_class in sorted(classes.keys()):
            total += classes[product_class].get(metric, 0)
    return total


def usage_by_class(usage, metric):
    """{product_class: quantity of metric} over every territory."""
    out = {}
    for territory in sorted(usage.keys()):
        classes = usage[territory]
        for product_class in sorted(classes.keys()):
            out[product_class] = out.get(product_class, 0) + classes[product_class].get(metric, 0)
    return out
'''

PER_UNIT_ENTRY = '''
def royalty(usage, period):
    """param fee_per_unit; param metric (default "units")."""
    units = usage_total(usage, param_or("metric", "units"))
    return [["units x fee", library_royalty(units)]]
'''

PERCENT_OF_NET_SALES_ENTRY = '''
def royalty(usage, period):
    """params rate_bp, sublicense_rate_bp; metrics net_sales, sublicensing_revenue."""
    sales = usage_total(usage, "net_sales")
    sublicensing = usage_total(usage, "sublicensing_revenue")
    return [["percent of net sales", library_royalty(sales, sublicensing)]]
'''

TIERED_WITH_CAP_ENTRY = '''
def royalty(usage, period):
    """params tiers, annual_cap (None: none), metric (default "units"). Tiers apply to the
    contract year's volume; the cap counts what this rule billed earlier in the year."""
    metric = param_or("metric", "units")
    units = usage_total(usage, metric)
    before = aggregate("ytd_" + metric)
    amount = library_royalty(units, before, aggregate("ytd_earned"))
    return [["tiered units", amount]]
'''

CAPPED_BASE_ENTRY = '''
def royalty(usage, period):
    """params rate_bp, base_cap, unit_prices {product_class: device price}; metric units."""
    prices = param("unit_prices")
    by_class = usage_by_class(usage, param_or("metric", "units"))
    total = 0
    for product_class in sorted(by_class.keys()):
        price = prices.get(product_class)
        if price is None:
            fail("no unit price for product class " + product_class)
        total += library_royalty(price, by_class[product_class])
    return [["percent of capped device price", total]]
'''

TIME_DEPENDENT_ENTRY = '''
def royalty(usage, period):
    """params early_bird_deadline_day, early_bird_fee, standard_fee, licence_start_day,
    grace_days, signed_day (day number the licence was signed); metric (default units)."""
    units = usage_total(usage, param_or("metric", "units"))
    fee = library_royalty(units, param("signed_day"), period["start_day"])
    return [["per unit, time-dependent rate", fee]]
'''

TERRITORY_RATES_ENTRY = '''
def royalty(usage, period):
    """param rates {"territory/product_class": fee per unit}; metric (default units).
    Usage with no rate is not billed: a zero line names it (unlicensed use)."""
    metric = param_or("metric", "units")
    lines = []
    for territory in sorted(usage.keys()):
        classes = usage[territory]
        for product_class in sorted(classes.keys()):
            units = classes[product_class].get(metric, 0)
            if units:
                lines.append({"territory": territory, "product_class": product_class,
                              "units": units})
    result = library_royalty(lines)
    out = [["territory and product-class rates", result["total"]]]
    if result["unlicensed"]:
        units = 0
        names = []
        for line in result["unlicensed"]:
            units += line["units"]
            names.append(line["territory"] + "/" + line["product_class"])
        label = "unlicensed, not billed: " + str(units) + " units " + ",".join(names)
        out.append([label[:128], 0])
    return out
'''

# The library's one-time fee remembers devices in contract storage; in the ledger the
# deduplication is native (the `_new_devices` metric counts each device once per licence)
# and the upfront fee is the licence term `upfront_fee`, so the entry is the fee alone.
ONE_TIME_DEVICE_FEE = (
    USAGE_HELPERS
    + '''
def royalty(usage, period):
    """param fee_per_device, billed once per device for its lifetime under the licence."""
    devices = usage_total(usage, "_new_devices")
    return [["one-time device fee", devices * param("fee_per_device")]]
'''
)

NATIVE_TERMS = {
    "minimum_guarantee": "minimum_annual (true-up at contract-year end)",
    "advance_recoupment": "advance (billed with the first statement, recouped after)",
    "pool_apportionment": "pool (weights; largest remainder)",
    "sublicence_pass_through": "upstream_licence + passthrough_bps",
    "late_interest": "late_interest_bps (actual/365, half-even)",
}


def adapt(library_source: str, entry: str) -> str:
    """The library source with its entry renamed to library_royalty, plus `entry`."""
    if library_source.count(LIBRARY_ENTRY) != 1 or RENAMED_ENTRY in library_source:
        raise ValueError("a library rule to adapt defines royalty() exactly once")
    return library_source.replace(LIBRARY_ENTRY, RENAMED_ENTRY) + USAGE_HELPERS + entry


LEDGER_RULES: dict[str, str] = {
    "per_unit": adapt(SALES["per_unit"], PER_UNIT_ENTRY),
    "percent_of_net_sales": adapt(SALES["percent_of_net_sales"], PERCENT_OF_NET_SALES_ENTRY),
    "tiered_with_cap": adapt(SALES["tiered_with_cap"], TIERED_WITH_CAP_ENTRY),
    "capped_base": adapt(SALES["capped_base"], CAPPED_BASE_ENTRY),
    "time_dependent": adapt(TERMS["time_dependent"], TIME_DEPENDENT_ENTRY),
    "territory_rates": adapt(TERMS["territory_rates"], TERRITORY_RATES_ENTRY),
    "one_time_device_fee": ONE_TIME_DEVICE_FEE,
}

assert set(LEDGER_RULES) | set(NATIVE_TERMS) == set(SALES) | set(TERMS) | set(INTEREST_AND_POOLS), (
    "every library rule has a ledger entry or is a native licence term"
)
