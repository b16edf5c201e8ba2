"""Licence rules in the ledger's convention, `royalty(usage, period)` (see node/ledger/rules.py)."""

PER_UNIT = """
def royalty(usage, period):
    units = 0
    for territory in sorted(usage.keys()):
        units += usage[territory].get("units", 0)
    return [["units x fee", units * param("fee_per_unit")]]
"""

TIERED_ANNUAL = """
def cost(n):
    total = 0
    lower = 0
    for tier in param("tiers"):
        upper = tier[0]
        if upper == 0 or n < upper:
            return total + (n - lower) * tier[1]
        total += (upper - lower) * tier[1]
        lower = upper
    return total

def royalty(usage, period):
    units = 0
    for territory in sorted(usage.keys()):
        units += usage[territory].get("units", 0)
    before = aggregate("ytd_units")
    return [["tiered units", cost(before + units) - cost(before)]]
"""

PERCENT_OF_SALES = """
def royalty(usage, period):
    sales = 0
    for territory in sorted(usage.keys()):
        sales += usage[territory].get("net_sales", 0)
    return [["percent of net sales", mul_div(sales, param("rate_bp"), 10000, "half-even")]]
"""
