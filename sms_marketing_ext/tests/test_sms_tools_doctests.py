import doctest
import importlib
import inspect
import pkgutil

from odoo.tests import tagged
from odoo.tests.common import BaseCase

from .. import tools


@tagged("at_install", "sms_tools")
class TestSmsToolsDoctests(BaseCase):
    """The examples in the docstrings of every module of tools/ run and give what they show."""

    def test_doctests(self):
        with_examples = []
        for module_info in pkgutil.iter_modules(tools.__path__):
            module = importlib.import_module(f"{tools.__name__}.{module_info.name}")
            with self.subTest(module=module_info.name):
                result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
                self.assertEqual(result.failed, 0, f"{result.failed} failing example(s) in {module.__name__}")
                if ">>> " in inspect.getsource(module):
                    self.assertGreater(result.attempted, 0, "the module's examples were found and run")
                    with_examples.append(module_info.name)
        self.assertLessEqual({"sms_consent", "sms_delivery", "sms_quiet_hours", "sms_redirect", "sms_sender"},
                             set(with_examples))
