"""Filling the one template field without str.format."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import BadRequest
from dssr.executors.template import fill_template, literal_text, split_template


class FillTemplateTests(SynchronousTestCase):
    def test_fills_the_field_and_undoubles_braces(self):
        script = "a ${{HOME}} {{x}}\n{DOWNSTREAM_PARAMETERS}\nb }}{{"
        self.assertEqual(fill_template(script, "BLOCK"), "a ${HOME} {x}\nBLOCK\nb }{")

    def test_fills_every_occurrence(self):
        self.assertEqual(
            fill_template("{DOWNSTREAM_PARAMETERS}-{DOWNSTREAM_PARAMETERS}", "B"), "B-B")

    def test_block_is_not_reinterpreted(self):
        block = "{other} {{ } {DOWNSTREAM_PARAMETERS} $'\\"
        self.assertEqual(fill_template("[{DOWNSTREAM_PARAMETERS}]", block), f"[{block}]")

    def test_quadruple_braces_give_double(self):
        self.assertEqual(fill_template("{{{{x}}}}{DOWNSTREAM_PARAMETERS}", ""), "{{x}}")

    def assertRefused(self, script, *fragments):
        error = self.assertRaises(BadRequest, split_template, script)
        self.assertEqual(error.field, "hpc_script")
        for fragment in fragments:
            self.assertIn(fragment, error.message)
        return error

    def test_other_field_refused(self):
        self.assertRefused("{DOWNSTREAM_PARAMETERS}\n\n{HOME}", "line 3", "{HOME}")

    def test_format_expressions_refused(self):
        for field in ("{0}", "{}", "{DOWNSTREAM_PARAMETERS!r}", "{DOWNSTREAM_PARAMETERS:>9}",
                      "{x.__class__}", "{x[0]}"):
            self.assertRefused("{DOWNSTREAM_PARAMETERS}" + field, "unknown template field")

    def test_stray_braces_refused(self):
        self.assertRefused("{DOWNSTREAM_PARAMETERS} ${HOME", "single '{'")
        self.assertRefused("{DOWNSTREAM_PARAMETERS} }", "single '}'")
        self.assertRefused("{DOWNSTREAM_PARAMETERS} {a{", "single '{'")

    def test_long_field_name_truncated(self):
        error = self.assertRefused("{DOWNSTREAM_PARAMETERS}{" + "x" * 500 + "}")
        self.assertLess(len(error.message), 200)

    def test_missing_field_refused(self):
        self.assertRefused("echo hi {{}}", "no {DOWNSTREAM_PARAMETERS}")

    def test_literal_text(self):
        self.assertEqual(literal_text('A={{"a": 1}}\n{DOWNSTREAM_PARAMETERS}\nB'),
                         'A={"a": 1}\n\nB')
