"""Sales-driven royalty rules: per-unit fee, percentage of net sales (Accord ip-payment),
marginal volume tiers with an annual cap (MPEG LA), capped royalty base (Qualcomm style)."""

PER_UNIT = '''
def royalty(units):
    """units x fee_per_unit (minor units)."""
    if units < 0:
        fail("negative units")
    return units * param("fee_per_unit")
'''

PERCENT_OF_NET_SALES = '''
def royalty(net_sales, sublicensing_revenue):
    """Accord Project ip-payment: rate_bp of net sales plus sublicense_rate_bp of
    sublicensing revenue, each rounded half-even to the minor unit."""
    if net_sales < 0 or sublicensing_revenue < 0:
        fail("negative revenue")
    sales = mul_div(net_sales, param("rate_bp"), 10000, "half-even")
    sub = mul_div(sublicensing_revenue, param("sublicense_rate_bp"), 10000, "half-even")
    return sales + sub
'''

TIERED_WITH_CAP = '''
def earned(units):
    """Marginal tiers: param tiers = [[up_to_units or None, fee_per_unit], ...]."""
    total = 0
    prev = 0
    for tier in param("tiers"):
        end = tier[0]
        fee = tier[1]
        if end is None or units <= end:
            return total + (units - prev) * fee
        total += (end - prev) * fee
        prev = end
    fail("tiers must end with an open tier")


def royalty(units, units_ytd_before, billed_ytd_before):
    """Royalty for a period: the tiers apply to the licensee's year-to-date volume, and
    what was billed earlier in the year counts against the annual cap (None = no cap),
    so a cap reached mid-period bills only up to the cap."""
    if units < 0 or units_ytd_before < 0:
        fail("negative units")
    amount = earned(units_ytd_before + units) - earned(units_ytd_before)
    cap = param("annual_cap")
    if cap is not None:
        room = max(cap - billed_ytd_before, 0)
        if amount > room:
            emit("annual_cap_reached", {"cap": cap})
            amount = room
    return amount
'''

CAPPED_BASE = '''
def royalty(unit_price, units):
    """rate_bp of the device price, with the royalty base capped at base_cap."""
    if unit_price < 0 or units < 0:
        fail("negative price or units")
    base = min(unit_price, param("base_cap"))
    per_device = mul_div(base, param("rate_bp"), 10000, "half-even")
    return per_device * units
'''

SALES = {
    "per_unit": PER_UNIT,
    "percent_of_net_sales": PERCENT_OF_NET_SALES,
    "tiered_with_cap": TIERED_WITH_CAP,
    "capped_base": CAPPED_BASE,
}
