"""Per-type value rules for CSV cells, compiled once per schema and mediums.

`compile_row_validator` builds one small parser closure per column up front, so validating a
row is a loop over (position, parser) pairs with no lookups by type or name. A parser returns
the normalised typed value or raises _Invalid with a stable code; errors are rare, so the
exception costs nothing on the hot path. Messages never repeat the cell's value: they may be
logged by callers, and cells are personal data.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple, cast
from urllib.parse import urlsplit

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from credbatch.schema import phone_parse, phone_validity
from credbatch.schema.columns import Column, expected_columns, recipient_columns
from credbatch.schema.examples import example_value
from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion

__all__ = [
    "CellError",
    "RowResult",
    "RowValidator",
    "Value",
    "compile_row_validator",
    "example_value",
]

Value = str | int | Decimal | bool | datetime.date

REQUIRED_VALUE_MISSING = "REQUIRED_VALUE_MISSING"
VALUE_TOO_LONG = "VALUE_TOO_LONG"
INVALID_INTEGER = "INVALID_INTEGER"
INVALID_NUMBER = "INVALID_NUMBER"
INVALID_BOOLEAN = "INVALID_BOOLEAN"
INVALID_DATE = "INVALID_DATE"
INVALID_EMAIL = "INVALID_EMAIL"
INVALID_PHONE = "INVALID_PHONE"
INVALID_URL = "INVALID_URL"
INVALID_ENUM = "INVALID_ENUM"

# Longest cell accepted, in characters: a claim value, not a document.
MAX_VALUE_LENGTH = 4096
MAX_URL_LENGTH = 2048
# Integers are claims read by any JSON stack: keep them within signed 64 bits.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
# Plain decimal notation with an optional, bounded exponent: no NaN, Infinity, or 1e999999.
_NUMBER = re.compile(
    r"[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,3})?"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}){0,31}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,63}"
)
_SPECIAL_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES)
# Top-level domains that can exist: two or more letters, or an IDN A-label. email-validator
# accepts `example.c`; mail to it can never be delivered (GOV.UK Notify refuses it as well).
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_BOOLEANS: dict[str, bool] = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "1": True,
    "0": False,
}


class _Invalid(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CellError:
    """One invalid cell: its column name, a stable code and a message without the value."""

    column: str
    code: str
    message: str


class RowResult(NamedTuple):
    """Normalised values by column name (absent optional cells left out), or the errors."""

    values: dict[str, Value]
    errors: list[CellError]


Parser = Callable[[str], Value]


def _parse_string(raw: str) -> Value:
    return raw


def _parse_integer(raw: str) -> Value:
    if _INTEGER.fullmatch(raw) is None:
        raise _Invalid(INVALID_INTEGER, "not a whole number (digits with an optional sign)")
    value = int(raw)
    if not INT_MIN <= value <= INT_MAX:
        raise _Invalid(INVALID_INTEGER, "whole number out of the 64-bit range")
    return value


def _parse_number(raw: str) -> Value:
    if _NUMBER.fullmatch(raw) is None:
        raise _Invalid(INVALID_NUMBER, "not a decimal number (e.g. 3.14, with a dot)")
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        raise _Invalid(INVALID_NUMBER, "not a decimal number") from None


def _parse_boolean(raw: str) -> Value:
    value = _BOOLEANS.get(raw.lower())
    if value is None:
        raise _Invalid(INVALID_BOOLEAN, "not a boolean (true/false, yes/no, y/n or 1/0)")
    return value


def _parse_date(raw: str) -> Value:
    if _DATE.fullmatch(raw) is None:
        raise _Invalid(INVALID_DATE, "not a date written YYYY-MM-DD")
    try:
        return datetime.date.fromisoformat(raw)
    except ValueError:
        raise _Invalid(INVALID_DATE, "not an existing calendar date") from None


def _parse_email(raw: str) -> Value:
    # Nearly every address is plain ASCII: this pattern accepts only addresses that
    # email-validator accepts too and normalises the same way (tests/schema check it), at a
    # small fraction of its cost. Everything else takes the full validator.
    if len(raw) <= 254 and _PLAIN_EMAIL.fullmatch(raw) is not None:
        local, _, domain = raw.rpartition("@")
        if (
            len(local) <= 64
            and "--" not in domain
            and domain.rpartition(".")[2].lower() not in _SPECIAL_TLDS
        ):
            return f"{local}@{domain.lower()}"
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        raise _Invalid(INVALID_EMAIL, "not a valid email address") from None
    if _TLD.fullmatch(result.ascii_domain.rpartition(".")[2].lower()) is None:
        raise _Invalid(
            INVALID_EMAIL,
            "not a valid email address: its top-level domain cannot exist "
            "(a single letter or digits)",
        )
    normalized: str = result.normalized
    return normalized


def _phone_parser(default_region: str) -> Parser:
    parse = phone_parse.parse_number
    is_valid = phone_validity.is_valid
    format_number = phonenumbers.format_number
    e164 = phonenumbers.PhoneNumberFormat.E164
    region = default_region.upper()

    def parse_phone(raw: str) -> Value:
        try:
            number = parse(raw, region)
        except phonenumbers.NumberParseException:
            raise _Invalid(INVALID_PHONE, "not a phone number") from None
        if not is_valid(number):
            raise _Invalid(
                INVALID_PHONE,
                f"not a valid phone number (numbers without +country code are read as {region})",
            )
        formatted: str = format_number(number, e164)
        return formatted

    return parse_phone


def _parse_url(raw: str) -> Value:
    if len(raw) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 0x20 for c in raw):
        raise _Invalid(INVALID_URL, "not a URL (too long or holds spaces or control characters)")
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise _Invalid(INVALID_URL, "not a well-formed URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _Invalid(INVALID_URL, "not an absolute http or https URL")
    return raw


def _enum_parser(values: Sequence[str]) -> Parser:
    canonical = {value.casefold(): value for value in values}
    allowed = ", ".join(values)

    def parse_enum(raw: str) -> Value:
        value = canonical.get(raw.casefold())
        if value is None:
            raise _Invalid(INVALID_ENUM, f"not one of the allowed values: {allowed}")
        return value

    return parse_enum


def _parser_for(attribute: Attribute, default_region: str) -> Parser:
    kind = attribute.type
    if kind is AttributeType.STRING:
        return _parse_string
    if kind is AttributeType.INTEGER:
        return _parse_integer
    if kind is AttributeType.NUMBER:
        return _parse_number
    if kind is AttributeType.BOOLEAN:
        return _parse_boolean
    if kind is AttributeType.DATE:
        return _parse_date
    if kind is AttributeType.EMAIL:
        return _parse_email
    if kind is AttributeType.PHONE:
        return _phone_parser(default_region)
    if kind is AttributeType.URL:
        return _parse_url
    return _enum_parser(attribute.enum_values)


ColumnParser = Callable[[list[str]], list[Value] | None]
"""A column's cells (stripped, none empty) parsed at once: each its parser's value, or None
when a cell may be invalid or needs its parser's slower path (the parser then decides)."""

