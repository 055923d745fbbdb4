"""``feeds_from``: OPML subscription lists of the shapes feed readers export."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from watcher.cli.commands import main
from watcher.config.loading import load_config
from watcher.config.opml import OpmlFeed, parse_opml, slug, unique_names
from watcher.errors import ConfigError

# Nested folders as Feedly / Inoreader / NetNewsWire export them (OPML 2.0).
NESTED = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="World" title="World">
      <outline type="rss" text="Reuters World" title="Reuters World"
               xmlUrl="https://feeds.example.com/world" htmlUrl="https://example.com/"/>
      <outline text="Middle East">
        <outline type="rss" text="Al Desk" xmlUrl="https://desk.example.org/rss"
                 category="/conflict/syria,daily"/>
      </outline>
    </outline>
    <outline type="rss" text="Café Économie" xmlUrl="https://eco.example.net/feed.xml"/>
  </body>
</opml>
"""

# OPML 1.0 from an old reader: no type, no title, upper-case-ish attribute spelling.
OPML1 = """<?xml version="1.0" encoding="ISO-8859-1"?>
<opml version="1.0">
<head><title>my feeds</title></head>
<body>
<outline text="Tech News" xmlurl="http://tech.example.com/index.rdf"/>
<outline text="Tech News" xmlUrl="http://other.example.com/rss"/>
<outline text="A link, not a feed" type="link" url="http://example.com/page"/>
</body>
</opml>
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_with(tmp_path: Path, yaml_text: str) -> Path:
    return write(tmp_path, "watcher.yaml", yaml_text)


def test_nested_folders_become_tags_and_titles_names(tmp_path: Path) -> None:
    write(tmp_path, "subs.opml", NESTED)
    config = load_config(config_with(tmp_path, "feeds_from: [subs.opml]\n"))
    feeds = {f.name: f for f in config.feeds}
    assert set(feeds) == {"reuters-world", "al-desk", "cafe-economie"}
    assert feeds["reuters-world"].url == "https://feeds.example.com/world"
    assert feeds["reuters-world"].tags == ["World"]
    assert feeds["al-desk"].tags == ["World", "Middle East", "conflict", "syria", "daily"]
    assert feeds["cafe-economie"].tags == []


def test_opml1_without_types_and_duplicate_titles(tmp_path: Path) -> None:
    write(tmp_path, "old.opml", OPML1)
    config = load_config(config_with(tmp_path, "feeds_from: [old.opml]\n"))
    names = [f.name for f in config.feeds]
    urls = [f.url for f in config.feeds]
    assert urls == ["http://tech.example.com/index.rdf", "http://other.example.com/rss"]
    assert names[0] == "tech-news" and names[1].startswith("tech-news-")


def test_duplicates_across_yaml_and_opml_are_one_feed(tmp_path: Path) -> None:
    write(tmp_path, "a.opml", NESTED)
    write(
        tmp_path,
        "b.opml",
        """<opml version="2.0"><body>
        <outline text="Again" xmlUrl="https://FEEDS.example.com/world" category="wire"/>
        <outline text="Eco" xmlUrl="https://eco.example.net/feed.xml"/>
        </body></opml>""",
    )
    config = load_config(
        config_with(
            tmp_path,
            """
            feeds:
              - {name: eco, url: "https://eco.example.net/feed.xml", interval: 5m}
            feeds_from: [a.opml, b.opml]
            rules:
              - {name: wires, tags: [wire], notify: []}
            """,
        )
    )
    by_url = {f.url.lower(): f for f in config.feeds}
    assert len(config.feeds) == 3
    assert by_url["https://eco.example.net/feed.xml"].name == "eco"  # the YAML entry wins
    assert by_url["https://feeds.example.com/world"].tags == ["World", "wire"]


def test_rules_may_name_opml_feeds_and_tags(tmp_path: Path) -> None:
    write(tmp_path, "subs.opml", NESTED)
    config = load_config(
        config_with(
            tmp_path,
            """
            feeds_from: [subs.opml]
            rules:
              - {name: syria, tags: [syria], feeds: [al-desk]}
            """,
        )
    )
    assert config.rules[0].feeds == ["al-desk"]
    with pytest.raises(ConfigError, match="unknown feed 'al-dsk'"):
        load_config(
            config_with(tmp_path, "feeds_from: [subs.opml]\nrules: [{name: r, feeds: [al-dsk]}]\n")
        )


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ('<opml version="2.0"><body>\n<outline text="x" xmlUrl="http://a/">\n</body></opml>', 3,
         "mismatched tag"),
        ("<rss><channel/></rss>", 1, "not an OPML file"),
        ('<opml><body>\n\n<outline text="ftp" xmlUrl="ftp://example.com/f"/></body></opml>', 3,
         "needs http:// or https://"),
        ("", 1, "no element found"),
        (
            '<?xml version="1.0"?>\n<!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">]>\n'
            '<opml><body><outline text="&a;" xmlUrl="http://a.example/"/></body></opml>',
            2,
            "DTD or entity declaration is not allowed",
        ),
        (
            '<?xml version="1.0"?>\n<opml><body><outline text="&ext;" xmlUrl="http://a/"/>'
            "</body></opml>",
            2,
            "undefined entity",
        ),
    ],
    ids=["unclosed", "not-opml", "bad-url", "empty", "entity-bomb", "undefined-entity"],
)
def test_bad_opml_is_a_config_error_with_file_and_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    opml = tmp_path / "bad.opml"
    opml.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config_with(tmp_path, "feeds_from: [bad.opml]\n"))
    assert caught.value.file == str(opml)
    assert caught.value.line == line, str(caught.value)
    assert says in str(caught.value)


def test_missing_opml_file_names_the_config_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_with(tmp_path, "database: sqlite://\nfeeds_from:\n  - nope.opml\n"))
    assert caught.value.line == 3 and "no such file" in str(caught.value)


def test_every_load_reads_the_opml_again(tmp_path: Path) -> None:
    """SIGHUP calls load_config: an edited subscription list must show up."""
    opml = write(tmp_path, "subs.opml", OPML1)
    path = config_with(tmp_path, "feeds_from: [subs.opml]\n")
    assert len(load_config(path).feeds) == 2
    opml.write_text(NESTED, encoding="utf-8")
    names = {f.name for f in load_config(path).feeds}
    assert names == {"reuters-world", "al-desk", "cafe-economie"}


def test_feeds_opml_round_trips(tmp_path: Path) -> None:
    write(tmp_path, "subs.opml", NESTED)
    path = config_with(
        tmp_path, 'feeds_from: [subs.opml]\nfeeds: [{name: wt, url: "http://x.example/?a=1&b=2"}]\n'
    )
    result = CliRunner().invoke(main, ["-c", str(path), "feeds", "--opml"])
    assert result.exit_code == 0, result.output
    root = ET.fromstring(result.output)
    assert root.get("version") == "2.0"
    outlines = root.findall("./body/outline")
    assert outlines[0].get("xmlUrl") == "http://x.example/?a=1&b=2"
    again = write(tmp_path, "again.opml", result.output)
    reread = parse_opml(again.read_bytes(), str(again))
    assert {(f.url, f.title) for f in reread} == {(f.url, f.name) for f in load_config(path).feeds}
    al = next(f for f in reread if f.title == "al-desk")
    assert al.tags == ("World", "Middle East", "conflict", "syria", "daily")


@given(st.lists(st.tuples(st.text(max_size=12), st.integers(0, 5)), max_size=30))
def test_names_are_unique_valid_and_stable_when_feeds_are_appended(
    items: list[tuple[str, int]],
) -> None:
    feeds = [
        OpmlFeed(f"http://h{n}.example/{i}", title, (), 1) for i, (title, n) in enumerate(items)
    ]
    names = unique_names(feeds, ["taken"])
    assert len(set(names)) == len(names) and "taken" not in names
    assert all(name and all(c.isalnum() or c in "._-" for c in name) for name in names)
    more = [*feeds, OpmlFeed("http://late.example/", items[0][0] if items else "x", (), 1)]
    assert unique_names(more, ["taken"])[: len(names)] == names


def test_slug() -> None:
    assert slug("  BBC News — World  ") == "bbc-news-world"
    assert slug("日本") == ""
