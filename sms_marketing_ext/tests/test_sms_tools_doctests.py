import doctest
import importlib
import pkgutil

from odoo.tests import tagged
from odoo.tests.common import BaseCase

from .. import tools


@tagged("at_install", "sms_tools")
class TestSmsToolsDoctests(BaseCase):
    """The examples in the docstrings of tools/ run and give what they show."""

    def test_doctests(self):
        attempted = 0
        for module_info in pkgutil.iter_modules(tools.__path__):
            module = importlib.import_module(f"{tools.__name__}.{module_info.name}")
            with self.subTest(module=module_info.name):
                result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
                self.assertEqual(result.failed, 0, f"{result.failed} failing example(s) in {module.__name__}")
                attempted += result.attempted
        self.assertGreaterEqual(attempted, 2, "the tools' examples were found and run")
