"""The SSRF guard: which article links are refused and why, and in a real pass on loopback
that a refused page is never requested (the article falls back to the feed's text)."""

from __future__ import annotations

import asyncio
import html
import ipaddress
import logging
import re

import pytest

from support.newsroom import Newsroom, Story, make_story
from support.paths import ROOT
from support.server import LoopbackServer, Reply
from watcher.config.loading import parse_config
from watcher.config.models import Config
from watcher.errors import ConfigError, FetchError
from watcher.pipeline.fetch import Fetcher, URLCheck
from watcher.pipeline.netguard import (
    HINT,
    AllowList,
    Refused,
    address_problem,
    check_url,
    parse_allow_entry,
    refusal,
    url_guard,
)
from watcher.storage.store import Store
from watcher.tasks import PassSummary, open_context, run_pass

LOOPBACK = "a loopback address"

# ------------------------------------------------------------------- the policy table

ADDRESSES = [
    ("127.0.0.1", LOOPBACK),
    ("127.255.255.254", LOOPBACK),
    ("10.1.2.3", "a private address"),
    ("172.31.255.1", "a private address"),
    ("192.168.0.10", "a private address"),
    ("169.254.169.254", "a link-local address"),  # cloud metadata
    ("100.64.0.1", "a shared (carrier-grade NAT) address"),
    ("100.127.255.254", "a shared (carrier-grade NAT) address"),
    ("0.0.0.0", "the unspecified address"),
    ("0.1.2.3", "a special-purpose address"),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.250", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "a reserved address"),
    ("192.0.2.1", "a special-purpose address"),  # documentation
    ("198.18.0.1", "a special-purpose address"),  # benchmarking
    ("::1", LOOPBACK),
    ("::", "the unspecified address"),
    ("fe80::1", "a link-local address"),
    ("fe80::1%eth0", "a link-local address"),
    ("fc00::1", "a private address"),
    ("fd12:3456::1", "a private address"),
    ("ff02::1", "a multicast address"),
    ("fec0::1", "a site-local address"),
    ("2001:db8::1", "a special-purpose address"),
    ("::7f00:1", "a reserved address"),  # deprecated IPv4-compatible form
    ("::ffff:127.0.0.1", f"{LOOPBACK} (127.0.0.1 inside IPv6)"),
    ("::ffff:169.254.169.254", "a link-local address (169.254.169.254 inside IPv6)"),
    ("2002:7f00:1::", f"{LOOPBACK} (127.0.0.1 inside IPv6)"),  # 6to4
    ("64:ff9b::a9fe:a9fe", "a link-local address (169.254.169.254 inside IPv6)"),  # NAT64
]
PUBLIC = [
    "8.8.8.8",
    "93.184.216.34",
    "100.128.0.1",  # just past the shared block
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # what DNS64 answers for an IPv4-only public site
]


