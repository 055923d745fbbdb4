"""The extract stage on hand-written pages, junk input, and the YAML case tables."""

from __future__ import annotations

import codecs
import contextlib
import gzip
import re
from collections import Counter
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from support.paths import DATA
from watcher.errors import ExtractError
from watcher.pipeline.extract import Extracted, extract_article, fragment_to_text
from watcher.pipeline.normalise import (
    comparable_text,
    content_hash,
    is_generic_furniture,
    line_keys,
    mask_line,
    normalise,
)

URL = "https://news.example.org/world/2026/truce-talks"


def load_cases(name: str) -> list[Any]:
    cases: list[dict[str, Any]] = yaml.safe_load((DATA / name).read_text("utf-8"))
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids)), f"duplicate ids in {name}"
    return [pytest.param(case, id=case["id"]) for case in cases]


# --- case tables ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases("normalise_cases.yaml"))
def test_normalise_case(case: dict[str, str]) -> None:
    assert normalise(case["input"]) == case["expected"]
    assert normalise(case["expected"]) == case["expected"]


@pytest.mark.parametrize("case", load_cases("furniture_cases.yaml"))
def test_furniture_case(case: dict[str, Any]) -> None:
    assert is_generic_furniture(case["line"]) is case["furniture"]
    kept = comparable_text(f"A body line that stays.\n{case['line']}")
    assert (case["line"] not in kept) is case["furniture"]


# --- properties ----------------------------------------------------------------------------

# Text rich in the characters normalise touches, mixed with anything else.
TRICKY = "\u00a0\u2009\u202f\u200b\u00ad\ufeff\u2026\u2018\u2019\u201c\u201d\u2013\u2014\u2212"
TRICKY += "\u0301\u0327e\u00e9\u2000\u2028\r\n\t \x1c\x85"
tricky_text = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(), max_size=80)
ASCII_DIGIT = re.compile(r"[0-9]")
# Lines assembled from stamp, counter and copyright parts, so digits land where they matter.
PARTS = (
    "Updated 5 12:30 minutes ago © 2025 Copyright (c) views 1,234 comments 4 min read ad-id-3f9a1"
)
furniture_like = st.lists(st.sampled_from(PARTS.split()) | st.text(max_size=4), max_size=8).map(
    " ".join
) | st.text(max_size=60)


def shift_digits(text: str, by: int) -> str:
    return ASCII_DIGIT.sub(lambda m: str((int(m.group()) + by) % 10), text)


@given(tricky_text)
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@given(tricky_text, st.lists(tricky_text, max_size=3))
def test_comparable_text_is_idempotent(text: str, furniture_lines: list[str]) -> None:
    site = frozenset(mask_line(line) for line in furniture_lines)
    once = comparable_text(text, site)
    assert comparable_text(once, site) == once


@given(tricky_text, tricky_text)
def test_line_keys_of_a_join_are_those_of_its_parts(first: str, second: str) -> None:
    """What judging a new page relies on to key its body and its dropped paragraphs apart."""
    assert line_keys(f"{first}\n{second}") == line_keys(first) | line_keys(second)


@given(furniture_like, st.integers(min_value=1, max_value=9))
def test_mask_line_ignores_digit_values(line: str, by: int) -> None:
    assert mask_line(shift_digits(line, by)) == mask_line(line)


@given(furniture_like, st.integers(min_value=1, max_value=9))
def test_furniture_verdict_ignores_digit_values(line: str, by: int) -> None:
    assert is_generic_furniture(shift_digits(line, by)) == is_generic_furniture(line)


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_fragment_to_text_never_raises(junk: str) -> None:
    assert isinstance(fragment_to_text(junk), str)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: f"<html>{t}"))
def test_extract_article_raises_only_extract_error(junk: bytes | str) -> None:
    try:
        result = extract_article(junk, URL)
    except ExtractError as err:
        assert err.url == URL
    else:
        assert result.text.strip()


# --- masks, keys, hashes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Updated 5 minutes ago", "Updated 12 minutes ago"),
        ("ad-id-3f9a1", "ad-id-77b02"),
        ("© 2025 Example Media", "© 2026 Example Media"),
        ("1,234 views", "98 views"),
        ("SHARE  this\u00a0story", "share this story"),
    ],
)
def test_mask_line_shares_keys(one: str, other: str) -> None:
    assert mask_line(one) == mask_line(other)


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(categories=("L", "N", "Zs", "P", "S", "Cc")), max_size=80))
def test_mask_line_masks_exactly_the_words_holding_a_digit(line: str) -> None:
    # The keys of learned furniture are stored: a faster mask must make the same keys.
    plain = normalise(line)
    words = plain.casefold().split()
    expected = " ".join("0" if re.search(r"\d", word) else word for word in words)
    assert mask_line(line) == expected


def test_mask_line_keeps_words_apart() -> None:
    assert mask_line("Updated 5 minutes ago") == "updated 0 minutes ago"
    assert mask_line("Follow us on Mastodon") != mask_line("Follow us on Bluesky")


def test_line_keys_cover_every_line() -> None:
    keys = line_keys("First line 1\n\n  Second\u00a0line  \nFirst line 22")
    assert keys == frozenset({"first line 0", "second line"})


