"""Rules that move money between parties: pool apportionment among licensors (largest
remainder, shares sum to the total), sublicence pass-through to the upstream licensor,
and late-payment interest (simple interest, actual/365)."""

POOL_APPORTIONMENT = '''
def apportion(total):
    """Split pool income among licensors in proportion to param weights
    ({licensor: weight}); allocate() gives the remainder units to the largest
    remainders, earlier licensors (sorted by name) first on ties."""
    weights = param("weights")
    names = sorted(weights.keys())
    shares = allocate(total, [weights[n] for n in names])
    return {n: s for n, s in zip(names, shares)}
'''

SUBLICENCE_PASS_THROUGH = '''
def pass_through(sublicence_income):
    """The upstream licensor receives pass_through_bp of sublicence income (rounded
    down, in the sublicensor's favour never beyond a cent); the rest is retained."""
    if sublicence_income < 0:
        fail("negative income")
    upstream = mul_div(sublicence_income, param("pass_through_bp"), 10000, "down")
    return {"upstream": upstream, "retained": sublicence_income - upstream}
'''

LATE_INTEREST = '''
def late_interest(amount, due_day, paid_day):
    """Simple interest at annual_rate_bp on an amount paid late, actual/365,
    rounded half-even to the minor unit."""
    days = days_between(due_day, paid_day)
    if days <= 0 or amount <= 0:
        return 0
    return mul_div(amount, param("annual_rate_bp") * days, 10000 * 365, "half-even")
'''

INTEREST_AND_POOLS = {
    "pool_apportionment": POOL_APPORTIONMENT,
    "sublicence_pass_through": SUBLICENCE_PASS_THROUGH,
    "late_interest": LATE_INTEREST,
}
