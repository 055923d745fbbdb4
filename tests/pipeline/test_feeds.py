"""watcher.pipeline.feeds: formats, entry identity, URL canonicalisation, and hostile input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from watcher.errors import FeedError
from watcher.pipeline.feeds import ParsedFeed, feed_digest, parse_feed
from watcher.pipeline.urls import canonical_url
from watcher.records import FeedEntry

FEED_URL = "https://news.example.org/feeds/world.xml"
RSS_HEADERS = {"Content-Type": "application/rss+xml; charset=utf-8"}

RSS2 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>World
    news</title>
  <link>https://news.example.org/</link>
  <item>
    <title>Talks &lt;b&gt;resume&lt;/b&gt; in Geneva</title>
    <link>https://News.Example.org/world/talks?utm_source=rss&amp;id=7#top</link>
    <guid isPermaLink="false"> story-7 </guid>
    <description>Short summary.</description>
    <content:encoded><![CDATA[<p>Talks resumed on Monday, officials said.</p>]]></content:encoded>
    <pubDate>Mon, 03 Apr 2023 01:02:03 +0200</pubDate>
  </item>
  <item>
    <title>Port strike</title>
    <link>/business/port-strike?fbclid=abc</link>
  </item>
  <item><title>No identity at all</title></item>
</channel>
</rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example.com/posts/">
  <title type="html">Notes &amp;amp; more</title>
  <id>tag:blog.example.com,2023:feed</id>
  <updated>2023-04-03T10:00:00Z</updated>
  <entry>
    <id>tag:blog.example.com,2023:1</id>
    <title type="xhtml">
      <div xmlns="http://www.w3.org/1999/xhtml">Cease-fire <b>holds</b></div>
    </title>
    <link rel="alternate" href="cease-fire.html"/>
    <updated>2023-04-03T08:30:00-04:00</updated>
    <summary>Brief.</summary>
    <content type="html">&lt;p&gt;The cease-fire held overnight.&lt;/p&gt;</content>
  </entry>
</feed>"""

RSS1 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="http://rdf.example.net/">
    <title>RDF wire</title><link>http://rdf.example.net/</link><description>d</description>
  </channel>
  <item rdf:about="http://rdf.example.net/a1">
    <title>Floods recede</title>
    <link>http://rdf.example.net/a1</link>
    <description>Water levels fell.</description>
    <dc:date>2023-04-03T01:02:03+02:00</dc:date>
  </item>
</rdf:RDF>"""

JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON desk",
        "items": [
            {
                "id": "j-1",
                "url": "/stories/museum?utm_campaign=x",
                "title": "Museum  reopens",
                "content_text": "plain text body",
                "content_html": "<p>html body</p>",
                "date_published": "2023-04-03T08:00:00+02:00",
            },
            {"id": 42, "url": "https://json.example.com/stories/42"},
            {"url": "https://json.example.com/stories/no-id", "summary": "s"},
            {"title": "neither id nor url"},
            "not an object",
        ],
    }
).encode()


def parse(content: bytes, headers: dict[str, str] | None = None) -> ParsedFeed:
    return parse_feed(content, url=FEED_URL, headers=headers)


def test_rss2_entry_fields() -> None:
    feed = parse(RSS2, RSS_HEADERS)
    assert feed.title == "World news" and feed.warning is None
    first = feed.entries[0]
    assert first == FeedEntry(
        key="story-7",
        guid="story-7",
        link="https://News.Example.org/world/talks?utm_source=rss&id=7#top",
        canonical_url="https://news.example.org/world/talks?id=7",
        title="Talks resume in Geneva",
        content_html="<p>Talks resumed on Monday, officials said.</p>",
        published=datetime(2023, 4, 2, 23, 2, 3, tzinfo=UTC),
    )


def test_entries_without_guid_are_keyed_by_canonical_link_and_others_dropped() -> None:
    feed = parse(RSS2, RSS_HEADERS)
    assert len(feed.entries) == 2  # the item with neither guid nor link is gone
    strike = feed.entries[1]
    assert strike.guid is None
    assert strike.link == "https://news.example.org/business/port-strike?fbclid=abc"
    assert strike.key == strike.canonical_url == "https://news.example.org/business/port-strike"


def test_relative_links_resolve_against_feed_url_without_headers() -> None:
    strike = parse(RSS2).entries[1]
    assert strike.link == "https://news.example.org/business/port-strike?fbclid=abc"


def test_content_location_header_is_the_base_for_relative_links() -> None:
    headers = {**RSS_HEADERS, "Content-Location": "https://mirror.example.net/rss/"}
    strike = parse(RSS2, headers).entries[1]
    assert strike.link == "https://mirror.example.net/business/port-strike?fbclid=abc"


def test_atom_with_xml_base_and_html_titles() -> None:
    feed = parse(ATOM, {"Content-Type": "application/atom+xml"})
    assert feed.title == "Notes & more"
    (entry,) = feed.entries
    assert entry.key == entry.guid == "tag:blog.example.com,2023:1"
    assert entry.link == "https://blog.example.com/posts/cease-fire.html"
    assert entry.title == "Cease-fire holds"
    assert entry.content_html == "<p>The cease-fire held overnight.</p>"
    assert entry.published == datetime(2023, 4, 3, 12, 30, tzinfo=UTC)


def test_rss1_rdf() -> None:
    feed = parse(RSS1, {"Content-Type": "application/rdf+xml"})
    assert feed.title == "RDF wire"
    (entry,) = feed.entries
    assert entry.link == entry.canonical_url == "http://rdf.example.net/a1"
    assert entry.key == "http://rdf.example.net/a1"
    assert entry.published == datetime(2023, 4, 2, 23, 2, 3, tzinfo=UTC)


def test_rss091_is_read() -> None:
    body = b"""<rss version="0.91"><channel><title>Old</title>
        <item><title>a</title><link>http://old.example.com/a</link></item></channel></rss>"""
    assert [e.key for e in parse(body).entries] == ["http://old.example.com/a"]