@pytest.mark.parametrize(("address", "problem"), ADDRESSES, ids=[a for a, _ in ADDRESSES])
def test_non_public_addresses_are_named(address: str, problem: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_every_resolved_address_must_be_public() -> None:
    public, private = ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.7")
    assert refusal("news.example", [public], AllowList()) is None
    assert refusal("news.example", [public, private], AllowList()) == (
        f"news.example resolves to 10.0.0.7, a private address ({HINT})"
    )
    assert refusal("news.example", [], AllowList()) == "news.example resolves to no address"
    assert refusal("news.example", [private], AllowList.parse(["10.0.0.0/8"])) is None
    assert refusal("NEWS.example.", [private], AllowList.parse(["news.example"])) is None


# ------------------------------------------------------------ URLs, resolved for real

# Numeric hosts and "localhost" resolve without a network; getaddrinfo normalises spellings.
REFUSED = [
    ("http://127.0.0.1:6379/", f"127.0.0.1 is {LOOPBACK}"),
    ("http://2130706433/", f"2130706433 resolves to 127.0.0.1, {LOOPBACK}"),
    ("http://0x7f.1/", f"0x7f.1 resolves to 127.0.0.1, {LOOPBACK}"),
    ("http://0x7f000001/", f"0x7f000001 resolves to 127.0.0.1, {LOOPBACK}"),
    ("http://017700000001/", f"017700000001 resolves to 127.0.0.1, {LOOPBACK}"),  # octal
    ("http://127.1/", f"127.1 resolves to 127.0.0.1, {LOOPBACK}"),
    ("http://[::ffff:127.0.0.1]/", LOOPBACK),
    ("http://[::ffff:7f00:1]/", LOOPBACK),
    ("http://[::1]:6379/", f"::1 is {LOOPBACK}"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://10.0.0.1/", "10.0.0.1 is a private address"),
    ("https://192.168.1.1/admin", "192.168.1.1 is a private address"),
    ("http://[fd00::1]/", "fd00::1 is a private address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared (carrier-grade NAT) address"),
    ("http://0.0.0.0:8080/", "0.0.0.0 is the unspecified address"),
    ("http://[::]/", ":: is the unspecified address"),
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://news.example.org@127.0.0.1/", f"127.0.0.1 is {LOOPBACK}"),  # userinfo trick
    ("http://localhost:8080/", "localhost resolves to "),
]


def guard(url: str, allow: AllowList | None = None) -> FetchError | None:
    try:
        asyncio.run(check_url(url, allow))
    except FetchError as exc:
        return exc
    return None


@pytest.mark.parametrize(("url", "says"), REFUSED, ids=[u for u, _ in REFUSED])
def test_links_into_private_networks_are_refused(url: str, says: str) -> None:
    error = guard(url)
    assert isinstance(error, Refused), error
    assert error.url == url
    assert error.reason.startswith("refused: ") and says in error.reason
    assert error.reason.endswith(f"({HINT})")


def test_refusal_message_says_what_and_how_to_allow() -> None:
    error = guard("http://127.0.0.1:6379/")
    assert str(error) == (
        "http://127.0.0.1:6379/: refused: 127.0.0.1 is a loopback address "
        "(set allow_private_networks or the feed's allow_hosts to allow it)"
    )


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/pub/",
        "ftp://ftp.example.org/pub/",  # refused whatever the host
        "gopher://127.0.0.1:6379/_INFO",
        "dict://127.0.0.1:11211/stat",
    ],
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    error = guard(url, AllowList.parse(["127.0.0.0/8", "ftp.example.org"]))
    assert isinstance(error, Refused)
    scheme = url.split(":")[0]
    assert error.reason == f"refused: {scheme}: links are never fetched, only http and https"


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/",
        "https://1.1.1.1:8443/x",
        "http://[2606:4700:4700::1111]/",
        "http://[::ffff:8.8.8.8]/",
    ],
)
def test_public_links_pass(url: str) -> None:
    assert guard(url) is None


def test_spelling_httpx_itself_rejects_is_an_error_not_a_fetch() -> None:
    error = guard("http://0177.0.0.1/")  # octal dotted quad: httpx refuses to parse it
    assert error is not None and "invalid URL" in error.reason


@pytest.mark.parametrize(
    ("entries", "url", "allowed"),
    [
        (["localhost"], "http://localhost:8080/", True),
        (["localhost"], "http://LOCALHOST.:8080/", True),
        (["localhost"], "http://127.0.0.1:8080/", False),  # a name allows that name only
        (["127.0.0.0/8"], "http://127.0.0.1/", True),
        (["127.0.0.0/8"], "http://2130706433/", True),
        (["127.0.0.0/8"], "http://[::ffff:127.0.0.1]/", True),
        (["127.0.0.0/8"], "http://[::1]/", False),
        (["127.0.0.0/8"], "http://10.0.0.1/", False),
        (["10.20.0.0/16"], "http://10.20.3.4/", True),
        (["10.20.0.0/16"], "http://10.21.0.1/", False),
        (["10.20.0.0/16"], "http://169.254.169.254/", False),
        (["fd00::/8"], "http://[fd00::5]/", True),
    ],
)
def test_allow_lists(entries: list[str], url: str, allowed: bool) -> None:
    error = guard(url, AllowList.parse(entries))
    assert (error is None) is allowed, error


