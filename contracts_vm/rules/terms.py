"""Contract-term rules: minimum annual guarantee true-up, advance recoupment, upfront and
one-time per-device fees (Avanci smart meter), time-dependent rates (Avanci early-bird,
grace period), and territory / field-of-use / product-class rates that flag unlicensed
use instead of billing it."""

MINIMUM_GUARANTEE = '''
def true_up(earned_by_period):
    """Year-end true-up: if the royalties earned in the year fall short of the minimum
    annual guarantee, the shortfall is due; otherwise nothing more is due."""
    earned = 0
    for amount in earned_by_period:
        if amount < 0:
            fail("negative royalty")
        earned += amount
    shortfall = max(param("minimum_annual") - earned, 0)
    return {"earned": earned, "true_up": shortfall, "total": earned + shortfall}
'''

ADVANCE_RECOUPMENT = '''
def royalty(earned):
    """An advance paid up front is recouped against earned royalties before anything
    more is paid; the unrecouped balance lives in contract storage."""
    if earned < 0:
        fail("negative royalty")
    remaining = storage_get("advance_remaining")
    if remaining is None:
        remaining = param("advance")
    recouped = min(remaining, earned)
    storage_set("advance_remaining", remaining - recouped)
    return {"recouped": recouped, "payable": earned - recouped,
            "advance_remaining": remaining - recouped}
'''

ONE_TIME_DEVICE_FEE = '''
def royalty(device_ids):
    """A fee once per device lifetime (Avanci smart meter: USD 3 per meter), plus a
    one-time upfront fee on the first statement. Devices already billed are remembered
    in storage and never billed again."""
    fee = param("fee_per_device")
    total = 0
    billed = []
    for device in device_ids:
        k = "device:" + device
        if storage_get(k) is None and device not in billed:
            storage_set(k, True)
            billed.append(device)
            total += fee
    upfront = 0
    if storage_get("upfront_paid") is None:
        upfront = param("upfront_fee")
        storage_set("upfront_paid", True)
    return {"devices_billed": len(billed), "device_fees": total, "upfront": upfront,
            "total": total + upfront}
'''

TIME_DEPENDENT = '''
def rate_for(signed_day):
    if signed_day < param("early_bird_deadline_day"):
        return param("early_bird_fee")
    return param("standard_fee")


def royalty(units, signed_day, period_start_day):
    """Avanci 5G vehicle: early-bird fee if the licence was signed before the deadline,
    otherwise the standard fee; no royalty for periods starting inside the grace period
    after the licence start."""
    if units < 0:
        fail("negative units")
    grace_end = param("licence_start_day") + param("grace_days")
    if period_start_day < grace_end:
        return 0
    return units * rate_for(signed_day)
'''

TERRITORY_RATES = '''
def royalty(lines):
    """lines: [{"territory", "product_class", "units"}]. param rates maps
    "territory/product_class" to a per-unit fee. Lines with no licensed rate are flagged
    as unlicensed (event + list) and never billed at a licensed rate."""
    rates = param("rates")
    total = 0
    unlicensed = []
    for line in lines:
        k = line["territory"] + "/" + line["product_class"]
        fee = rates.get(k)
        if fee is None:
            unlicensed.append(line)
            emit("unlicensed_use", line)
        else:
            total += line["units"] * fee
    return {"total": total, "unlicensed": unlicensed}
'''

TERMS = {
    "minimum_guarantee": MINIMUM_GUARANTEE,
    "advance_recoupment": ADVANCE_RECOUPMENT,
    "one_time_device_fee": ONE_TIME_DEVICE_FEE,
    "time_dependent": TIME_DEPENDENT,
    "territory_rates": TERRITORY_RATES,
}