def test_json_feed() -> None:
    feed = parse(JSON_FEED, {"Content-Type": "application/feed+json"})
    assert feed.title == "JSON desk" and feed.warning is None
    first, numeric, no_id = feed.entries
    assert first.key == "j-1"
    assert first.link == "https://news.example.org/stories/museum?utm_campaign=x"
    assert first.canonical_url == "https://news.example.org/stories/museum"
    assert (first.title, first.content_html) == ("Museum reopens", "<p>html body</p>")
    assert first.published == datetime(2023, 4, 3, 6, 0, tzinfo=UTC)
    assert numeric.key == "42"
    assert no_id.key == "https://json.example.com/stories/no-id" and no_id.content_html == "s"


def test_duplicate_keys_keep_the_first_entry() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
      <item><title>first</title><guid>g</guid></item>
      <item><title>second</title><guid>g</guid></item>
      <item><title>third</title><link>https://x.example/a?utm_medium=rss</link></item>
      <item><title>fourth</title><link>https://X.example:443/a#comments</link></item>
    </channel></rss>"""
    assert [e.title for e in parse(body).entries] == ["first", "third"]


def test_empty_guid_falls_back_to_link_and_non_http_links_are_ignored() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
      <item><title>a</title><guid>  </guid><link>https://x.example/a</link></item>
      <item><title>b</title><link>javascript:alert(1)</link></item>
      <item><title>c</title><guid>c-1</guid><link>file:///etc/passwd</link></item>
    </channel></rss>"""
    a, c = parse(body).entries
    assert (a.key, a.guid) == ("https://x.example/a", None)
    assert (c.key, c.link, c.canonical_url) == ("c-1", None, None)


def test_a_permalink_guid_that_is_no_url_is_not_a_link() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
      <item><title>a</title><guid>12345</guid></item>
      <item><title>b</title><guid>https://x.example/b</guid></item>
      <item><title>c</title><guid>/c</guid><link>/c</link></item>
    </channel></rss>"""
    links = [(e.key, e.link) for e in parse(body).entries]
    assert links == [
        ("12345", None),
        ("https://x.example/b", "https://x.example/b"),
        ("/c", "https://news.example.org/c"),
    ]


def test_valid_feed_without_entries_is_not_an_error() -> None:
    feed = parse(b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>')
    assert feed == ParsedFeed(title="Quiet", entries=(), warning=None)


def test_charset_from_http_headers_overrides_the_document() -> None:
    body = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
    body += "<title>Café</title><item><guid>1</guid><title>Déjà vu</title></item></channel></rss>"
    feed = parse(body.encode("latin-1"), {"Content-Type": "text/xml; charset=iso-8859-1"})
    assert (feed.title, feed.entries[0].title) == ("Café", "Déjà vu")


def test_malformed_feed_with_entries_gives_a_warning() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
      <item><title>Fish & chips</title><guid>1</guid></item>
    </channel>"""
    feed = parse(body)
    assert [e.title for e in feed.entries] == ["Fish & chips"]
    assert feed.warning is not None
    assert feed.warning.startswith("not well-formed XML (line 2,")


