"""Licence terms files (TOML or JSON) -> the ledger's `LicenceTerms`.

A terms file uses human-friendly fields: parties as member names (or 64-hex keys),
dates as YYYY-MM-DD (UTC), money as integer minor units, the rule as a library name
(contracts_vm.rules.LEDGER_RULES), a code hash, or `rule_file` (path relative to the terms
file). Example (TOML):

    licence_id = "CAM-CODEC"
    licensor = "codec"
    licensee = "oem"
    skus = ["cam-1"]
    currency = "USD"
    period = "quarter"              # month | quarter | year
    start = "2026-01-01"
    end = "2028-01-01"
    rule = "per_unit"
    rule_params = { fee_per_unit = 120 }
    legal_text = "agreement.pdf"    # hashed; or legal_text_hash = "<64 hex>"
    # optional: pool = [{ licensor = "r1", weight = 10 }], product_classes = {},
    # territories = ["DE"], payment_due_days (30), upfront_fee, minimum_annual,
    # annual_cap, advance, late_interest_bps (0), upstream_licence, passthrough_bps,
    # arbiter

Rule kept here: every bad field is reported (all of them, each with its name and why) in
one `TermsError` line, and nothing reaches the node unless the whole file is valid.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from cli.common import HEX64, code_hash, parse_date
from contracts_vm.rules import LEDGER_RULES
from node.ledger import codec, crypto
from node.ledger.calendar import PERIOD_KINDS
from node.ledger.errors import LedgerError
from node.ledger.model import LicenceTerms, PoolShare

TERMS_FILE_BYTES_MAX = 256 * 1024
REQUIRED = ("licence_id", "licensor", "licensee", "skus", "currency", "period", "start", "end")
DEFAULTS: dict[str, Any] = {
    "pool": [],
    "product_classes": {},
    "territories": [],
    "payment_due_days": 30,
    "rule_params": {},
    "upfront_fee": 0,
    "minimum_annual": 0,
    "annual_cap": 0,
    "advance": 0,
    "late_interest_bps": 0,
    "upstream_licence": "",
    "passthrough_bps": 0,
    "arbiter": "",
}
ONE_OF = (("rule", "rule_file"), ("legal_text", "legal_text_hash"))
KNOWN = frozenset(REQUIRED) | frozenset(DEFAULTS) | {k for pair in ONE_OF for k in pair}
INT_FIELDS = (
    "payment_due_days",
    "upfront_fee",
    "minimum_annual",
    "annual_cap",
    "advance",
    "late_interest_bps",
    "passthrough_bps",
)

Resolve = Callable[[str, str], bytes]  # (member name or hex, field) -> key


class TermsError(click.ClickException):
    """A terms file that cannot become licence terms; `problems` lists each bad field."""

    def __init__(self, path: pathlib.Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


@dataclass(frozen=True, slots=True)
class TermsFile:
    terms: LicenceTerms
    rule_source: str | None  # known when the rule came from the library or a file


def read_document(path: pathlib.Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = f.read(TERMS_FILE_BYTES_MAX + 1)
    except OSError as exc:
        raise TermsError(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    if len(data) > TERMS_FILE_BYTES_MAX:
        raise TermsError(path, [f"larger than {TERMS_FILE_BYTES_MAX} bytes"])
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(data)
        else:
            doc = tomllib.loads(data.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise TermsError(path, [f"not valid {kind}: {exc}"]) from exc
    if not isinstance(doc, dict):
        raise TermsError(path, ["expected a table/object of fields"])
    return doc


def load_terms(path: pathlib.Path, resolve: Resolve, licence_id: str | None = None) -> TermsFile:
    """Read and validate `path`; `licence_id` (amendments) must match or fills it in."""
    doc = read_document(path)
    if licence_id is not None:
        given = doc.setdefault("licence_id", licence_id)
        if given != licence_id:
            raise TermsError(path, [f"licence_id: the file says {given!r}, not {licence_id!r}"])
    return _Builder(path, doc, resolve).build()


class _Builder:
    def __init__(self, path: pathlib.Path, doc: dict[str, Any], resolve: Resolve) -> None:
        self.path, self.doc, self.resolve = path, doc, resolve
        self.problems: list[str] = []

    def bad(self, field: str, why: str) -> None:
        self.problems.append(f"{field}: {why}")

    def build(self) -> TermsFile:
        doc = self.doc
        for name in sorted(set(doc) - KNOWN):
            self.bad(name, "unknown field")
        for name in REQUIRED:
            if name not in doc:
                self.bad(name, "required")
        for a, b in ONE_OF:
            if (a in doc) == (b in doc):
                self.bad(a, f"give exactly one of {a} or {b}")
        values = {**DEFAULTS, **{k: v for k, v in doc.items() if k in KNOWN}}
        fields = self._fields(values)
        rule, source = self._rule(values)
        fields["rule"] = rule
        fields["legal_text_hash"] = self._legal(values)
        if self.problems:
            raise TermsError(self.path, self.problems)
        try:
            terms = LicenceTerms.from_value(fields, "terms")
        except LedgerError as exc:
            raise TermsError(self.path, [exc.detail.removeprefix("terms: ")]) from exc
        return TermsFile(terms, source)

    def _fields(self, v: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "licence_id": self._str(v, "licence_id"),
            "licensor": self._key(v, "licensor"),
            "licensee": self._key(v, "licensee"),
            "pool": self._pool(v.get("pool")),
            "skus": self._strs(v, "skus"),
            "product_classes": self._str_map(v, "product_classes"),
            "territories": self._strs(v, "territories"),
            "currency": self._str(v, "currency"),
            "period": self._period(v),
            "start_ms": self._date(v, "start"),
            "end_ms": self._date(v, "end"),
            "rule_params": self._params(v),
            "upstream_licence": self._str(v, "upstream_licence"),
            "arbiter": self._key(v, "arbiter") if v.get("arbiter") else b"",
        }
        for name in INT_FIELDS:
            out[name] = self._int(v, name)
        return out

    def _str(self, v: dict[str, Any], name: str) -> str:
        value = v.get(name, "")
        if not isinstance(value, str):
            self.bad(name, "expected a string")
            return ""
        return value

    def _int(self, v: dict[str, Any], name: str) -> int:
        value = v.get(name, 0)
        if type(value) is not int or value < 0:
            self.bad(name, "expected a whole number >= 0 (money in minor units)")
            return 0
        return value

    def _strs(self, v: dict[str, Any], name: str) -> list[str]:
        value = v.get(name, [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.bad(name, "expected a list of strings")
            return []
        return value

    def _str_map(self, v: dict[str, Any], name: str) -> dict[str, str]:
        value = v.get(name, {})
        if not isinstance(value, dict) or not all(isinstance(x, str) for x in value.values()):
            self.bad(name, "expected a table of strings")
            return {}
        return dict(value)

    def _key(self, v: dict[str, Any], name: str, where: str = "") -> bytes:
        value, where = v.get(name), where or name
        if not isinstance(value, str):
            if value is not None:
                self.bad(where, "expected a member name or a 64-hex public key")
            return b""
        try:
            return self.resolve(value, where)
        except ValueError as exc:
            self.problems.append(str(exc))
            return b""

    def _date(self, v: dict[str, Any], name: str) -> int:
        value = v.get(name)
        if isinstance(value, dt.datetime):
            self.bad(name, "expected a date YYYY-MM-DD, not a date-time")
            return 0
        if isinstance(value, dt.date):
            value = value.isoformat()
        if not isinstance(value, str):
            if value is not None:
                self.bad(name, "expected a date YYYY-MM-DD")
            return 0
        try:
            return parse_date(value, name)
        except ValueError as exc:
            self.problems.append(str(exc))
            return 0

    def _period(self, v: dict[str, Any]) -> str:
        value = v.get("period")
        if value is not None and value not in PERIOD_KINDS:
            self.bad("period", f"expected one of {', '.join(PERIOD_KINDS)}, got {value!r}")
        return value if isinstance(value, str) else ""

    def _pool(self, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            self.bad("pool", "expected a list of {licensor, weight}")
            return []
        out = []
        for i, item in enumerate(value):
            where = f"pool[{i}]"
            if not isinstance(item, dict) or set(item) != {"licensor", "weight"}:
                self.bad(where, "expected exactly {licensor, weight}")
                continue
            key = self._key(item, "licensor", f"{where}.licensor")
            weight = item["weight"]
            if type(weight) is not int or weight <= 0:
                self.bad(f"{where}.weight", "expected a whole number > 0")
                continue
            out.append(PoolShare(key or b"\0" * 32, weight).to_value())
        return out

    def _params(self, v: dict[str, Any]) -> dict[str, Any]:
        value = v.get("rule_params", {})
        if not isinstance(value, dict):
            self.bad("rule_params", "expected a table")
            return {}
        try:
            decoded: dict[str, Any] = codec.decode(codec.encode(value))
        except LedgerError as exc:
            self.bad("rule_params", f"{exc.detail} (whole numbers only: minor units, bps)")
            return {}
        return decoded

    def _rule(self, v: dict[str, Any]) -> tuple[bytes, str | None]:
        if "rule_file" in v:
            name = v["rule_file"]
            if not isinstance(name, str):
                self.bad("rule_file", "expected a path")
                return b"", None
            path = self.path.parent / name
            try:
                source = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                self.bad("rule_file", f"cannot read {path}: {exc}")
                return b"", None
            return code_hash(source), source
        rule = v.get("rule")
        if not isinstance(rule, str):
            if rule is not None:
                self.bad("rule", "expected a library rule name or a code hash")
            return b"", None
        if HEX64.match(rule):
            return bytes.fromhex(rule.lower()), None
        if rule in LEDGER_RULES:
            return code_hash(LEDGER_RULES[rule]), LEDGER_RULES[rule]
        self.bad("rule", f"unknown library rule {rule!r} (library: {', '.join(LEDGER_RULES)})")
        return b"", None

    def _legal(self, v: dict[str, Any]) -> bytes:
        if "legal_text_hash" in v:
            value = v["legal_text_hash"]
            if isinstance(value, str) and HEX64.match(value):
                return bytes.fromhex(value.lower())
            self.bad("legal_text_hash", "expected 64 hex digits")
            return b""
        name = v.get("legal_text")
        if not isinstance(name, str):
            return b""
        path = self.path.parent / name
        try:
            return crypto.sha256(path.read_bytes())
        except OSError as exc:
            self.bad("legal_text", f"cannot read {path}: {exc.strerror or exc}")
            return b""


def terms_from_json(doc: dict[str, Any]) -> LicenceTerms:
    """Rebuild the ledger record from the API's JSON (hex byte strings)."""
    hex_fields = ("licensor", "licensee", "rule", "legal_text_hash", "arbiter")
    value = {k: bytes.fromhex(v) if k in hex_fields else v for k, v in doc.items()}
    value["pool"] = [
        {"licensor": bytes.fromhex(p["licensor"]), "weight": p["weight"]} for p in doc["pool"]
    ]
    return LicenceTerms.from_value(value, "terms")