# Cells joined with a line feed, one pattern for the column; a cell holding a line feed itself
# would be read as two, so the count of line feeds is checked too.
_INTEGERS = re.compile(rf"(?:{_INTEGER.pattern}\n)*")
_NUMBERS = re.compile(rf"(?:{_NUMBER.pattern}\n)*")
_DATES = re.compile(rf"(?:{_DATE.pattern}\n)*")
# What _parse_email's plain path accepts, the length checks and the refused domains as
# lookaheads: at most 254 characters, a local part of at most 64, no `--` in the domain, a
# top-level domain that is not a special-use name.
_PLAIN_EMAILS = re.compile(
    r"(?:(?=[^\n]{1,254}\n)(?=[^@\n]{1,64}@)"
    + _PLAIN_EMAIL.pattern.replace("@", r"@(?![^\n]*--)", 1).replace(
        "[A-Za-z]{2,63}",
        rf"(?!(?i:{'|'.join(map(re.escape, sorted(_SPECIAL_TLDS)))})\n)[A-Za-z]{{2,63}}",
    )
    + r"\n)*",
)
_UPPER_IN_DOMAIN = re.compile(r"@[^\n]*[A-Z]")


def _joined(cells: list[str]) -> str | None:
    text = "\n".join(cells) + "\n"
    return text if text.count("\n") == len(cells) else None


