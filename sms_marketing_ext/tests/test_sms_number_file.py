import codecs
import csv
import doctest
import io
import tracemalloc

from odoo.tests import tagged
from odoo.tests.common import BaseCase

from ..tools import sms_number_file
from ..tools.sms_number_file import (
    BINARY,
    CELL_TOO_LONG,
    EMPTY,
    NO_NUMBER_COLUMN,
    NO_NUMBERS,
    SPREADSHEET,
    TOO_MANY_LINES,
    UNCLOSED_QUOTE,
    NumberFile,
    NumberFileError,
)


@tagged("at_install", "sms_number_file")
class TestSmsNumberFile(BaseCase):
    def assertFileError(self, data, code, **params):
        """Opening and reading ``data`` fails with ``code`` (and these ``params``)."""
        with self.assertRaises(NumberFileError) as caught:
            list(NumberFile(data, max_lines=1000))
        self.assertEqual(caught.exception.code, code)
        for name, value in params.items():
            self.assertEqual(caught.exception.params[name], value)
        return caught.exception

    def read_rows(self, data, **kwargs):
        numbers = NumberFile(data, **kwargs)
        return numbers, [(row.line, row.number, row.name, row.country, row.reason) for row in numbers]

    def test_doctests(self):
        results = doctest.testmod(sms_number_file)
        self.assertGreater(results.attempted, 5)
        self.assertEqual(results.failed, 0)

    def test_hostile_content(self):
        """Content that is not a list of numbers, wherever it is in the file, is refused with a code."""
        self.assertFileError(b"0612345678\n" * 7000 + b"\x00\x01", BINARY)
        # a quote left open used to swallow every following line into one cell, silently
        self.assertFileError(b'number;note\n0612345678;ok\n0612345679;"asked\n0612345670;x\n', UNCLOSED_QUOTE, line=3)
        self.assertFileError(b'0612345678\n"0612345679\n0612345670\n', UNCLOSED_QUOTE, line=2)
        self.assertFileError(b"number;note\n0612345678;" + b"x" * 1025 + b"\n", CELL_TOO_LONG, line=2, max=1024)
        self.assertFileError(b"0612345678\n" + b"6" * 200_000 + b"\n", CELL_TOO_LONG, line=2, max=1024)
        # a cell of exactly the maximum is read
        _numbers, rows = self.read_rows(b"number;note\n0612345678;" + b"x" * 1024 + b"\n")
        self.assertEqual(len(rows[0][4]), 1024)

    def test_neutralise_and_read_back(self):
        """What write_csv writes, NumberFile reads back as it was (the apostrophe stripped)."""
        output = io.StringIO()
        sms_number_file.write_csv(output, ["number", "name"], [("+33612345678", "=cmd|' /C calc'!A0"),
                                                              ("-33612345679", "@SUM(1)")])
        self.assertEqual(output.getvalue().splitlines()[1:],
                         ["'+33612345678,'=cmd|' /C calc'!A0", "'-33612345679,'@SUM(1)"])
        rows = [(row.number, row.name) for row in NumberFile(output.getvalue().encode())]
        self.assertEqual(rows, [("+33612345678", "=cmd|' /C calc'!A0"), ("-33612345679", "@SUM(1)")])

    def test_write_in_the_input_layout(self):
        """write_csv writes in any separator, without a header row when there is none; the width of
        a file is its header's, else its widest sampled line."""
        for delimiter in (",", ";", "\t"):
            with self.subTest(delimiter=delimiter):
                output = io.StringIO()
                sms_number_file.write_csv(
                    output, None, [("+33612345678", f"a{delimiter}b", "=1"), ("06 12", "", "")], "\n", delimiter
                )
                numbers = NumberFile(output.getvalue().encode())
                self.assertEqual((numbers.delimiter, numbers.header, numbers.width), (delimiter, None, 3))
                self.assertEqual(
                    [row.cells for row in numbers], [["+33612345678", f"a{delimiter}b", "=1"], ["06 12", "", ""]]
                )
        self.assertEqual(NumberFile(b"phone;name\n0612345678;Ada;extra\n").width, 2)
        self.assertEqual(NumberFile(b"0612345678\n0612345679;Ada;x\n").width, 3)

    def test_each_separator(self):
        for delimiter in (",", ";", "\t"):
            with self.subTest(delimiter=delimiter):
                data = delimiter.join(["Name", "Phone", "Country"]) + "\n"
                data += delimiter.join(["Ada", "06 12 34 56 78", "FR"]) + "\n"
                numbers, rows = self.read_rows(data.encode())
                self.assertEqual(numbers.delimiter, delimiter)
                self.assertEqual(numbers.columns, {"number": 1, "name": 0, "country": 2})
                self.assertEqual(rows, [(2, "06 12 34 56 78", "Ada", "FR", "")])
        numbers, rows = self.read_rows(b"0612345678\n0612345679")
        self.assertEqual((numbers.delimiter, numbers.header, numbers.columns), (",", None, {"number": 0}))
        self.assertEqual([row[:2] for row in rows], [(1, "0612345678"), (2, "0612345679")])

    def test_mixed_separators(self):
        """The separator of most lines wins; a comma inside a cell does not make it the separator."""
        numbers, rows = self.read_rows(b"number;reason\n0612345678;asked, twice\n0612345679;by mail\n")
        self.assertEqual(numbers.delimiter, ";")
        self.assertEqual([row[4] for row in rows], ["asked, twice", "by mail"])

    def test_header_or_not(self):
        # a header in any of the known languages, with accents and any case
        numbers, rows = self.read_rows("Nominativo;Numéro de Téléphone;Pays;Note\nRenée;347 123 4567;IT;ok\n".encode())
        self.assertEqual(numbers.columns, {"number": 1, "name": 0, "country": 2, "reason": 3})
        self.assertEqual(rows, [(2, "347 123 4567", "Renée", "IT", "ok")])
        # no header: the column that looks like phone numbers
        numbers, rows = self.read_rows(b"Alice;06 10 00 00 01\nBob;06 10 00 00 02\n")
        self.assertEqual((numbers.header, numbers.columns), (None, {"number": 1}))
        self.assertEqual([row[:2] for row in rows], [(1, "06 10 00 00 01"), (2, "06 10 00 00 02")])
        # a header nobody can read (no digit in it): skipped
        numbers, rows = self.read_rows(b"who;what\nAlice;06 10 00 00 01\n")
        self.assertEqual((numbers.header, numbers.columns), (["who", "what"], {"number": 1}))
        self.assertEqual([row[:2] for row in rows], [(2, "06 10 00 00 01")])
        # all the cells of a row, cleaned, for columns without a role
        self.assertEqual(next(iter(NumberFile(b"0612345678, 'by mail' \n"))).cells, ["0612345678", "by mail"])

    def test_no_number_column(self):
        self.assertFileError(b"name;city\nJohn;Paris\n", NO_NUMBER_COLUMN, header=["name", "city"])
        self.assertFileError(b"John,nice\nJane,kind\n", NO_NUMBER_COLUMN, header=["John", "nice"])
        self.assertFileError(b"John,nice,1\nJane,kind,2\n", NO_NUMBER_COLUMN, header=None)
        self.assertFileError(b"Reason,Comment\nfoo,bar\n", NO_NUMBER_COLUMN, header=["Reason", "Comment"])

    def test_empty_file(self):
        for data in (b"", b"  \n\n \r\n", b",,,\n, ,\n", codecs.BOM_UTF16_LE + " \n".encode("utf-16-le")):
            with self.subTest(data=data):
                self.assertFileError(data, EMPTY)
        self.assertFileError(b"phone\n", NO_NUMBERS)
        self.assertFileError(b"phone\n\n  \n", NO_NUMBERS)

    def test_blank_lines_counted(self):
        numbers, rows = self.read_rows(b"\nphone\n\n0612345678\n  ;  \n0612345679\n\n")
        self.assertEqual([row[0] for row in rows], [4, 6])
        self.assertEqual(numbers.blank_count, 4)

    def test_binary_file(self):
        cases = [
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", BINARY),
            (b"%PDF-1.7\n", BINARY),
            (b"PK\x03\x04\x14\x00\x06\x00", SPREADSHEET),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", SPREADSHEET),
            (b"abc\x00\x01\x02\x03def" * 10, BINARY),  # NUL bytes
            (b"abc\x01\x02\x03\x04\x05def" * 10, BINARY),  # control characters
            (codecs.BOM_UTF16_LE + b"\x00\xd8", BINARY),  # UTF-16 that does not decode
        ]
        for data, code in cases:
            with self.subTest(data=data[:12]):
                self.assertFileError(data, code)

    def test_bom_and_encodings(self):
        text = "Numéro;Nom\n06 11 22 33 44;Élodie Dupré\n"
        expected = [(2, "06 11 22 33 44", "Élodie Dupré", "", "")]
        for encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-16-be", "cp1252", "latin-1"):
            data = text.encode(encoding)
            if encoding == "utf-16-be":
                data = codecs.BOM_UTF16_BE + data
            with self.subTest(encoding=encoding):
                numbers, rows = self.read_rows(data)
                self.assertEqual(rows, expected)
                self.assertEqual(numbers.header, ["Numéro", "Nom"], "no BOM left in the first header")
        numbers, rows = self.read_rows("phone;name\n0612345678;5 €\n".encode("cp1252"))
        self.assertEqual((numbers.encoding, rows[0][2]), ("cp1252", "5 €"))
        numbers, rows = self.read_rows(b"phone;name\n0612345678;\x81\xe9\n")  # 0x81: not cp1252
        self.assertEqual((numbers.encoding, rows[0][2]), ("latin-1", "\x81é"))

    def test_newlines(self):
        for newline in ("\n", "\r\n", "\r"):
            with self.subTest(newline=repr(newline)):
                numbers, rows = self.read_rows(newline.join(["phone", "0612345678", "", "0612345679"]).encode())
                self.assertEqual([row[:2] for row in rows], [(2, "0612345678"), (4, "0612345679")])
                self.assertEqual(numbers.line_total, 4)

    def test_broken_quoting(self):
        """A quote that never closes would swallow the lines after it into one cell, silently (a
        blacklist import lost every number after it): the file is refused, naming the line. A quote
        inside a cell is a character like another."""
        self.assertFileError(b'0612345678\n"0612345679\n0612345680\n', UNCLOSED_QUOTE, line=2)
        _numbers, rows = self.read_rows(b'0612345678\n06"12"345679\n0612345680\n')
        self.assertEqual([row[0] for row in rows], [1, 2, 3])
        self.assertEqual(rows[1][1], '06"12"345679')

    def test_huge_cell(self):
        """A cell longer than MAX_CELL is no number, name or note: the file is refused, naming the
        line, whatever the CSV module's limit (Odoo's server raises it to 500 MiB)."""
        limit = csv.field_size_limit(500 * 1024 * 1024)
        self.addCleanup(csv.field_size_limit, limit)
        self.assertFileError(b"phone\n0612345678\n" + b"0" * 2_000_000 + b"\n0612345679\n", CELL_TOO_LONG, line=3)
        csv.field_size_limit(1000)
        self.assertFileError(b"phone\n0612345678\n" + b"0" * 1001 + b"\n0612345679\n", CELL_TOO_LONG, line=3)
        _numbers, rows = self.read_rows(b"phone;note\n0612345678;" + b"x" * 999 + b"\n")
        self.assertEqual(len(rows[0][4]), 999)
        # an unclosed quote that runs past the CSV module's limit: the line where the quote opens
        self.assertFileError(b'phone\n"0612345678\n' + b"0612345679\n" * 200, CELL_TOO_LONG, line=2)

    def test_too_many_lines(self):
        self.assertFileError(b"0612345678\n" * 1001, TOO_MANY_LINES, count=1001, max=1000)
        self.assertFileError(b"0612345678\r" * 1000 + b"0612345678", TOO_MANY_LINES, count=1001, max=1000)
        numbers, rows = self.read_rows(b"0612345678\n" * 1000, max_lines=1000)
        self.assertEqual((numbers.line_total, len(rows)), (1000, 1000))
        self.assertEqual(NumberFile(b"0612345678\n" * 1001).line_total, 1001, "no limit by default")

    def test_streams_rows(self):
        """Opening and reading a file holds neither its decoded text nor its rows: memory stays flat."""
        data = b"".join(b"06%08d\n" % index for index in range(200_000))
        tracemalloc.start()
        try:
            numbers = NumberFile(data)
            count = sum(1 for _row in numbers)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertEqual(count, 200_000)
        self.assertLess(peak, len(data) / 2, f"{peak} bytes at the peak for a file of {len(data)} bytes")