def test_content_hash_tracks_title_and_text() -> None:
    body = comparable_text("One paragraph.\nTwo paragraphs.")
    base = content_hash("Truce holds", body)
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert content_hash("Truce holds", body) == base
    assert content_hash("Truce \u201cholds\u201d", body) != base
    assert content_hash("Truce  holds\u00a0", body) == base
    assert content_hash("Truce fails", body) != base
    assert content_hash("Truce holds", body + "\nThree.") != base
    # moving characters between headline and body is a different version
    moved = content_hash("Truce holds\nOne", "paragraph.")
    assert moved != content_hash("Truce holds", "One\nparagraph.")


def test_learned_site_furniture_is_dropped() -> None:
    """The store's learning, done honestly: keys that recur in >= 3 articles of one host."""
    furniture = "Follow Example News on Mastodon for breaking updates\nReporting desk ext. {n}"
    bodies = [
        "The council voted 7-2 to close the bridge.",
        "Rain is forecast for the weekend.",
        "The museum reopened after a two-year refit.",
        "Talks on the truce resumed in Doha.",
    ]
    articles = [f"{body}\n{furniture.format(n=100 + i)}" for i, body in enumerate(bodies)]
    seen = Counter(key for text in articles[:3] for key in line_keys(text))
    learned = frozenset(key for key, count in seen.items() if count >= 3)

    assert comparable_text(articles[3], learned) == "Talks on the truce resumed in Doha."
    assert "Mastodon" in comparable_text(articles[3])


def test_comparable_text_keeps_body_with_numbers() -> None:
    text = "Updated 3 minutes ago\nThe 2024 truce killed 12 people.\n1,234 views\n12:30"
    assert comparable_text(text) == "The 2024 truce killed 12 people."


# --- extract_article on hand-written pages --------------------------------------------------

PARAGRAPHS = [
    "Negotiators from both sides met in Doha on Tuesday for a third round of talks on "
    "extending the truce, which has held since early March despite sporadic shelling.",
    "The mediators said a draft agreement would allow aid convoys through two crossings and "
    "provide for the exchange of 40 detainees before the end of the month.",
    "\u201cWe are closer than we have ever been,\u201d one diplomat said, asking not to be named "
    "because the talks were confidential. Another cautioned that the draft had collapsed twice.",
    "The 2024 truce killed 12 people in its first week, according to figures later revised "
    "by the health ministry, which has since published a full list of the victims.",
]