def test_wrong_media_type_with_entries_gives_a_warning() -> None:
    feed = parse(RSS2, {"Content-Type": "text/html; charset=utf-8"})
    assert len(feed.entries) == 2
    assert feed.warning == "NonXMLContentType: text/html; charset=utf-8 is not an XML media type"


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"", None, "empty body"),
        (b" \r\n\t", None, "empty body"),
        (b"<!DOCTYPE html><html><head><title>News</title></head><body>x</body></html>", None,
         "got an HTML page, not a feed"),
        (b"<html><body><p>Moved</p></body></html>", {"Content-Type": "text/html"},
         "got an HTML page, not a feed"),
        (b"<div>not html, not a feed</div>", {"Content-Type": "text/html"},
         "got an HTML page, not a feed"),
        (b"<?xml version='1.0'?><catalog><book/></catalog>", None,
         "no RSS, Atom or JSON Feed found"),
        (b"<rss version='2.0'><channel><title>x</title>", None, "not well-formed XML"),
        (b"/etc/passwd", None, "not well-formed XML"),  # never opened as a file
        (b'{"version": "1", "items": []}', None, "a JSON document, but not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1"}', None, "JSON Feed without an items"),
        (b"{ not json", None, "invalid JSON"),
        (b"{" * 100_000, None, "invalid JSON"),
    ],
    ids=["empty", "blank", "html", "html-type", "fragment", "other-xml", "truncated", "path",
         "json", "json-no-items", "bad-json", "deep-json"],
)  # fmt: skip
def test_unusable_documents_raise_feed_error(
    body: bytes, headers: dict[str, str] | None, reason: str
) -> None:
    with pytest.raises(FeedError) as info:
        parse(body, headers)
    assert info.value.reason.startswith(reason)
    assert info.value.url == FEED_URL


# --- canonical_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM", "http://example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com/Path/Case?Q=Case", "https://example.com/Path/Case?Q=Case"),
        ("https://example.com/a?utm_source=x&utm_medium=y", "https://example.com/a"),
        ("https://example.com/a?UTM_Source=x&id=3", "https://example.com/a?id=3"),
        ("https://example.com/a?b=2&fbclid=z&a=1", "https://example.com/a?b=2&a=1"),
        ("https://example.com/a?gclid=1&dclid=2&msclkid=3&mc_cid=4&mc_eid=5", "https://example.com/a"),
        ("https://example.com/a?ref=tw&ref_src=twsrc&cmpid=x&icid=y&_ga=1&igshid=2", "https://example.com/a"),
        ("https://example.com/a?id=1&&page=2&", "https://example.com/a?id=1&page=2"),
        ("https://example.com/a?q=a%20b+c&x", "https://example.com/a?q=a%20b+c&x"),
        ("https://example.com/a?refresh=1&reference=2", "https://example.com/a?refresh=1&reference=2"),
        ("https://User:Pw@Example.com/", "https://example.com/"),
        ("https://a@b@Example.com:443/x", "https://example.com/x"),
        ("http://[2001:DB8::1]:80/a", "http://[2001:db8::1]/a"),
        ("http://[2001:db8::1]/a", "http://[2001:db8::1]/a"),
        ("https://example.com:/a", "https://example.com/a"),
    ],
)  # fmt: skip
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_resolves_against_a_base() -> None:
    assert canonical_url("../b?utm_id=1#x", "https://Example.com/a/c") == "https://example.com/b"


