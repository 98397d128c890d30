"""html_to_text: the text/plain part derived from rendered HTML."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.templates.plaintext import html_to_text


def test_hidden_parts_are_dropped() -> None:
    html = (
        "<html><head><title>Title</title><meta charset='utf-8'>"
        "<style>p { color: red; }</style></head>"
        "<body><script>var x = '<p>no</p>';</script><p>Visible</p></body></html>"
    )
    assert html_to_text(html) == "Visible\n"


def test_unclosed_head_ends_at_body() -> None:
    assert html_to_text("<head><title>T</title><body><p>Hi</p>") == "Hi\n"


def test_comments_and_declarations_are_dropped() -> None:
    html = "<!DOCTYPE html><!-- note <p>x</p> --><!--[if mso]><p>mso</p><![endif]--><p>Kept</p>"
    assert html_to_text(html) == "Kept\n"


def test_script_end_tag_inside_a_string_is_respected() -> None:
    assert html_to_text("<script>a = '<p>';</SCRIPT ><p>after</p>") == "after\n"


def test_markup_inside_script_cannot_swallow_the_document() -> None:
    assert html_to_text('<script>var s = "<a href=\'x";</script><p>Text</p>') == "Text\n"


def test_blocks_make_line_breaks() -> None:
    html = "<div>One</div><div>Two</div><h1>Title</h1><p>First</p><p>Second</p>"
    assert html_to_text(html) == "One\nTwo\n\nTitle\n\nFirst\n\nSecond\n"


def test_br_is_a_line_break_and_two_are_a_blank_line() -> None:
    assert html_to_text("a<br>b<br/><br />c") == "a\nb\n\nc\n"


def test_list_items_get_a_dash() -> None:
    html = "<p>Intro</p><ul>\n  <li>one</li>\n  <li>two</li>\n</ul><ol><li>three</li></ol>end"
    assert html_to_text(html) == "Intro\n\n- one\n- two\n\n- three\n\nend\n"


def test_table_rows_are_lines_and_cells_are_spaced() -> None:
    html = "<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>"
    assert html_to_text(html) == "a b\nc d\n"


def test_links_show_their_url() -> None:
    assert (
        html_to_text('<a href="https://e.test/x">Read more</a>') == "Read more (https://e.test/x)\n"
    )


def test_link_whose_text_is_its_url_is_not_repeated() -> None:
    assert html_to_text('<a href="https://e.test/">https://e.test</a>') == "https://e.test\n"
    assert html_to_text('<a href="mailto:a@b.test?subject=x">a@b.test</a>') == "a@b.test\n"


def test_links_without_a_useful_target_show_only_text() -> None:
    html = '<a href="#top">Top</a> <a href="javascript:void(0)">JS</a> <a>none</a>'
    assert html_to_text(html) == "Top JS none\n"


def test_image_link_uses_alt_text() -> None:
    html = '<a href="https://e.test"><img src="logo.png" alt="Acme"></a>'
    assert html_to_text(html) == "Acme (https://e.test)\n"
    assert html_to_text('<a href="https://e.test"><img src="x.png"></a>') == "https://e.test\n"


def test_entities_are_decoded_in_text_and_attributes() -> None:
    html = '<p>Fish &amp; chips &lt;3 &#8364;5&nbsp;each</p><a href="https://e.test/?a=1&amp;b=2">go</a>'
    assert html_to_text(html) == "Fish & chips <3 €5 each\n\ngo (https://e.test/?a=1&b=2)\n"


def test_whitespace_is_collapsed() -> None:
    assert html_to_text("<p>  lots \n\t of\n\n   space  </p>") == "lots of space\n"


def test_invisible_spacers_are_removed() -> None:
    assert html_to_text("<p>Pre\u200c\u00a0\u200cheader\u034f</p>") == "Pre header\n"


def test_angle_brackets_in_text_and_attributes() -> None:
    assert html_to_text('<p title="a > b">x < y and y > z</p>') == "x < y and y > z\n"


def test_uppercase_tags_and_unquoted_attributes() -> None:
    assert html_to_text("<P>One</P><A HREF=https://e.test>e</A>") == "One\n\ne (https://e.test)\n"


def test_empty_input_gives_a_single_newline() -> None:
    assert html_to_text("") == "\n"
    assert html_to_text("<p>   </p>") == "\n"


@pytest.mark.parametrize(
    "html",
    [
        '<a href="never closed',
        "<p>text <!-- unclosed comment",
        "<script>never closed",
        "<div",
        "</",
        "<<<>>>",
        "<p\x00>a\x00b</p>",
    ],
)
def test_malformed_html_does_not_fail(html: str) -> None:
    text = html_to_text(html)
    assert text.endswith("\n")
    assert "\x00" not in text


def test_unclosed_quotes_do_not_make_the_scan_quadratic() -> None:
    html = '<a href="x' * 20_000
    started = time.perf_counter()
    html_to_text(html)
    assert time.perf_counter() - started < 2.0


@given(st.text())
def test_any_input_gives_text_ending_in_exactly_one_newline(html: str) -> None:
    text = html_to_text(html)
    assert text.endswith("\n")
    assert not text.endswith("\n\n") or text == "\n"
    assert "\n\n\n" not in text
    assert "\x00" not in text
