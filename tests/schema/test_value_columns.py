"""A column parsed at once gives each cell's parser value, or leaves the column to the parser:
it never accepts a cell the parser refuses, nor normalises one differently."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from credbatch.schema import values
from credbatch.schema.values import Value

_local_char = st.sampled_from(list("aZ09.-_+!#'`{|}~=?^$%&*/\"(),:;<>[]\\ @\n\u00e9\u212a"))
_domain_char = st.sampled_from(list("aZ09.-_\n\u00e9\u212a@ "))
_tld = st.sampled_from(
    [
        *("com", "COM", "Org", "uk", "c", "1", "test", "TEST", "local", "Localhost", "arpa"),
        *("onion", "invalid", "xn--p1ai", "k\u212a", "example", "a" * 63, "a" * 64, ""),
    ]
)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    local = draw(st.text(_local_char, min_size=0, max_size=8))
    if draw(st.booleans()):
        local = draw(st.sampled_from(["a" * 64, "a" * 65, "a." * 32 + "a", ".a", "a.", "a..b"]))
    labels = draw(st.lists(st.text(_domain_char, min_size=0, max_size=6), min_size=0, max_size=3))
    if draw(st.booleans()):
        labels.append(draw(st.sampled_from(["a" * 63, "a" * 64, "x-y", "x--y", "-x", "x-"])))
    domain = ".".join([*labels, draw(_tld)])
    address = f"{local}@{domain}"
    if draw(st.booleans()):
        address = "a" * (254 - len(address)) + address if len(address) < 254 else address
    return address


def _by_cell(parse: Callable[[str], Value], cells: list[str]) -> list[Value] | None:
    try:
        return [parse(cell) for cell in cells]
    except values._Invalid:
        return None


def _agrees(column: values.ColumnParser, parse: Callable[[str], Value], cells: list[str]) -> None:
    found = column(cells)
    if found is not None:
        expected = _by_cell(parse, cells)
        assert expected is not None, "the column accepted a cell its parser refuses"
        assert found == expected
        assert list(map(type, found)) == list(map(type, expected))


# Drawing these inputs is slow on a busy machine (the email strategy builds its domains on
# first use); the health check then fails on time, not on an input.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(
        addresses() | st.emails().map(str) | st.sampled_from(["holder1@example.com"]),
        min_size=1,
        max_size=3,
    )
)
@example(cells=["holder1@example.com", "a@ab--c.com"])
@example(cells=["holder1@example.com", "a@b.TEST"])
@example(cells=["holder1@example.com", "a@b.Local"])
@example(cells=["holder1@example.com", "a" * 60 + "@" + ("b" * 63 + ".") * 3 + "com"])
@example(cells=["holder1@example.com", "a" * 33 + "." + "a" * 32 + "@b.com"])
@example(cells=["a@B.com", "c@d.ORG"])
@example(cells=["a@b.com\nc@d.com"])
def test_email_column(cells: list[str]) -> None:
    cells = [cell.strip() for cell in cells if cell.strip()] or ["a@b.com"]
    _agrees(values._email_column, values._parse_email, cells)


_digits = st.text(st.sampled_from(list("0123456789+-.eE \n\u0660")), min_size=1, max_size=22)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(_digits | st.integers().map(str), min_size=1))
@example(cells=[str(2**63 - 1), str(2**63)])
@example(cells=[str(-(2**63)), str(-(2**63) - 1)])
@example(cells=["1\n2"])
def test_integer_column(cells: list[str]) -> None:
    cells = [cell.strip() for cell in cells if cell.strip()] or ["1"]
    _agrees(values._integer_column, values._parse_integer, cells)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(_digits | st.decimals(allow_nan=False).map(str), min_size=1))
def test_number_column(cells: list[str]) -> None:
    cells = [cell.strip() for cell in cells if cell.strip()] or ["1"]
    _agrees(values._number_column, values._parse_number, cells)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(
        st.dates().map(str) | st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
        min_size=1,
    )
)
@example(cells=["2024-02-29", "2023-02-29"])
def test_date_column(cells: list[str]) -> None:
    _agrees(values._date_column, values._parse_date, cells)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(st.sampled_from(["Gold", "gold", "GOLD", "Silver", "x", "\u00df"]), min_size=1)
)
def test_enum_column(cells: list[str]) -> None:
    allowed = ("Gold", "Silver", "SS")
    _agrees(values._enum_column(allowed), values._enum_parser(allowed), cells)


def test_plain_columns_take_the_fast_path() -> None:
    # The columns of almost every file: answered here, not left to the parsers.
    assert values._email_column(["holder1@example.com", "a.b@Mail.Example.org"]) == [
        "holder1@example.com",
        "a.b@mail.example.org",
    ]
    assert values._integer_column(["1", "-20", "+3"]) == [1, -20, 3]
    assert values._date_column(["1999-01-02"]) is not None
    assert values._number_column(["1.25", ".5", "3e2"]) is not None