_url_parts = st.tuples(
    st.sampled_from(["http", "HTTPS", "ftp", ""]),
    st.text(alphabet="abcXYZ09.-:@[]", max_size=20),
    st.text(alphabet="/abc%20.;", max_size=20),
    st.lists(
        st.tuples(
            st.sampled_from(["utm_source", "UTM_x", "id", "ref", "q", "", "a b"]),
            st.text(alphabet="ab=&%2", max_size=5),
        ),
        max_size=5,
    ),
    st.text(alphabet="abc#?", max_size=6),
)


@given(_url_parts)
def test_canonical_url_is_idempotent_on_url_shaped_input(
    parts: tuple[str, str, str, list[tuple[str, str]], str],
) -> None:
    scheme, host, path, params, fragment = parts
    query = "&".join(f"{k}={v}" for k, v in params)
    url = f"{scheme}://{host}{path}?{query}#{fragment}" if scheme else f"{host}{path}?{query}"
    try:
        once = canonical_url(url)
    except ValueError:
        reject()  # unparseable (e.g. "[" in the host): the caller handles ValueError
    assert canonical_url(once) == once


@given(st.text(max_size=60))
def test_canonical_url_is_idempotent_on_any_text(url: str) -> None:
    try:
        once = canonical_url(url)
    except ValueError:
        reject()  # unparseable (e.g. "[" in the host): the caller handles ValueError
    assert canonical_url(once) == once


# --- hostile input ---------------------------------------------------------------------------

_FEED_TOKENS = [
    "<rss version='2.0'>", "<channel>", "<item>", "</item>", "<title>", "</title>", "<link>",
    "</link>", "<guid>", "</guid>", "<feed xmlns='http://www.w3.org/2005/Atom'>", "<entry>",
    "<id>", "</id>", "&amp;", "&", "<![CDATA[", "]]>", "<!DOCTYPE rss [<!ENTITY e 'x'>]>", "&e;",
    "http://[", "//x", "{", '"items": [', "]", "}", "\x00", "é", " ", "a", "1",
    "<?xml version='1.0' encoding='utf-16'?>",
]  # fmt: skip
_FEEDISH = st.lists(st.sampled_from(_FEED_TOKENS), max_size=40).map(
    lambda parts: "".join(parts).encode("utf-8")
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000) | _FEEDISH, st.sampled_from([None, RSS_HEADERS, {"X": "y"}]))
def test_any_bytes_give_a_feed_or_a_feed_error(
    content: bytes, headers: dict[str, str] | None
) -> None:
    try:
        feed = parse_feed(content, url=FEED_URL, headers=headers)
    except FeedError:
        return
    assert all(e.key for e in feed.entries)
    assert len({e.key for e in feed.entries}) == len(feed.entries)


# --- the digest that lets an unchanged feed skip parsing --------------------------------------

_DIGEST_FEED = (
    '<?xml version="1.0"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    "<channel><title>{title}</title><lastBuildDate>{built}</lastBuildDate>"
    "<item><guid>a-1</guid><title>{headline}</title></item>"
    "<item><guid>a-2</guid><title>Second</title></item>"
    "<pubDate>{built}</pubDate></channel></rss>"
)


def _digest(**parts: str) -> str:
    values = {"title": "Desk", "built": "Mon, 01 Dec 2026 10:00:00 GMT", "headline": "First"}
    document = _DIGEST_FEED.format(**{**values, **parts}).encode()
    return feed_digest(document, url="https://news.example.org/rss")


def test_a_feed_regenerated_with_only_new_dates_keeps_its_digest() -> None:
    assert _digest() == _digest(built="Mon, 01 Dec 2026 11:00:00 GMT") == _digest(title="D2")


def test_any_change_inside_an_entry_or_to_the_markup_changes_the_digest() -> None:
    assert _digest(headline="First, revised") != _digest()
    namespaced = _DIGEST_FEED.replace("elements/1.1/", "elements/2.0/").format(
        title="Desk", built="x", headline="First"
    )
    plain = _DIGEST_FEED.format(title="Desk", built="x", headline="First")
    url = "https://news.example.org/rss"
    assert feed_digest(namespaced.encode(), url=url) != feed_digest(plain.encode(), url=url)
    # A JSON Feed (and anything without XML entries) is taken whole.
    json_feed = b'{"version": "https://jsonfeed.org/version/1.1", "title": "%s", "items": []}'
    assert feed_digest(json_feed % b"a", url=url) != feed_digest(json_feed % b"b", url=url)
