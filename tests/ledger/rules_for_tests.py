"""Licence rules in the ledger's convention, `royalty(usage, period)` (see node/ledger/rules.py).

usage is {territory: {product_class: {metric: quantity}}}; `usage_total` sums one metric."""

TOTAL = """
def usage_total(usage, metric):
    n = 0
    for territory in sorted(usage.keys()):
        for product_class in sorted(usage[territory].keys()):
            n += usage[territory][product_class].get(metric, 0)
    return n
"""

PER_UNIT = (
    TOTAL
    + """
def royalty(usage, period):
    units = usage_total(usage, "units")
    return [["units x fee", units * param("fee_per_unit")]]
"""
)

TIERED_ANNUAL = (
    TOTAL
    + """
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
    units = usage_total(usage, "units")
    before = aggregate("ytd_units")
    return [["tiered units", cost(before + units) - cost(before)]]
"""
)

PERCENT_OF_SALES = (
    TOTAL
    + """
def royalty(usage, period):
    sales = usage_total(usage, "net_sales")
    return [["percent of net sales", mul_div(sales, param("rate_bp"), 10000, "half-even")]]
"""
)