def news_page(*, clock: str = "Updated 3 minutes ago", year: int = 2026, views: int = 1234) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Truce talks resume in Doha | Example News</title>
<meta property="og:title" content="Truce talks resume in Doha | Example News">
<meta property="og:site_name" content="Example News">
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/sport">Sport</a></li></ul></nav>
<main><article>
<h1>Truce talks resume in Doha</h1>
<p class="stamp">{clock}</p>
<p>{views:,} views</p>
{body}
</article>
<aside class="most-read"><h3>Most read</h3><ol>
<li><a href="/a">Storm leaves thousands without power</a></li>
<li><a href="/b">Council approves new budget</a></li></ol></aside>
</main>
<footer><p>Sign up for our daily newsletter</p><p>© {year} Example News Ltd</p></footer>
</body></html>"""


def test_extract_hand_written_page() -> None:
    result = extract_article(news_page(), URL)
    assert result.title == "Truce talks resume in Doha"
    for paragraph in PARAGRAPHS:
        assert paragraph in result.text
    assert "Storm leaves" not in result.text
    assert "Home" not in result.text.split("\n")
    comparable = comparable_text(result.text)
    assert "minutes ago" not in comparable
    assert "views" not in comparable
    assert normalise(PARAGRAPHS[2]) in comparable


def test_furniture_churn_on_hand_written_page() -> None:
    first = extract_article(news_page(clock="Updated 3 minutes ago", year=2025, views=9), URL)
    second = extract_article(news_page(clock="Updated 41 minutes ago", year=2026, views=9876), URL)
    assert comparable_text(first.text) == comparable_text(second.text)
    assert content_hash(first.title, comparable_text(first.text)) == content_hash(
        second.title, comparable_text(second.text)
    )


def test_edit_on_hand_written_page_changes_hash() -> None:
    before = extract_article(news_page(), URL)
    after = extract_article(news_page().replace("40 detainees", "60 detainees"), URL)
    assert "60 detainees" in comparable_text(after.text)
    assert content_hash(before.title, comparable_text(before.text)) != content_hash(
        after.title, comparable_text(after.text)
    )


def test_extract_is_deterministic_and_returns_value() -> None:
    page = news_page()
    first, second = extract_article(page, URL), extract_article(page, URL)
    assert isinstance(first, Extracted)
    assert first == second


@pytest.mark.parametrize(
    ("markup", "title"),
    [
        ('<meta name="twitter:title" content="Twitter headline">', "Twitter headline"),
        ("<title>Only the title - news.example.org</title>", "Only the title"),
        ("<title>Kept: A - B</title>", "Kept: A - B"),
        ("<title>Truce talks - Doha</title>", "Truce talks - Doha"),
        # og:title outranks twitter:title wherever it stands; an empty one does not count.
        (
            '<meta name="twitter:title" content="Second"><meta property="og:title" content=" ">'
            '<meta name="og:title" content="First | Doha Daily">'
            '<meta property="og:site_name" content="Doha Daily">',
            "First",
        ),
        # The site's name is read from property= only, as the Open Graph protocol writes it.
        (
            '<meta property="og:title" content="Talks end | Doha Daily">'
            '<meta name="og:site_name" content="Doha Daily">',
            "Talks end | Doha Daily",
        ),
        ('<meta property="og:title"><meta name="twitter:title" content="Kept">', "Kept"),
    ],
)
def test_title_fallbacks(markup: str, title: str) -> None:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    page = f"<html><head>{markup}</head><body><article>{body}</article></body></html>"
    assert extract_article(page, URL).title == title


def test_title_from_single_h1() -> None:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    page = f"<html><head><title>Site</title></head><body><h1>The headline</h1>{body}</body></html>"
    assert extract_article(page, URL).title == "The headline"


def test_reindented_markup_gives_same_lines() -> None:
    page = news_page()
    squeezed = re.sub(r">\s+<", "><", page).replace(" in Doha on", "\n  in Doha\ton")
    assert comparable_text(extract_article(squeezed, URL).text) == comparable_text(
        extract_article(page, URL).text
    )


# --- decoding and junk ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "declared"),
    [
        ("utf-8", "utf-8"),
        ("cp1252", "windows-1252"),
        ("latin-1", "iso-8859-1"),
        ("shift_jis", "shift_jis"),
        ("utf-8", None),
    ],
)
def test_bytes_decoded_by_declared_charset(codec: str, declared: str | None) -> None:
    meta = f'<meta charset="{declared}">' if declared else ""
    word = "東京" if codec == "shift_jis" else "café"
    ascii_body = " ".join(p for p in PARAGRAPHS if p.isascii())
    text = f"{ascii_body} Later, at a {word} near the hotel, they kept talking."
    page = f"<html><head>{meta}</head><body><article><p>{text}</p></article></body></html>"
    assert word in extract_article(page.encode(codec), URL).text


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-32"])
def test_bytes_with_bom(codec: str) -> None:
    assert PARAGRAPHS[0] in extract_article(news_page().encode(codec), URL).text


def test_undeclared_invalid_utf8_still_extracts() -> None:
    page = news_page().encode("utf-8").replace(b"Doha", b"Doh\xe0\xff", 1)
    assert "Negotiators" in extract_article(page, URL).text


@pytest.mark.parametrize(
    ("junk", "reason"),
    [
        (b"", "empty"),
        ("   \n\t ", "empty"),
        (bytes(range(256)) * 8, "binary"),
        (gzip.compress(b"<html><body><p>hello</p></body></html>"), "binary"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(500), "binary"),
        ("Just a plain sentence with no markup at all.", "no HTML"),
        ("<html><body></body></html>", "no article text"),
        ("<html><body><nav><a href='/'>Home</a></nav></body></html>", "no article text"),
        (b"\xff\xfe\xfa<html>\x80\x81", "no HTML markup"),
        (b"<html>\xfa\x80\x81", "no article text"),
        ("<<<>>><!--", "not parseable|no article text"),
    ],
)
def test_junk_raises_extract_error(junk: bytes | str, reason: str) -> None:
    with pytest.raises(ExtractError, match=reason) as caught:
        extract_article(junk, URL)
    assert caught.value.url == URL


def test_deep_nesting_and_lone_surrogates_do_not_crash() -> None:
    deep = "<div>" * 5000 + " ".join(PARAGRAPHS) + "</div>" * 5000
    for page in (f"<html><body>{deep}</body></html>", news_page().replace("Doha", "Doha\ud800")):
        with contextlib.suppress(ExtractError):
            extract_article(page, URL)


def test_boms_are_known_to_codecs() -> None:
    # guards the BOM table's order assumption: UTF-32-LE's BOM begins with UTF-16-LE's
    assert codecs.BOM_UTF32_LE.startswith(codecs.BOM_UTF16_LE)


# --- feed fragments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("<p>One.</p><p>Two.</p>", "One.\nTwo."),
        ("First line<br>second line", "First line\nsecond line"),
        ("Plain summary, no markup.", "Plain summary, no markup."),
        ("AT&amp;T and &#8220;quotes&#8221;", "AT&T and \u201cquotes\u201d"),
        ("<p>Kept</p><script>alert(1)</script><style>p{}</style>", "Kept"),
        ("Before<!-- note -->after", "Beforeafter"),
        ("<ul><li>a</li><li>b</li></ul>", "a\nb"),
        ("<p>  lots \n of   space </p>", "lots of space"),
        ("", ""),
        ("</p></div><<>>", "<<>>"),
        ("a <b>bold</b>\n<i>move</i>", "a bold move"),
        ("\x00\x01<p>x</p>\ud800", "x"),
    ],
)
def test_fragment_to_text(fragment: str, expected: str) -> None:
    assert fragment_to_text(fragment) == expected