def _string_column(cells: list[str]) -> list[Value] | None:
    return cast("list[Value]", cells)


def _integer_column(cells: list[str]) -> list[Value] | None:
    text = _joined(cells)
    if text is None or _INTEGERS.fullmatch(text) is None:
        return None
    values = list(map(int, cells))
    if min(values) < INT_MIN or max(values) > INT_MAX:
        return None
    return cast("list[Value]", values)


def _number_column(cells: list[str]) -> list[Value] | None:
    text = _joined(cells)
    if text is None or _NUMBERS.fullmatch(text) is None:
        return None
    return list(map(Decimal, cells))


def _date_column(cells: list[str]) -> list[Value] | None:
    text = _joined(cells)
    if text is None or _DATES.fullmatch(text) is None:
        return None
    try:
        return list(map(datetime.date.fromisoformat, cells))
    except ValueError:
        return None


def _email_column(cells: list[str]) -> list[Value] | None:
    text = _joined(cells)
    if text is None or _PLAIN_EMAILS.fullmatch(text) is None:
        return None
    if _UPPER_IN_DOMAIN.search(text) is None:
        return cast("list[Value]", cells)  # normalised already: no capital in any domain
    return list(map(_parse_email, cells))


def _enum_column(values: Sequence[str]) -> ColumnParser:
    canonical = {value.casefold(): value for value in values}

    def parse_enums(cells: list[str]) -> list[Value] | None:
        found = list(map(canonical.get, map(str.casefold, cells)))
        return None if None in found else cast("list[Value]", found)

    return parse_enums


def _column_parser_for(column: Column) -> ColumnParser | None:
    attribute = column.attribute
    if attribute is None:
        return _email_column if column.name == "email" else None
    kind = attribute.type
    if kind is AttributeType.ENUM:
        return _enum_column(attribute.enum_values)
    return _COLUMN_PARSERS.get(kind)


_COLUMN_PARSERS: dict[AttributeType, ColumnParser] = {
    AttributeType.STRING: _string_column,
    AttributeType.INTEGER: _integer_column,
    AttributeType.NUMBER: _number_column,
    AttributeType.DATE: _date_column,
    AttributeType.EMAIL: _email_column,
}


