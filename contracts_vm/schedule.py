"""The versioned gas schedule and hard limits: part of the chain configuration.

Changing any number here changes consensus outcomes, so every change must bump
GAS_SCHEDULE_VERSION (and a change of language or builtin semantics bumps VM_VERSION).
Costs are charged in three ways (see codegen.py and runtime.py):
- statically, per straight-line block: every AST node of the block's statements costs
  `node`, calls cost `call` more, operators that run as VM helpers `helper` more; the sum
  is charged once when the block is entered;
- per loop or comprehension iteration (the block charge of the body);
- dynamically, by operand size, BEFORE the work: big-int multiply/power per 64-bit limb
  product, string/list building per element or per 8 bytes, sorted per n*log2(n), walks
  over containers (compare, membership, export) per element, storage and events per byte.
Memory: everything that can be retained in bulk (str, containers, literals, comprehension
elements, big ints) counts against alloc_bytes_max (cumulative, never credited back);
what remains (small ints, locals) is bounded by gas at a few bytes per unit. `python -m
bench.vm` prints ns per gas unit for stress programs and the peak memory of allocation
bombs, so the two bounds can be checked together.
"""

from __future__ import annotations

from dataclasses import dataclass

VM_VERSION = 1
GAS_SCHEDULE_VERSION = 1


@dataclass(frozen=True, slots=True)
class GasSchedule:
    version: int = GAS_SCHEDULE_VERSION
    node: int = 1  # each AST node in a block
    call: int = 4  # extra per call (user function or builtin)
    helper: int = 2  # extra per operator compiled to a VM helper call (+, <, [..], x[a:b])
    function_entry: int = 10
    limb_product: int = 1  # big-int multiply: per (limbs_a * limbs_b), 64-bit limbs
    per_element: int = 1  # building/copying/walking a container, per element
    per_8_bytes: int = 1  # building/copying strings, per 8 bytes
    sort_factor: int = 2  # sorted: per n * ceil(log2 n)
    builtin_money: int = 20  # mul_div / allocate base cost (+ per_element for weights)
    builtin_calendar: int = 10
    storage_read: int = 200
    storage_read_per_byte: int = 1
    storage_write: int = 500
    storage_write_per_byte: int = 10
    event: int = 100
    event_per_byte: int = 5
    host_read: int = 50  # param / aggregate


@dataclass(frozen=True, slots=True)
class Limits:
    int_bits_max: int = 1024  # |x| < 2**1024; keeps str(int) below any int_max_str_digits
    str_len_max: int = 65_536
    container_len_max: int = 100_000
    alloc_bytes_max: int = 32 * 1024 * 1024  # cumulative, never freed in the accounting
    call_depth_max: int = 64
    data_depth_max: int = 32  # nesting of lists/dicts when walked (compare, export)
    dict_str_key_len_max: int = 256  # keeps every key comparison in a lookup cheap
    dict_int_key_max: int = 2**60  # |k| < this: int hashes are then distinct (no collisions)
    source_bytes_max: int = 64 * 1024
    ast_nodes_max: int = 20_000
    ast_depth_max: int = 60
    events_max: int = 256
    storage_writes_max: int = 256


DEFAULT_SCHEDULE = GasSchedule()
DEFAULT_LIMITS = Limits()
