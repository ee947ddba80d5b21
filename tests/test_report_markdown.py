"""Free text from the CSVs read as itself in markdown (reports/markdown.py)."""

import pytest

from reports import markdown


@pytest.mark.parametrize(("text", "escaped"), [
    ("NVIDIA *H200* | <b>x</b>", r"NVIDIA \*H200\* \| \<b\>x\</b\>"),
    ("[link](http://x) `code` ~~gone~~ $x$", r"\[link\](http://x) \`code\` \~\~gone\~\~ \$x\$"),
    ("# heading", r"\# heading"),
    ("a # b", "a # b"),  # only a # that starts a line makes a heading
    ("two\nlines\r\nthree", "two lines three"),
    ("_x_ and __y__", r"\_x\_ and \_\_y\_\_"),
    ("fwd_bwd per_element_rng", "fwd_bwd per_element_rng"),  # no emphasis inside a word
    (r"a\*b", r"a\\\*b"),  # a backslash of the CSV's cannot undo the escape
    ("2.11.0+cu130 (1, 2)", "2.11.0+cu130 (1, 2)"),
])
def test_escape(text, escaped):
    assert markdown.escape(text) == escaped