class RowValidator:
    """Validates rows of one schema and mediums; build it once per file, reuse for every row."""

    def __init__(
        self,
        columns: Sequence[Column],
        parsers: Sequence[Parser],
        positions: Sequence[int] | None = None,
        column_parsers: Sequence[ColumnParser | None] | None = None,
    ) -> None:
        self.columns = tuple(columns)
        self._parsers = tuple(parsers)
        self._column_parsers = tuple(
            [None] * len(self.columns) if column_parsers is None else column_parsers
        )
        self.positions = tuple(range(len(columns)) if positions is None else positions)
        if len(self.positions) != len(self.columns):
            raise ValueError("one position per expected column is needed")
        self._plan = tuple(
            (column.name, position, column.required, parser)
            for column, position, parser in zip(
                self.columns, self.positions, self._parsers, strict=True
            )
        )
        self._column_plan = tuple(
            (*step, column_parser)
            for step, column_parser in zip(self._plan, self._column_parsers, strict=True)
        )

    def with_positions(self, positions: Sequence[int]) -> RowValidator:
        """The same rules for a file whose columns sit at these cell indices.

        Pass HeaderMatch.positions; a position of -1 (missing column) reads as empty.
        """
        return RowValidator(self.columns, self._parsers, positions, self._column_parsers)

    def validate(self, cells: Sequence[str]) -> RowResult:
        """Normalised values of one row, or every invalid cell of it.

        Cells beyond the end of a short row read as empty.
        """
        values: dict[str, Value] = {}
        errors: list[CellError] = []
        count = len(cells)
        for name, position, required, parser in self._plan:
            raw = cells[position].strip() if 0 <= position < count else ""
            if not raw:
                if required:
                    errors.append(CellError(name, REQUIRED_VALUE_MISSING, "a value is required"))
                continue
            if len(raw) > MAX_VALUE_LENGTH:
                errors.append(
                    CellError(name, VALUE_TOO_LONG, f"longer than {MAX_VALUE_LENGTH} characters")
                )
                continue
            try:
                values[name] = parser(raw)
            except _Invalid as invalid:
                errors.append(CellError(name, invalid.code, invalid.message))
        return RowResult(values, errors)

    def validate_columns(
        self, rows: Sequence[Sequence[str]]
    ) -> dict[str, list[Value | None]] | None:
        """Every row's normalised values, column by column (None for an empty optional
        cell), when no cell of ``rows`` is invalid; None as soon as one is (``validate``
        each row then, for its errors).

        The rows must all be as wide as the file (every position within them). Working a
        column at a time keeps the per-cell steps in C (``map``), where ``validate`` pays the
        interpreter for each cell: a few times faster on the rows almost every file holds.
        """
        if not rows:
            return {name: [] for name, _, _, _ in self._plan}
        cells_by_position = list(zip(*rows, strict=True))
        columns: dict[str, list[Value | None]] = {}
        for name, position, required, parser, column_parser in self._column_plan:
            if position < 0:
                if required:
                    return None
                columns[name] = [None] * len(rows)
                continue
            cells = list(map(str.strip, cells_by_position[position]))
            if max(map(len, cells)) > MAX_VALUE_LENGTH:
                return None
            try:
                if all(cells):
                    parsed = None if column_parser is None else column_parser(cells)
                    if parsed is None:
                        parsed = list(map(parser, cells))
                    columns[name] = cast("list[Value | None]", parsed)
                elif required:
                    return None
                else:
                    columns[name] = [parser(cell) if cell else None for cell in cells]
            except _Invalid:
                return None
        return columns


def compile_row_validator(
    schema: SchemaVersion, mediums: Collection[Medium], default_region: str = "US"
) -> RowValidator:
    """Compile the value rules of every expected column (see columns.expected_columns).

    default_region is the ISO 3166 region used for phone numbers written without
    +country code. Compiled once per process for each schema version, mediums and region:
    the rules are a function of their values alone (the whole schema version is the key, so
    another version or another schema is compiled anew) and a RowValidator never changes.
    """
    return _compiled_rules(schema, frozenset(mediums), default_region)


@functools.lru_cache(maxsize=256)
def _compiled_rules(
    schema: SchemaVersion, mediums: frozenset[Medium], default_region: str
) -> RowValidator:
    return _compile(expected_columns(schema, mediums), default_region)


def compile_recipient_validator(
    mediums: Collection[Medium], default_region: str = "US"
) -> RowValidator:
    """The upload's rules for the recipient columns alone (`email`, then `phone`, as the
    mediums add them): a contact changed after the upload is held to exactly these."""
    return _compile(recipient_columns(mediums), default_region)


def _compile(columns: Sequence[Column], default_region: str) -> RowValidator:
    phone = _phone_parser(default_region)
    parsers: list[Parser] = []
    for column in columns:
        if column.attribute is not None:
            parsers.append(_parser_for(column.attribute, default_region))
        elif column.name == "email":
            parsers.append(_parse_email)
        else:
            parsers.append(phone)
    return RowValidator(columns, parsers, column_parsers=list(map(_column_parser_for, columns)))


def normalize_email(raw: str) -> str:
    """``raw`` as an upload stores a recipient email, so a lookup finds what was stored.

    Raises:
        ValueError: not an email address an upload would accept (the message says why,
            without the value).
    """
    try:
        return str(_parse_email(raw.strip()))
    except _Invalid as invalid:
        raise ValueError(invalid.message) from None


def normalize_phone(raw: str, default_region: str) -> str:
    """``raw`` in E.164 as an upload stores a recipient phone (``default_region`` for numbers
    without a country code).

    Raises:
        ValueError: not a phone number an upload would accept (the message says why).
    """
    try:
        return str(_phone_parser(default_region)(raw.strip()))
    except _Invalid as invalid:
        raise ValueError(invalid.message) from None
