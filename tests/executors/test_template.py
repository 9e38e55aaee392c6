"""Filling the one template field without str.format."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from dssr.errors import BadRequest
from dssr.executors.template import fill_template, literal_text, split_template
from tests.strategies import doubled, templates

PROPERTIES = settings(derandomize=True, database=None, max_examples=300, deadline=None)


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


class TemplatePropertyTests(SynchronousTestCase):
    """Any template upstream can write reads back as the text it stands for."""

    @PROPERTIES
    @given(templates(), st.text(max_size=40))
    def test_fields_filled_text_as_written(self, template, block):
        script, pieces = template
        self.assertEqual(split_template(script), tuple(pieces))
        self.assertEqual(fill_template(script, block), block.join(pieces))
        self.assertEqual(literal_text(script), "".join(pieces))

    @PROPERTIES
    @given(templates(), st.text(min_size=1, max_size=20).filter(
        lambda name: "{" not in name and "}" not in name and name != "DOWNSTREAM_PARAMETERS"))
    def test_any_other_field_is_refused(self, template, name):
        script, _ = template
        self.assertRaises(BadRequest, split_template, script + "{" + name + "}")

    @PROPERTIES
    @given(templates(), st.sampled_from(["{", "}"]), st.text(max_size=10))
    def test_a_lone_brace_is_refused(self, template, brace, after):
        script, _ = template
        self.assertRaises(BadRequest, split_template, script + brace + doubled(after))
