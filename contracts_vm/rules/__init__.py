"""The licence rule library: contract sources (in the VM subset) as string constants.

Loaded without filesystem I/O: `RULES[name]` is the source text a licence references by
code hash. Each rule reads its terms with param() and takes usage as arguments; money is
integer minor units, rates are basis points (1 bp = 0.01%). See domain.md for the models
and tests/contracts_vm/test_rules.py for the reference figures each one reproduces.
`LEDGER_RULES[name]` is the same rule with the ledger's entry point `royalty(usage,
period)` (ledger.py); tests/ledger/test_rule_library.py deploys each through the ledger.
"""

from .ledger import LEDGER_RULES, NATIVE_TERMS
from .money_rules import INTEREST_AND_POOLS
from .sales import SALES
from .terms import TERMS

RULES: dict[str, str] = {**SALES, **TERMS, **INTEREST_AND_POOLS}

__all__ = ["LEDGER_RULES", "NATIVE_TERMS", "RULES"]
