# Part of sms_marketing_ext. License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import _, models
from odoo.exceptions import UserError

from ..tools import sms_number_file
from ..tools.sms_number_file import NumberFile, NumberFileError


class SmsNumberFileImport(models.AbstractModel):
    """What the wizards importing a file of phone numbers share: opening it with
    :class:`~..tools.sms_number_file.NumberFile` and telling the user, in their words, why a file
    cannot be read. The wizard has a ``file_name`` field."""

    _name = "sms.number.file.import"
    _description = "Import of a file of phone numbers"

    def _file_label(self):
        return self.file_name or _("the file")

    def _number_file_open(self, data, max_lines=None):
        """The :class:`NumberFile` of ``data`` (bytes); UserError when it cannot be read."""
        try:
            return NumberFile(data, max_lines=max_lines)
        except NumberFileError as error:
            raise UserError(self._number_file_message(error)) from error

    def _number_file_message(self, error):
        """``error`` (a :class:`NumberFileError`) worded for the user."""
        code, params = error.code, error.params
        if code == sms_number_file.EMPTY:
            return _("The file “%s” is empty.", self._file_label())
        if code == sms_number_file.SPREADSHEET:
            return _(
                "“%s” is a spreadsheet file, not a text file. In your spreadsheet application, "
                "use “Save as” and choose CSV, then import the CSV file.",
                self._file_label(),
            )
        if code == sms_number_file.BINARY:
            return _(
                "“%s” is not a text file. Import a .csv file (comma, semicolon or tab separated) "
                "or a .txt file with one phone number per line.",
                self._file_label(),
            )
        if code == sms_number_file.TOO_MANY_LINES:
            return _(
                "The file “%(file)s” has %(count)s lines; at most %(max)s lines can be imported at once. "
                "Split it into smaller files and import them one after the other.",
                file=self._file_label(),
                count=params["count"],
                max=params["max"],
            )
        if code == sms_number_file.NO_NUMBER_COLUMN:
            header = params.get("header")
            if header:
                return _(
                    "No column of phone numbers found in “%(file)s” (its columns are: %(columns)s). "
                    "Name the column of numbers “number”, “phone” or “mobile”; “name” and “country” "
                    "columns are optional.",
                    file=self._file_label(),
                    columns=", ".join(cell for cell in header if cell) or "-",
                )
            return _(
                "No column of phone numbers found in “%s”. Add a header row naming the column of numbers "
                "“number”, “phone” or “mobile”, or import a file with one number per line.",
                self._file_label(),
            )
        if code == sms_number_file.BAD_LINE:
            return _(
                "Line %(line)s of the file could not be read: %(error)s", line=params["line"], error=params["error"]
            )
        if code == sms_number_file.NO_NUMBERS:
            return _("The file “%s” contains no phone number.", self._file_label())
        raise ValueError(f"unknown number file error {code!r}")
