"""Pure helpers for SMS consent (no Odoo import): masked numbers and blacklist CSV files."""

import csv
import io

import phonenumbers

NUMBER_HEADERS = frozenset({"number", "phone", "phone number", "mobile", "sms", "sms number", "e164", "msisdn"})
REASON_HEADERS = frozenset({"reason", "note", "comment", "source"})
EXPORT_HEADER = ("number", "active", "last_consent_date", "last_consent_source")


def mask_number(number):
    """A number as shown on public pages: its country code and last two digits only.

    >>> mask_number("+33612345678")
    '+33 ••••••• 78'
    """
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, None)
        prefix = f"+{parsed.country_code}"
    except phonenumbers.NumberParseException:
        prefix = number[:3]
    national = number[len(prefix):]
    return f"{prefix} {'•' * max(len(national) - 2, 0)} {national[-2:]}"


# Why a value is not a number to blacklist (the import wizard words them for people).
EMPTY = "empty"
NO_COUNTRY = "no_country"
NOT_A_NUMBER = "not_a_number"
INVALID = "invalid"
DUPLICATE = "duplicate"


def normalize_number(value, default_country=None):
    """``(E.164 number, None)`` for a valid phone number, else ``(None, why)`` (one of the codes above).

    :param default_country: ISO code of the country of numbers written without their country code.
    """
    text = (value or "").strip()
    if not text:
        return None, EMPTY
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and not default_country:
        return None, NO_COUNTRY
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_country.upper())
    except phonenumbers.NumberParseException:
        return None, NOT_A_NUMBER
    if not phonenumbers.is_valid_number(parsed):
        return None, INVALID
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), None


def decode_csv(data):
    """The text of an uploaded CSV file: UTF-8 (with or without BOM), else Latin-1."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_blacklist_csv(text, default_country=None):
    """Read a blacklist CSV: a number column, optionally a reason column.

    The delimiter (comma, semicolon or tab) is detected. A first row naming its columns
    ("number"/"phone"/"mobile"..., "reason"/"note"...) is a header; without one, the number is the
    first column and the reason the second.

    :return: ``(accepted, rejected)``: ``accepted`` is a list of ``(line, number, reason)``
        with E.164 numbers, each number once; ``rejected`` a list of ``(line, value, why, first_line)``
        where ``why`` is a code above and ``first_line`` the line a duplicate repeats (else None).
        Lines are numbered from 1 as in a spreadsheet.
    """
    sample = text[:4096]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    number_col, reason_col, first = 0, 1, 0
    if rows:
        header = [cell.strip().lower() for cell in rows[0]]
        named = [index for index, cell in enumerate(header) if cell in NUMBER_HEADERS]
        if named:
            number_col = named[0]
            reasons = [index for index, cell in enumerate(header) if cell in REASON_HEADERS]
            reason_col = reasons[0] if reasons else None
            first = 1
    accepted, rejected, seen = [], [], {}
    for line, row in enumerate(rows[first:], start=first + 1):
        if not any(cell.strip() for cell in row):
            continue
        value = row[number_col].strip() if number_col < len(row) else ""
        number, why = normalize_number(value, default_country)
        if not number:
            rejected.append((line, value, why, None))
            continue
        if number in seen:
            rejected.append((line, value, DUPLICATE, seen[number]))
            continue
        seen[number] = line
        reason = row[reason_col].strip() if reason_col is not None and reason_col < len(row) else ""
        accepted.append((line, number, reason))
    return accepted, rejected


def blacklist_csv(rows):
    """CSV text of blacklist rows ``(number, active, last consent date or None, last source or None)``."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for number, active, date, source in rows:
        writer.writerow([number, "yes" if active else "no", date.isoformat(sep=" ") if date else "", source or ""])
    return output.getvalue()
