"""Pure helpers for SMS consent (no Odoo import): masked numbers and blacklist CSV files."""

import csv
import io

import phonenumbers

from . import sms_phone
from .sms_number_file import NUMBER, NumberFile

EXPORT_HEADER = ("number", "active", "last_consent_date", "last_consent_source")
# Why a line of a blacklist file is not imported, beside the reasons of sms_phone.
DUPLICATE = "duplicate"


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


def parse_blacklist_csv(data, default_country=None):
    """Read a blacklist file (see :class:`~.sms_number_file.NumberFile`): a number column, optionally a
    reason column (named "reason", "note"...; without a header row, the column after the numbers).

    :param data: the file (bytes, or text)
    :param default_country: ISO code of the country of numbers written without their country code
    :return: ``(accepted, rejected)``: ``accepted`` is a list of ``(line, number, reason)``
        with E.164 numbers, each number once; ``rejected`` a list of ``(line, value, why, first_line)``
        where ``why`` is a reason code of :mod:`.sms_phone` or ``duplicate`` and ``first_line`` the
        line a duplicate repeats (else None). Lines are numbered from 1 as in a text editor.
    :raise NumberFileError: when the file cannot be read

    >>> parse_blacklist_csv('+33612345678,"STOP, by mail"\\n0612345679\\n06 12 34 56 79\\n', "FR")
    ([(1, '+33612345678', 'STOP, by mail'), (2, '+33612345679', '')], [(3, '06 12 34 56 79', 'duplicate', 2)])
    """
    numbers = NumberFile(data)
    number_col = numbers.columns[NUMBER]
    headerless_reason = None if numbers.header is not None or number_col else 1
    accepted, rejected, seen = [], [], {}
    for row in numbers:
        phone = sms_phone.normalize(row.number, default_country, rule=sms_phone.VALID)
        if not phone.number:
            rejected.append((row.line, row.number, phone.reason, None))
            continue
        if phone.number in seen:
            rejected.append((row.line, row.number, DUPLICATE, seen[phone.number]))
            continue
        seen[phone.number] = row.line
        reason = row.reason
        if headerless_reason is not None and headerless_reason < len(row.cells):
            reason = row.cells[headerless_reason]
        accepted.append((row.line, phone.number, reason))
    return accepted, rejected


def blacklist_csv(rows):
    """CSV text of blacklist rows ``(number, active, last consent date or None, last source or None)``."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for number, active, date, source in rows:
        writer.writerow([number, "yes" if active else "no", date.isoformat(sep=" ") if date else "", source or ""])
    return output.getvalue()