def test_allow_lists_intersect() -> None:
    one = AllowList.parse(["10.0.0.0/8", "intranet.example.org", "fd00::/8", "wiki.lan"])
    two = AllowList.parse(["10.20.0.0/16", "intranet.example.org", "192.168.0.0/16"])
    assert one & two == AllowList(
        frozenset({"intranet.example.org"}), (ipaddress.ip_network("10.20.0.0/16"),)
    )
    assert one & AllowList() == AllowList()


# -------------------------------------------------------------- allow_hosts in config


@pytest.mark.parametrize(
    ("entry", "normalised"),
    [
        ("Intranet.Example.ORG.", "intranet.example.org"),
        ("10.20.0.0/16", "10.20.0.0/16"),
        ("192.168.1.5", "192.168.1.5/32"),
        ("[fd00::1]", "fd00::1/128"),
        ("fd00::/8", "fd00::/8"),
        ("cafe.be", "cafe.be"),  # hex-looking labels are still a name
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_allow_entries_are_normalised(entry: str, normalised: str) -> None:
    assert str(parse_allow_entry(entry)) == normalised


BAD_ENTRIES = [
    ("10.20.0.1/16", "'10.20.0.1/16' has host bits set: did you mean '10.20.0.0/16'?"),
    ("10.300.0.0/16", "bad network '10.300.0.0/16'"),
    ("0x7f.1", "bad network '0x7f.1'"),
    ("'2130706433'", "bad network '2130706433'"),
    ("intranet.example.org:8080", "has a port"),
    ("http://intranet.example.org/", "is a URL"),
    ("intra net", "bad host name"),
    ("wiki.123", "reads as an IP address"),
    ("''", "empty entry"),
    ("42", "an allow_hosts entry is a host name or a network"),
]


@pytest.mark.parametrize(("entry", "says"), BAD_ENTRIES, ids=[e for e, _ in BAD_ENTRIES])
def test_bad_allow_entries_name_line_and_key(entry: str, says: str) -> None:
    text = (
        "feeds:\n"
        "  - name: intranet\n"
        "    url: http://intranet.example.org/feed\n"
        "    allow_hosts:\n"
        "      - intranet.example.org\n"
        f"      - {entry}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "watcher.yaml")
    error = caught.value
    assert (error.line, error.key) == (6, "feeds[0].allow_hosts[1]")
    assert says in error.problem
    assert str(error).startswith("watcher.yaml:6: feeds[0].allow_hosts[1]: ")


def test_guard_is_on_unless_the_config_turns_it_off() -> None:
    assert parse_config("feeds: []").allow_private_networks is False
    assert parse_config("allow_private_networks: true").allow_private_networks is True
    with pytest.raises(ConfigError) as caught:
        parse_config("feeds: []\nallow_private_networks: sometimes", "w.yaml")
    assert (caught.value.line, caught.value.key) == (2, "allow_private_networks")


def test_example_config_documents_both_options() -> None:
    path = ROOT / "config/watcher.example.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("# allow_private_networks:", "allow_private_networks:")
    text = text.replace("    # allow_hosts:", "    allow_hosts:")
    config = parse_config(text)
    assert config.allow_private_networks is False
    assert "10.20.0.0/16" in config.feeds[0].allow_hosts


# ------------------------------------------------------------- the Fetcher's hook


def test_per_call_check_replaces_the_fetchers_own(loopback: LoopbackServer) -> None:
    loopback.route("/page", Reply(200, "hello"))
    url = loopback.url("/page")

    async def fetch(fetcher: Fetcher, check: URLCheck | None) -> bytes | FetchError:
        try:
            return (await fetcher.fetch(url, check_url=check)).content
        except FetchError as exc:
            return exc

    async def scenario() -> list[bytes | FetchError]:
        async with Fetcher() as plain, Fetcher(check_url=url_guard()) as guarded:
            return [
                await fetch(plain, None),  # no guard: feed polls
                await fetch(plain, url_guard()),  # per-call guard
                await fetch(guarded, None),  # the Fetcher's own guard
                await fetch(guarded, url_guard(AllowList.parse(["127.0.0.1"]))),
            ]

    outcomes = asyncio.run(scenario())
    assert outcomes[0] == b"hello" and outcomes[3] == b"hello"
    assert isinstance(outcomes[1], Refused) and isinstance(outcomes[2], Refused)
    assert len(loopback.requests_to("/page")) == 2


def test_redirect_to_another_scheme_is_refused(loopback: LoopbackServer) -> None:
    loopback.route("/a", Reply(302, headers={"Location": "file:///etc/passwd"}))

    async def scenario() -> None:
        async with Fetcher() as fetcher:
            await fetcher.fetch(
                loopback.url("/a"), check_url=url_guard(AllowList.parse(["127.0.0.1"]))
            )

    with pytest.raises(FetchError, match="unsupported URL"):
        asyncio.run(scenario())


# -------------------------------------------------------- a real pass on loopback


@pytest.fixture
def room(loopback: LoopbackServer) -> Newsroom:
    return Newsroom(loopback).attach()


def one_pass(config: Config, store: Store) -> PassSummary:
    async def go() -> PassSummary:
        async with open_context(config, store) as ctx:
            return await run_pass(ctx, recheck_all=True)

    return asyncio.run(go())


def config_for(feeds: list[tuple[str, str]], top: str = "", allow: str = "") -> Config:
    """Feeds as (name, url), each with the same ``allow_hosts`` flow list if given."""
    extra = f", allow_hosts: {allow}" if allow else ""
    lines = "".join(f'  - {{name: {n}, url: "{u}"{extra}}}\n' for n, u in feeds)
    return parse_config(
        f"{top}\ndefaults: {{recheck: [{{until: 7d, every: 1s}}]}}\nfeeds:\n{lines}"
    )


def rss(items: list[tuple[str, str, str]]) -> Reply:
    """A feed whose entries (guid, title, link) point wherever the test says."""
    body = "".join(
        f"<item><guid isPermaLink='false'>{g}</guid><title>{html.escape(t)}</title>"
        f"<link>{html.escape(link)}</link>"
        f"<description>{html.escape(t)}: the summary.</description></item>"
        for g, t, link in items
    )
    channel = f"<channel><title>t</title>{body}</channel>"
    return Reply(
        body=f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>',
        headers={"Content-Type": "application/rss+xml"},
    )


def source(store: Store, guid_or_url: str) -> str:
    article = store.find_article(guid_or_url)
    assert article is not None, guid_or_url
    (version,) = store.versions(article.id)
    return version.source


def story(room: Newsroom, slug: str = "talks") -> Story:
    return room.add(make_story(slug, f"Story about {slug}", seed=len(room.stories)))


def test_loopback_links_are_not_fetched_by_default(
    room: Newsroom, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    page = story(room)
    caplog.set_level(logging.INFO, logger="watcher.tasks")
    config = config_for([("news", room.url("/rss.xml"))])
    first, second = one_pass(config, store), one_pass(config, store)
    assert first.poll_counts() == {"ok": 1}  # the feed itself is on 127.0.0.1: trusted
    assert first.check_counts() == {"new": 1}
    assert second.check_counts() == {"unchanged": 1}
    assert room.server.requests_to(page.path()) == []
    assert source(store, room.url(page.path())) == "feed"
    assert f"refused: 127.0.0.1 is a loopback address ({HINT})" in caplog.text


@pytest.mark.parametrize(
    ("top", "allow", "fetched"),
    [
        ("allow_private_networks: true", "", True),
        ("", "[127.0.0.0/8]", True),
        ("", "['127.0.0.1']", True),
        ("", "[localhost, 10.0.0.0/8]", False),  # the links say 127.0.0.1, not localhost
        ("allow_private_networks: false", "[]", False),
    ],
)
def test_allowing_private_networks(
    room: Newsroom, store: Store, top: str, allow: str, fetched: bool
) -> None:
    page = story(room)
    one_pass(config_for([("news", room.url("/rss.xml"))], top, allow), store)
    assert len(room.server.requests_to(page.path())) == (1 if fetched else 0)
    assert source(store, room.url(page.path())) == ("page" if fetched else "feed")


@pytest.mark.parametrize("both_allow", [False, True])
def test_an_article_in_two_feeds_gets_only_what_both_allow(
    room: Newsroom, store: Store, both_allow: bool
) -> None:
    page = story(room)  # listed in the RSS and the Atom feed: one article, two feeds
    rss_feed = f'{{name: rss, url: "{room.url("/rss.xml")}", allow_hosts: [127.0.0.0/8]}}'
    atom_allow = ", allow_hosts: [127.0.0.1]" if both_allow else ""
    atom_feed = f'{{name: atom, url: "{room.url("/atom.xml")}"{atom_allow}}}'
    one_pass(parse_config(f"feeds:\n  - {rss_feed}\n  - {atom_feed}\n"), store)
    assert len(room.server.requests_to(page.path())) == (1 if both_allow else 0)


@pytest.mark.parametrize("allowed", [False, True])
def test_address_spellings_are_caught_and_really_reach_loopback(
    room: Newsroom, store: Store, allowed: bool
) -> None:
    port = room.server.base_url.rsplit(":", 1)[1]
    hosts = ["2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]"]
    pages = [story(room, f"s{i}") for i in range(len(hosts))]
    links = [f"http://{h}:{port}{p.path()}" for h, p in zip(hosts, pages, strict=True)]
    room.server.route(
        "/odd.xml",
        rss(
            [(f"g{i}", p.title, link) for i, (p, link) in enumerate(zip(pages, links, strict=True))]
        ),
    )
    top = "allow_private_networks: true" if allowed else ""
    summary = one_pass(config_for([("odd", room.url("/odd.xml"))], top), store)
    assert summary.check_counts() == {"new": len(hosts)}
    for i, p in enumerate(pages):
        # With the guard off each spelling fetches the page: proof that it is loopback.
        assert len(room.server.requests_to(p.path())) == (1 if allowed else 0), hosts[i]
        assert source(store, f"g{i}") == ("page" if allowed else "feed")


@pytest.mark.parametrize(("target_host", "fetched"), [("localhost", True), ("127.0.0.1", False)])
def test_redirect_from_an_allowed_host_to_loopback_is_refused(
    room: Newsroom, store: Store, caplog: pytest.LogCaptureFixture, target_host: str, fetched: bool
) -> None:
    # "localhost" plays an allowed intranet host; 127.0.0.1 (the same server) is not allowed.
    port = room.server.base_url.rsplit(":", 1)[1]
    page = story(room)
    room.server.route(
        "/moved", Reply(302, headers={"Location": f"http://{target_host}:{port}{page.path()}"})
    )
    room.server.route("/links.xml", rss([("g", page.title, f"http://localhost:{port}/moved")]))
    caplog.set_level(logging.INFO, logger="watcher.tasks")
    one_pass(config_for([("intranet", room.url("/links.xml"))], allow="[localhost]"), store)
    assert len(room.server.requests_to("/moved")) == 1
    assert len(room.server.requests_to(page.path())) == (1 if fetched else 0)
    assert source(store, "g") == ("page" if fetched else "feed")
    if not fetched:
        assert f"refused: 127.0.0.1 is a loopback address ({HINT})" in caplog.text


def test_non_http_links_are_never_fetched(room: Newsroom, store: Store) -> None:
    # feeds.py already drops such links (the guard would refuse them too, see above).
    port = room.server.base_url.rsplit(":", 1)[1]
    links = ["file:///etc/passwd", f"ftp://127.0.0.1:{port}/x", f"gopher://127.0.0.1:{port}/_x"]
    room.server.route("/schemes.xml", rss([(f"g{i}", f"Item {i}", u) for i, u in enumerate(links)]))
    config = config_for([("s", room.url("/schemes.xml"))], "allow_private_networks: true")
    assert one_pass(config, store).check_counts() == {"new": 3}
    assert [source(store, f"g{i}") for i in range(3)] == ["feed"] * 3
    assert room.server.requests_to("/x") == [] and room.server.requests_to("/_x") == []


def test_refused_link_after_a_page_version_is_a_failed_check(room: Newsroom, store: Store) -> None:
    page = story(room)
    one_pass(config_for([("news", room.url("/rss.xml"))], "allow_private_networks: true"), store)
    summary = one_pass(config_for([("news", room.url("/rss.xml"))]), store)
    (check,) = summary.checks
    assert check.status == "failed" and check.error is not None
    assert re.search(r"refused: 127\.0\.0\.1 is a loopback address", check.error)
    assert len(room.server.requests_to(page.path())) == 1
