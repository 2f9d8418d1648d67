"""CsvStreamReader: encodings, line ends, RFC 4180 quoting, row numbers, bounded records."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credbatch.csvstream import CsvFormatError, CsvStreamReader, Row, iter_rows


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _read(data: bytes, size: int = 7) -> list[Row]:
    return list(iter_rows(_split(data, size)))


def _reference(text: str) -> list[Row]:
    """What csv.reader makes of the whole text, numbered, trailing blank records dropped."""
    rows: list[Row] = []
    for number, fields in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        blank = not "".join(fields).strip()
        rows.append((number, [] if blank else fields))
    while rows and not rows[-1][1]:
        rows.pop()
    return rows


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64, 1 << 20])
def test_quoted_commas_quotes_and_newlines_across_any_chunking(size: int) -> None:
    data = b'email,note\r\n"a@x.io","one, two ""three""\r\nfour"\r\nb@x.io,plain\r\n'
    assert _read(data, size) == [
        (1, ["email", "note"]),
        (2, ["a@x.io", 'one, two "three"\r\nfour']),
        (3, ["b@x.io", "plain"]),
    ]


def test_a_record_spanning_lines_is_one_spreadsheet_row() -> None:
    data = b'h1,h2\n"multi\nline\nvalue",x\nnext,y\n'
    assert [row for row, _ in _read(data)] == [1, 2, 3]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_ends(newline: bytes) -> None:
    data = newline.join([b"a,b", b"1,2", b"3,4"]) + newline
    assert _read(data, 3) == [(1, ["a", "b"]), (2, ["1", "2"]), (3, ["3", "4"])]


def test_bom_is_dropped_even_when_split() -> None:
    data = "\ufeffemail\nx@y.z\n".encode()
    assert _read(data, 1) == [(1, ["email"]), (2, ["x@y.z"])]


def test_no_final_newline() -> None:
    assert _read(b"a,b\n1,2", 2) == [(1, ["a", "b"]), (2, ["1", "2"])]


def test_trailing_blank_lines_and_empty_rows_are_ignored() -> None:
    data = b"a,b\n1,2\n\n,\n  ,  \r\n\n"
    assert _read(data) == [(1, ["a", "b"]), (2, ["1", "2"])]


def test_blank_rows_before_data_are_reported_with_their_row() -> None:
    data = b"a,b\n\n,\n1,2\n"
    assert _read(data) == [(1, ["a", "b"]), (2, []), (3, []), (4, ["1", "2"])]


def test_latin1_is_refused_naming_offset_and_row() -> None:
    data = "email,name\nx@y.z,Ren\u00e9e\n".encode("latin-1")
    reader = CsvStreamReader()
    rows: list[Row] = []
    with pytest.raises(CsvFormatError) as info:
        for chunk in _split(data, 4):
            rows.extend(reader.feed(chunk))
        rows.extend(reader.finish())
    assert info.value.code == "NOT_UTF8"
    assert info.value.byte_offset == data.index(b"\xe9")
    assert info.value.row == 2
    assert "not UTF-8" in info.value.message and "0xE9" in info.value.message
    assert rows == [(1, ["email", "name"])]


def test_truncated_utf8_sequence_at_end_is_refused() -> None:
    with pytest.raises(CsvFormatError) as info:
        _read(b"a\n\xc3")
    assert info.value.code == "NOT_UTF8"
    assert info.value.byte_offset == 2


def test_utf16_is_refused_with_its_name() -> None:
    with pytest.raises(CsvFormatError) as info:
        _read("email\nx@y.z\n".encode("utf-16"))
    assert info.value.code == "NOT_UTF8"
    assert "UTF-16" in info.value.message


def test_unclosed_quote_names_the_row_where_it_opens() -> None:
    with pytest.raises(CsvFormatError) as info:
        _read(b'a,b\n1,2\n3,"open\n4,5\n')
    assert info.value.code == "UNCLOSED_QUOTE"
    assert info.value.row == 3


def test_record_length_is_bounded() -> None:
    reader = CsvStreamReader(max_record_chars=100)
    with pytest.raises(CsvFormatError) as info:
        for _ in reader.feed(b'a\n"' + b"x" * 50):
            pass
        for _ in reader.feed(b"y" * 60):
            pass
    assert info.value.code == "RECORD_TOO_LONG"
    assert info.value.row == 2


def test_unterminated_line_is_bounded_too() -> None:
    reader = CsvStreamReader(max_record_chars=100)
    with pytest.raises(CsvFormatError) as info:
        for _ in reader.feed(b"a\n" + b"x" * 200):
            pass
    assert info.value.code == "RECORD_TOO_LONG"


def test_ragged_rows_keep_their_field_counts() -> None:
    rows = _read(b"a,b,c\n1,2\n1,2,3,4\n")
    assert [len(fields) for _, fields in rows] == [3, 2, 4]


_cells = st.text(alphabet=st.sampled_from(list('ab,"\r\n \u00e9\U0001f600')), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list('ab,"\r\n \u00e9')), max_size=80),
    size=st.integers(min_value=1, max_value=9),
)
def test_chunked_reading_equals_csv_module_on_the_whole_text(text: str, size: int) -> None:
    data = text.encode()
    try:
        rows = _read(data, size)
    except CsvFormatError as error:
        assert error.code == "UNCLOSED_QUOTE"
        return
    assert rows == _reference(text)


@settings(max_examples=200, deadline=None)
@given(
    table=st.lists(st.lists(_cells, min_size=1, max_size=4), min_size=1, max_size=6),
    size=st.integers(min_value=1, max_value=9),
)
def test_written_csv_reads_back(table: list[list[str]], size: int) -> None:
    out = io.StringIO(newline="")
    csv.writer(out).writerows(table)
    rows = _read(out.getvalue().encode(), size)
    expected = [
        (number, [] if not "".join(fields).strip() else fields)
        for number, fields in enumerate(table, start=1)
    ]
    while expected and not expected[-1][1]:
        expected.pop()
    # csv.writer writes a lone empty field as `""`, which reads back as one empty field.
    assert [(n, f if f != [""] else []) for n, f in rows] == expected


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), size=st.integers(min_value=1, max_value=17))
def test_arbitrary_bytes_never_crash(data: bytes, size: int) -> None:
    try:
        rows = _read(data, size)
    except CsvFormatError as error:
        assert error.row >= 1
        assert error.code in {"NOT_UTF8", "UNCLOSED_QUOTE", "RECORD_TOO_LONG", "MALFORMED_CSV"}
        return
    numbers = [row for row, _ in rows]
    assert numbers == sorted(set(numbers))


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet='ab,"\r\n \u00e9\u20ac', max_size=120),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_where_the_chunks_split_never_changes_the_parse(text: str, cuts: list[int]) -> None:
    data = text.encode()
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]

    def parse(chunks: list[bytes]) -> tuple[list[Row], str | None]:
        rows: list[Row] = []
        try:
            for found in iter_rows(chunks):
                rows.append(found)
        except CsvFormatError as error:
            return rows, error.code
        return rows, None

    assert parse(pieces) == parse([data])


def test_a_one_megabyte_line_in_small_chunks_is_read_in_linear_time() -> None:
    import time

    # 1 MiB in fields of 1,000 characters (csv's own limit is 128 KiB per field).
    fields = ["x" * 999] * 1049
    line = ",".join(fields).encode()
    data = b"a\n" + line + b"\n"
    started = time.process_time()
    rows = list(iter_rows(_split(data, 100), max_record_chars=2 << 20))
    elapsed = time.process_time() - started
    assert rows == [(1, ["a"]), (2, fields)]
    # The quadratic reading this replaced took about 16 s of CPU here.
    assert elapsed < 1.0
