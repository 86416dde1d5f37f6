"""Files of phone numbers people upload or download (no Odoo import): decode, sniff, find the columns,
stream the rows; write CSV files that spreadsheets open without running formulas.

A file is CSV or plain text: one number per line, or columns separated by commas, semicolons or
tabs, with a header row or not. :class:`NumberFile` reads it from its bytes and yields its rows one
at a time (the decoded text is never held whole); every problem is a :class:`NumberFileError`
whose ``code`` (below) and ``params`` the caller words for people.

>>> numbers = NumberFile("Numéro;Nom\\n06 11 22 33 44;Élodie\\n\\n'06 11 22 33 45';Zoë\\n".encode("utf-8-sig"))
>>> numbers.delimiter, numbers.header, numbers.columns
(';', ['Numéro', 'Nom'], {'number': 0, 'name': 1})
>>> [(row.line, row.number, row.name) for row in numbers]
[(2, '06 11 22 33 44', 'Élodie'), (4, '06 11 22 33 45', 'Zoë')]
>>> numbers.blank_count
1
>>> try:
...     NumberFile(b"name;city\\nJohn;Paris\\n")
... except NumberFileError as error:
...     print(error.code, error.params)
no_number_column {'header': ['name', 'city']}
"""

import codecs
import csv
import io
import itertools
import re
import unicodedata
from typing import NamedTuple

# Why a file cannot be read (``NumberFileError.code``) and its ``params``.
EMPTY = "empty"  # nothing but blanks
SPREADSHEET = "spreadsheet"  # an xlsx, ods or xls file, to save as CSV first
BINARY = "binary"  # not a text file at all
TOO_MANY_LINES = "too_many_lines"  # count, max
NO_NUMBER_COLUMN = "no_number_column"  # header: the header row's cells, None without a header
BAD_LINE = "bad_line"  # line, error: a line the CSV reader cannot read
UNCLOSED_QUOTE = "unclosed_quote"  # line: a quote opened there runs over the next lines
CELL_TOO_LONG = "cell_too_long"  # line, max: a cell of more than MAX_CELL characters
NO_NUMBERS = "no_numbers"  # a header and nothing else

# Roles of the columns.
NUMBER = "number"
NAME = "name"
COUNTRY = "country"
REASON = "reason"
# Header names, compared after lower-casing, removing accents and punctuation.
HEADERS = {
    NUMBER: frozenset(
        {
            "number", "numbers", "phone", "phones", "phone number", "phone numbers", "mobile", "mobiles",
            "mobile number", "mobile phone", "cell", "cellphone", "cell phone", "tel", "telephone", "gsm",
            "sms", "sms number", "msisdn", "e164",
            # French
            "numero", "numeros", "numero de telephone", "num", "portable", "numero de portable",
            # Italian
            "numero di telefono", "telefono", "cellulare", "numero di cellulare",
        }
    ),  # fmt: skip
    NAME: frozenset(
        {"name", "full name", "contact", "contact name", "nom", "nom complet", "nome", "nome completo", "nominativo"}
    ),
    COUNTRY: frozenset({"country", "country code", "pays", "code pays", "paese", "nazione", "codice paese", "iso"}),
    REASON: frozenset(
        {"reason", "note", "comment", "source", "motif", "raison", "commentaire", "motivo", "nota", "commento"}
    ),
}

SNIFF_LINES = 50
MAX_LINES = 1_000_000  # the imports' limit (an argument of NumberFile: None reads any length)
MAX_CELL = 1024  # characters: a number, a name, a country or a note is far shorter
DELIMITERS = ("\t", ";", ",")
BINARY_SIGNATURES = (
    (b"PK\x03\x04", SPREADSHEET),  # xlsx, ods (zip containers)
    (b"\xd0\xcf\x11\xe0", SPREADSHEET),  # xls and other OLE documents
    (b"%PDF", BINARY),
    (b"\x89PNG", BINARY),
    (b"\xff\xd8\xff", BINARY),
    (b"GIF8", BINARY),
)
_CHECKED = 65536  # the first bytes / characters looked at for binary content
_CHUNK = 1 << 18
_PHONE_LOOKING = re.compile(r"\s*\+?[\d\s().\-/]{6,}\s*")
_CLEAN_KEY = re.compile(r"[^a-z0-9]+")


# Cells a spreadsheet reads as a formula (OWASP "CSV injection"): neutralised on writing.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class NumberFileError(Exception):
    """A file that cannot be imported: ``code`` says why, ``params`` give the details."""

    def __init__(self, code, **params):
        super().__init__(code, params)
        self.code = code
        self.params = params


class NumberRow(NamedTuple):
    """A non-blank line: its number (1-based, the last physical line of the record), the values of
    the known columns ("" when absent) and all its cells, stripped of blanks and quotes."""

    line: int
    number: str
    name: str
    country: str
    reason: str
    cells: list


def ascii_key(value):
    """Lower-case ASCII form of a header or country name.

    >>> ascii_key(" Numéro de Téléphone: ")
    'numero de telephone'
    """
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return _CLEAN_KEY.sub(" ", value.lower()).strip()


def clean_cell(value):
    """A cell without surrounding blanks and quotes; so also without the apostrophe
    :func:`neutralise_cell` puts before a number such as +33..., and our own exports read back.

    >>> clean_cell(" '06 12 34 56 78' "), clean_cell("'+33612345678")
    ('06 12 34 56 78', '+33612345678')
    """
    return value.strip().strip("\"'").strip()


def neutralise_cell(value):
    """``value`` as a CSV cell no spreadsheet runs as a formula (OWASP "CSV injection"): text
    starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe.

    E.164 numbers (+33...) get it too, as OWASP says: a rule "a number is safe" is one more thing
    to get wrong, and a spreadsheet would turn +33612345678 into 33612345678 anyway. Every reader
    of number files here (:func:`clean_cell`) strips it, so an export imports back as it was.
    Other values (numbers, None) are left as they are.

    >>> [neutralise_cell(v) for v in ("=1+2", "+33612345678", "-", "@SUM(A1)", chr(9) + "x", "06 12", 7, "")]
    ["'=1+2", "'+33612345678", "'-", "'@SUM(A1)", "'\\tx", '06 12', 7, '']
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(stream, header, rows, lineterminator="\r\n", delimiter=","):
    """Write ``header`` and ``rows`` (iterables of cells) as CSV text to ``stream``, every cell
    through :func:`neutralise_cell`, separated by ``delimiter``; no header row when ``header`` is
    None. Rows are consumed one at a time (a generator stays a stream).

    >>> out = io.StringIO()
    >>> write_csv(out, ["number", "note"], [("+33612345678", '=HYPERLINK("http://x")')], chr(10))
    >>> print(out.getvalue(), end="")
    number,note
    '+33612345678,"'=HYPERLINK(""http://x"")"
    """
    writer = csv.writer(stream, lineterminator=lineterminator, delimiter=delimiter)
    if header is not None:
        writer.writerow([neutralise_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([neutralise_cell(cell) for cell in row])


class NumberFile:
    """An uploaded file of phone numbers, checked and sniffed; iterate it for its :class:`NumberRow`.

    :param data: the file's bytes, or a bytearray (read in place, never copied); str is read as UTF-8
    :param max_lines: refuse longer files (``too_many_lines``); None: no limit
    :raise NumberFileError: ``empty``, ``spreadsheet``, ``binary``, ``too_many_lines`` or
        ``no_number_column`` on opening; ``bad_line``, ``unclosed_quote``, ``cell_too_long`` or
        ``no_numbers`` while iterating.

    Attributes: ``encoding``, ``delimiter``, ``header`` (cells of the header row, None without one),
    ``columns`` (role -> index of the columns found), ``width`` (the number of columns: the
    header's, else the widest line of the sample), ``line_total`` (physical lines) and
    ``blank_count`` (blank lines met by the last iteration).
    """

    def __init__(self, data, max_lines=None):
        if isinstance(data, str):
            data = data.encode()
        self._data = data
        self._offset = 0
        self.encoding = self._detect_encoding(max_lines)
        sample = list(itertools.islice((line for line in self._open(None) if line.strip()), SNIFF_LINES))
        self.delimiter = _detect_delimiter(sample)
        self.header, self.columns, self.width = _detect_columns(sample, self.delimiter)
        self.blank_count = 0

    # ------------------------------------------------------------------
    # Decoding
    # ------------------------------------------------------------------

    def _detect_encoding(self, max_lines):
        data = self._data
        if not data or data.isspace():  # not data.strip(): that would copy the file
            raise NumberFileError(EMPTY)
        for signature, code in BINARY_SIGNATURES:
            if data.startswith(signature):
                raise NumberFileError(code)
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            candidates = ("utf-16",)
        elif b"\x00" in data[:_CHECKED]:
            raise NumberFileError(BINARY)
        else:
            if data.startswith(codecs.BOM_UTF8):
                self._offset = len(codecs.BOM_UTF8)
            candidates = ("utf-8", "cp1252", "latin-1")
        for encoding in candidates:
            try:
                line_total = self._scan(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise NumberFileError(BINARY)  # UTF-16 that does not decode
        if max_lines is not None and line_total > max_lines:
            raise NumberFileError(TOO_MANY_LINES, count=line_total, max=max_lines)
        self.line_total = line_total
        return encoding

    def _scan(self, encoding):
        """Decode the whole file once, chunk by chunk (memory stays flat): check that it is text and
        count its lines. Raise UnicodeDecodeError when ``encoding`` does not fit."""
        decoder = codecs.getincrementaldecoder(encoding)()
        view = memoryview(self._data)[self._offset :]
        head, count_lf, count_cr, last, blank = "", 0, 0, "", True
        for start in range(0, len(view) + 1, _CHUNK):
            chunk = view[start : start + _CHUNK]
            text = decoder.decode(chunk, final=len(chunk) < _CHUNK)
            if not text:
                continue
            if len(head) < _CHECKED:
                head += text[: _CHECKED - len(head)]
            if "\x00" in text:  # NUL is never text, wherever it is (the check below sees the head only)
                raise NumberFileError(BINARY)
            count_lf += text.count("\n")
            count_cr += text.count("\r")
            last = text[-1]
            blank = blank and not text.strip()
        controls = sum(1 for char in head if ord(char) < 32 and char not in "\t\r\n\f\v")
        if controls > max(2, len(head) // 100):
            raise NumberFileError(BINARY)
        if blank:
            raise NumberFileError(EMPTY)
        newline, count = ("\n", count_lf) if count_lf else ("\r", count_cr)
        return count + (0 if last == newline else 1)

    def _open(self, newline):
        stream = io.BufferedReader(_BufferReader(self._data, self._offset))  # reads the buffer, no copy
        return io.TextIOWrapper(stream, encoding=self.encoding, newline=newline)

    # ------------------------------------------------------------------
    # Rows
    # ------------------------------------------------------------------

    def __iter__(self):
        columns = self.columns
        number_idx = columns[NUMBER]
        name_idx, country_idx, reason_idx = columns.get(NAME), columns.get(COUNTRY), columns.get(REASON)
        reader = csv.reader(self._open(""), delimiter=self.delimiter, skipinitialspace=True)
        skip_header = self.header is not None
        found = False
        self.blank_count = 0
        last_line = 0
        try:
            for raw_cells in reader:
                first_line, last_line = last_line + 1, reader.line_num
                for cell in raw_cells:
                    if "\n" in cell or "\r" in cell:  # a quoted cell over several lines: a quote left open
                        raise NumberFileError(UNCLOSED_QUOTE, line=first_line)
                    if len(cell) > MAX_CELL:
                        raise NumberFileError(CELL_TOO_LONG, line=first_line, max=MAX_CELL)
                cells = [clean_cell(cell) for cell in raw_cells]
                if not any(cells):
                    self.blank_count += 1
                    continue
                if skip_header:
                    skip_header = False
                    continue
                size = len(cells)
                found = True
                yield NumberRow(
                    reader.line_num,
                    cells[number_idx] if number_idx < size else "",
                    cells[name_idx] if name_idx is not None and name_idx < size else "",
                    cells[country_idx] if country_idx is not None and country_idx < size else "",
                    cells[reason_idx] if reason_idx is not None and reason_idx < size else "",
                    cells,
                )
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):  # csv's own limit, over MAX_CELL
                raise NumberFileError(CELL_TOO_LONG, line=last_line + 1, max=MAX_CELL) from exc
            raise NumberFileError(BAD_LINE, line=reader.line_num, error=str(exc)) from exc
        if not found:
            raise NumberFileError(NO_NUMBERS)


class _BufferReader(io.RawIOBase):
    """A binary stream over ``buffer`` (bytes, bytearray) from ``offset``, without copying it
    (io.BytesIO copies a bytearray)."""

    def __init__(self, buffer, offset=0):
        super().__init__()
        self._view = memoryview(buffer)
        self._pos = offset

    def readable(self):
        return True

    def readinto(self, target):
        size = min(len(target), len(self._view) - self._pos)
        target[:size] = self._view[self._pos : self._pos + size]
        self._pos += size
        return size

    def close(self):
        self._view.release()
        return super().close()


def _detect_delimiter(sample_lines):
    """The separator most lines of the sample have (tab, semicolon, comma; a comma for one column).

    >>> _detect_delimiter(["a;b,c\\n", "d;e\\n"]), _detect_delimiter(["0612345678\\n"])
    (';', ',')
    """
    scores = {delimiter: sum(1 for line in sample_lines if delimiter in line) for delimiter in DELIMITERS}
    best = max(scores.values())
    if not best:
        return ","  # a single column
    candidates = [delimiter for delimiter in DELIMITERS if scores[delimiter] == best]
    if len(candidates) == 1:
        return candidates[0]
    try:
        return csv.Sniffer().sniff("".join(sample_lines), delimiters="".join(candidates)).delimiter
    except csv.Error:
        return candidates[0]


def _detect_columns(sample_lines, delimiter):
    """Return (header cells or None, {role: column index}, number of columns) from the first
    non-blank lines.

    A first row naming a number column is a header (its name, country and reason columns are
    found too). A first row naming only other columns names no number column. Otherwise a first
    row without any digit is a header nobody can read, and the numbers are the column where most
    values look like phone numbers (the only one of a single-column file).
    """
    try:
        sample = [
            [clean_cell(cell) for cell in cells]
            for cells in csv.reader(sample_lines, delimiter=delimiter, skipinitialspace=True)
        ]
    except csv.Error:
        sample = [[clean_cell(cell) for cell in line.split(delimiter)] for line in sample_lines]
    sample = [cells for cells in sample if any(cells)]
    if not sample:
        raise NumberFileError(EMPTY)
    keys = [ascii_key(cell) for cell in sample[0]]
    named = {}
    for role, names in HEADERS.items():
        index = next((idx for idx, key in enumerate(keys) if key in names), None)
        if index is not None:
            named[role] = index
    width = max(len(cells) for cells in sample)
    if NUMBER in named:
        return sample[0], named, len(sample[0])
    if named:
        raise NumberFileError(NO_NUMBER_COLUMN, header=sample[0])
    has_header = not any(char.isdigit() for cell in sample[0] for char in cell)
    data = sample[1:] if has_header else sample
    header = sample[0] if has_header else None
    if header is not None:
        width = len(header)
    if width == 1:
        return header, {NUMBER: 0}, width
    scores = [
        sum(1 for cells in data if idx < len(cells) and _PHONE_LOOKING.fullmatch(cells[idx])) for idx in range(width)
    ]
    best = max(scores)
    if not best or best * 2 < len(data):
        raise NumberFileError(NO_NUMBER_COLUMN, header=header)
    return header, {NUMBER: scores.index(best)}, width
