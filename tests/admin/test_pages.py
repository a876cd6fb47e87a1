"""The admin web page in process (TestClient): who may see and do what, the form token, the
security headers, the rule form's round trip, and every payload of the hostile-input corpus as a
rule's path, target and note and as a 404 path, rendered as text.

The flows as a person clicks them are in test_browser_pages.py (real Chromium)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.admin.admin_support import Keys, make_keys
from tests.admin.test_auth import SECURITY
from waypost.admin import ADMIN_PREFIX, COOKIE_NAME, create_admin_app
from waypost.store.sqlite import SqliteStore
from waypost.store.stats import NotFoundDelta

BASE = "http://testserver"
P = ADMIN_PREFIX
_TOKEN = re.compile(r'name="csrf" value="([^"]*)"')
# Every tag and attribute the admin's own templates use: anything else in a page came from data.
_TAGS = {
    "html", "head", "meta", "title", "link", "script", "body", "a", "header", "nav", "ul", "li",
    "form", "span", "button", "main", "p", "h1", "h2", "h3", "div", "label", "input", "select",
    "option", "textarea", "section", "table", "caption", "thead", "tbody", "tr", "th", "td",
    "details", "summary", "code", "strong", "datalist", "article", "pre", "br",
}  # fmt: skip


class _Page(HTMLParser):
    """The tags, attributes and text of a page, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self.text.extend(value or "" for _, value in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def assert_inert(html: str) -> _Page:
    """The page holds only the templates' own tags, no event handler attribute and no script
    but the package's own files."""
    page = parsed(html)
    for tag, attrs in page.tags:
        assert tag in _TAGS, f"a <{tag}> element came from data"
        for name, value in attrs:
            assert not name.startswith("on"), f"an event handler attribute {name}={value!r}"
        if tag == "script":
            src = dict(attrs).get("src")
            kind = dict(attrs).get("type")
            assert (src or "").startswith(f"{P}/static/") or kind == "application/json", attrs
        if tag == "a":
            href = dict(attrs).get("href") or ""
            assert href.startswith(("/", "#")), f"a link off the site: {href!r}"
    return page


@pytest.fixture
def store(tmp_path: Any) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "rules.db")
    store.create_rule({"from": "/old-page", "to": "/new-page"})
    yield store
    store.close()


@pytest.fixture
def keys(store: SqliteStore) -> Keys:
    return make_keys(store)


def signed_in(store: SqliteStore, key: str) -> TestClient:
    client = TestClient(create_admin_app(store, prefix=P), base_url=BASE, follow_redirects=False)
    answer = client.post(f"{P}/login", data={"key": key}, headers={"Origin": BASE})
    assert answer.status_code == 303, answer.text
    return client


def token(client: TestClient, path: str = "/rules/new") -> str:
    found = _TOKEN.search(client.get(P + path).text)
    assert found is not None
    return found[1]


def post(client: TestClient, path: str, data: dict[str, Any], **headers: str) -> Any:
    return client.post(P + path, data=data, headers={"Origin": BASE, **headers})


# -- who may see and do what --------------------------------------------------------------


PAGES = ["/", "/rules", "/rules/new", "/not-found", "/history", "/history/1", "/import"]


@pytest.mark.parametrize("path", PAGES)
def test_a_browser_without_a_session_is_sent_to_sign_in(store: SqliteStore, path: str) -> None:
    client = TestClient(create_admin_app(store, prefix=P), base_url=BASE, follow_redirects=False)
    answer = client.get(P + path, headers={"Accept": "text/html"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{P}/login?next=")


@pytest.mark.parametrize("path", [*PAGES, "/keys"])
def test_every_page_has_a_strict_policy_and_no_inline_script(
    store: SqliteStore, keys: Keys, path: str
) -> None:
    client = signed_in(store, keys.admin)
    answer = client.get(P + path)
    assert answer.status_code == 200, answer.text
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    page = assert_inert(answer.text)
    for tag, attrs in page.tags:
        if tag == "script":
            assert dict(attrs).get("src") or dict(attrs).get("type") == "application/json"


def test_a_read_key_sees_pages_without_buttons_that_change_anything(
    store: SqliteStore, keys: Keys
) -> None:
    client = signed_in(store, keys.read)
    listing = client.get(f"{P}/rules").text
    assert "/old-page" in listing and "New rule" not in listing and "delete-selected" not in listing
    rule_id = store.list_rules().rules[0].id
    form = client.get(f"{P}/rules/{rule_id}").text
    assert 'id="save"' not in form and 'id="delete"' not in form
    # and the server refuses it anyway
    refused = post(client, f"/rules/{rule_id}/delete", {"csrf": token(client)})
    assert refused.status_code == 403
    assert store.count_rules() == 1
    assert client.get(f"{P}/keys", headers={"Accept": "text/html"}).status_code == 403


def test_a_form_without_its_token_changes_nothing(store: SqliteStore, keys: Keys) -> None:
    client = signed_in(store, keys.write)
    rule_id = store.list_rules().rules[0].id
    for data in ({}, {"csrf": "0" * 40}, {"csrf": ""}):
        refused = post(client, f"/rules/{rule_id}/delete", data, Accept="text/html")
        assert refused.status_code == 403
        assert "a request signed in by cookie" in refused.text
    # another site's form: the token is right, the origin is not
    other = client.post(
        f"{P}/rules/{rule_id}/delete",
        data={"csrf": token(client)},
        headers={"Origin": "http://evil.example"},
    )
    assert other.status_code == 403
    assert store.count_rules() == 1


def test_the_token_belongs_to_the_session(store: SqliteStore, keys: Keys) -> None:
    first = signed_in(store, keys.write)
    second = signed_in(store, keys.write)
    stolen = token(first)
    assert stolen != token(second)
    rule_id = store.list_rules().rules[0].id
    assert post(second, f"/rules/{rule_id}/delete", {"csrf": stolen}).status_code == 403
    assert post(second, f"/rules/{rule_id}/delete", {"csrf": token(second)}).status_code == 303


def test_an_api_key_needs_no_form_token(store: SqliteStore, keys: Keys) -> None:
    client = TestClient(create_admin_app(store, prefix=P), base_url=BASE, follow_redirects=False)
    answer = client.post(
        f"{P}/rules/new",
        data={"from": "/a", "target": "/b"},
        headers={"Authorization": f"Bearer {keys.write}"},
    )
    assert answer.status_code == 303
    assert store.count_rules() == 2


# -- the rule form ------------------------------------------------------------------------


def test_a_typo_gets_the_loaders_message_next_to_its_field(store: SqliteStore, keys: Keys) -> None:
    client = signed_in(store, keys.write)
    data = {"csrf": token(client), "from": "/a/<itn:x>", "target": "/b", "intent": "save"}
    answer = post(client, "/rules/new", data, Accept="text/html")
    assert answer.status_code == 422
    errors = re.search(
        r'<ul class="field-errors" id="from-errors"[^>]*>(.*?)</ul>', answer.text, re.S
    )
    assert errors is not None and "did you mean" in errors[1] and "int" in errors[1]
    assert 'value="/a/&lt;itn:x&gt;"' in answer.text  # what was typed stays in the form
    assert store.count_rules() == 1
    # as the script asks while typing: the same messages, by field, as JSON
    tried = post(client, "/rules/new", {**data, "intent": "try"}, **{"X-Waypost-Request": "1"})
    assert tried.status_code == 200
    assert "did you mean" in " ".join(tried.json()["fields"]["from"])


def test_try_shows_the_decision_and_checks_warnings(store: SqliteStore, keys: Keys) -> None:
    client = signed_in(store, keys.write)
    data = {
        "csrf": token(client),
        "from": "/new-page",
        "target": "/old-page",
        "sample": "/new-page",
        "intent": "try",
    }
    tried = post(client, "/rules/new", data, **{"X-Waypost-Request": "1"}).json()
    assert tried["decision"] == "redirect 301 /old-page" and tried["decided_by_rule"]
    assert any(f["kind"] == "loop" for f in tried["findings"]), tried["findings"]
    assert store.count_rules() == 1  # trying writes nothing


def test_a_stale_edit_is_refused_and_keeps_what_was_typed(store: SqliteStore, keys: Keys) -> None:
    client = signed_in(store, keys.write)
    stored = store.list_rules().rules[0]
    store.update_rule(stored.id, {"from": "/old-page", "to": "/elsewhere"})
    data = {
        "csrf": token(client),
        "from": "/old-page",
        "target": "/mine",
        "version": stored.version,
    }
    answer = post(client, f"/rules/{stored.id}", data, Accept="text/html")
    assert answer.status_code == 409
    assert "someone changed this rule" in answer.text and 'value="/mine"' in answer.text
    assert store.get_rule(stored.id).rule["to"] == "/elsewhere"


def test_delete_then_undo(store: SqliteStore, keys: Keys) -> None:
    client = signed_in(store, keys.write)
    stored = store.list_rules().rules[0]
    deleted = post(client, f"/rules/{stored.id}/delete", {"csrf": token(client)})
    assert deleted.status_code == 303 and store.count_rules() == 0
    listing = client.get(deleted.headers["location"]).text
    revision = re.search(r'name="revision" value="(\d+)"', listing)
    assert revision is not None
    undone = post(client, "/rules-undo", {"csrf": token(client), "revision": revision[1]})
    assert undone.status_code == 303
    assert [r.id for r in store.list_rules().rules] == [stored.id]


def test_bulk_delete_is_one_revision(store: SqliteStore, keys: Keys) -> None:
    for n in range(3):
        store.create_rule({"from": f"/x{n}", "to": "/y"})
    client = signed_in(store, keys.write)
    ids = [r.id for r in store.list_rules().rules[1:]]
    before = store.current_revision()
    answer = post(client, "/rules-bulk", {"csrf": token(client), "ids": ids, "op": "delete"})
    assert answer.status_code == 303
    assert store.count_rules() == 1 and store.current_revision() == before + 1


def test_switch_rules_off_and_on(store: SqliteStore, keys: Keys) -> None:
    store.create_rule({"from": "/x", "to": "/y"})
    client = signed_in(store, keys.write)
    ids = [r.id for r in store.list_rules().rules]
    off = post(client, "/rules-bulk", {"csrf": token(client), "ids": ids, "op": "disable"})
    assert off.status_code == 303
    assert all(r.rule["enabled"] is False for r in store.list_rules().rules)
    assert client.get(f"{P}/rules").text.count('class="badge off"') == 2
    # the form shows the box unticked, and saving it ticked switches the rule on again
    form = client.get(f"{P}/rules/{ids[0]}").text
    assert 'id="enabled" name="enabled" aria' in form
    data = {"csrf": token(client), "from": "/old-page", "target": "/new-page",
            "has_enabled": "1", "enabled": "on"}  # fmt: skip
    assert post(client, f"/rules/{ids[0]}", data).status_code == 303
    assert "enabled" not in store.get_rule(ids[0]).rule
    unticked = {**data, "csrf": token(client)}
    del unticked["enabled"]
    assert post(client, f"/rules/{ids[0]}", unticked).status_code == 303
    assert store.get_rule(ids[0]).rule["enabled"] is False
    on = post(client, "/rules-bulk", {"csrf": token(client), "ids": ids, "op": "enable"})
    assert on.status_code == 303
    assert all("enabled" not in r.rule for r in store.list_rules().rules)


def test_the_rules_list_pages_and_shows_hits(store: SqliteStore, keys: Keys) -> None:
    from waypost.store.stats import RuleHitsDelta

    for n in range(120):
        store.create_rule({"from": f"/p{n:03}", "to": "/y"})
    first = store.list_rules().rules[0]
    now = time.time()
    store.add_rule_hits([RuleHitsDelta(first.id, 7, now, now, {})])
    client = signed_in(store, keys.read)
    seen: list[str] = []
    url = f"{P}/rules"
    while url:
        html = client.get(url).text
        seen += re.findall(r'<td class="path"><a href="[^"]+">([^<]+)</a>', html)
        nxt = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = nxt[1].replace("&amp;", "&") if nxt else ""
    assert len(seen) == 121 and len(set(seen)) == 121
    first_page = client.get(f"{P}/rules").text
    assert re.search(r"/old-page</a></td>.*?<td>7</td>", first_page, re.S)
    assert "/p005" in client.get(f"{P}/rules", params={"prefix": "/p00"}).text
    assert "/old-page" not in client.get(f"{P}/rules", params={"unused": "ever"}).text


# -- 404s, history, keys ------------------------------------------------------------------


def _not_found(store: SqliteStore, *paths: str) -> None:
    now = time.time()
    store.add_not_found([NotFoundDelta(path, 3, 0, now, now) for path in paths])


def test_create_a_redirect_from_a_404_row(store: SqliteStore, keys: Keys) -> None:
    _not_found(store, "/new-pgae")
    client = signed_in(store, keys.write)
    listing = client.get(f"{P}/not-found").text
    link = re.search(r'href="([^"]*/rules/new\?[^"]*)"', listing)
    assert link is not None
    form = client.get(link[1].replace("&amp;", "&")).text
    assert 'value="/new-pgae"' in form
    assert 'data-target="/new-page"' in form  # the closest existing target is suggested
    row = store.not_found_stats().rows[0]
    data = {"csrf": token(client), "from": "/new-pgae", "target": "/new-page", "not_found": row.id}
    assert post(client, "/rules/new", data).status_code == 303
    assert store.get_not_found(row.id).status == "resolved"
    assert store.list_rules().rules[-1].rule == {"from": "/new-pgae", "to": "/new-page"}


def test_dismiss_a_404_row(store: SqliteStore, keys: Keys) -> None:
    _not_found(store, "/wp-login.php")
    client = signed_in(store, keys.write)
    row = store.not_found_stats().rows[0]
    assert post(client, f"/not-found/{row.id}/dismiss", {"csrf": token(client)}).status_code == 303
    assert store.get_not_found(row.id).status == "dismissed"
    assert "/wp-login.php" not in client.get(f"{P}/not-found").text


def test_rollback_shows_what_it_changes_first(store: SqliteStore, keys: Keys) -> None:
    store.create_rule({"from": "/later", "to": "/x"})
    client = signed_in(store, keys.write)
    confirm = client.get(f"{P}/history/1").text
    assert "/later" in confirm and "confirm-rollback" in confirm
    rolled = post(client, "/history/1/rollback", {"csrf": token(client)})
    assert rolled.status_code == 303
    assert [r.path for r in store.list_rules().rules] == ["/old-page"]


def test_create_and_revoke_a_key(store: SqliteStore, keys: Keys) -> None:
    client = signed_in(store, keys.admin)
    created = post(client, "/keys", {"csrf": token(client, "/keys"), "scope": "read", "note": "ci"})
    assert created.status_code == 201
    secret = re.search(r'id="new-key" readonly value="([^"]+)"', created.text)
    assert secret is not None
    key_id = secret[1].split("_")[1]
    assert store.authenticate(secret[1]).id == key_id
    revoked = post(client, f"/keys/{key_id}/revoke", {"csrf": token(client, "/keys")})
    assert revoked.status_code == 303
    assert store.get_key(key_id).status() == "revoked"


def test_a_key_cannot_make_a_wider_one(store: SqliteStore, keys: Keys) -> None:
    _, bound = store.create_key("admin", host="a.example")
    client = TestClient(create_admin_app(store, prefix=P), base_url=BASE, follow_redirects=False)
    answer = client.post(
        f"{P}/keys",
        data={"scope": "admin", "host": "b.example"},
        headers={"Authorization": f"Bearer {bound}", "Host": "a.example"},
    )
    assert answer.status_code == 403


def test_import_is_a_dry_run_first(store: SqliteStore, keys: Keys) -> None:
    client = signed_in(store, keys.write)
    netlify = "/blog/*  /news/:splat  301\n/bad line here\n"
    files = {"file": ("_redirects", netlify.encode(), "text/plain")}
    data = {"csrf": token(client), "mode": "merge"}
    dry = client.post(f"{P}/import", data=data, files=files, headers={"Origin": BASE})
    assert dry.status_code == 200, dry.text
    assert "Dry run" in dry.text and 'id="count-created">1<' in dry.text
    assert "Skipped lines" in dry.text
    assert store.count_rules() == 1
    content = re.search(r'<textarea name="content"[^>]*>(.*?)</textarea>', dry.text, re.S)
    assert content is not None
    apply = {"csrf": token(client), "mode": "merge", "format": "netlify", "intent": "apply",
             "content": content[1].replace("&#34;", '"').replace("&amp;", "&")}  # fmt: skip
    applied = client.post(f"{P}/import", data=apply, headers={"Origin": BASE})
    assert applied.status_code == 200 and "Imported" in applied.text
    assert store.count_rules() == 2


def test_export_downloads_a_file(store: SqliteStore, keys: Keys) -> None:
    client = signed_in(store, keys.read)
    answer = client.get(f"{P}/export", params={"format": "netlify"})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith('attachment; filename="waypost-rules')
    assert "/old-page" in answer.text


def test_the_api_docs_work_offline_and_name_the_csrf_header(store: SqliteStore) -> None:
    client = TestClient(create_admin_app(store, prefix=P), base_url=BASE)
    docs = client.get(f"{P}/api/docs").text
    sources = [s for s in re.findall(r'(?:src|href)="([^"]+)"', docs) if s != "data:,"]
    assert sources and all(s.startswith(f"{P}/static/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200
    schema = client.get(f"{P}/api/openapi.json").json()
    created = schema["paths"][f"{P}/api/rules"]["post"]["parameters"]
    assert any(p["name"] == "X-Waypost-Request" and p["in"] == "header" for p in created)


# -- the hostile-input corpus -------------------------------------------------------------


@pytest.mark.corpus
def test_every_hostile_payload_renders_as_text(store: SqliteStore, keys: Keys) -> None:
    payloads = [p.text for p in SECURITY.PAYLOADS]
    _not_found(store, *payloads)
    for n, text in enumerate(payloads):
        store.create_rule({"from": f"/p{n}", "to": "/t", "note": text[:2000]})
    client = signed_in(store, keys.admin)
    csrf = token(client)
    rendered: list[str] = []
    for url in (f"{P}/", f"{P}/not-found?bots=true", f"{P}/rules?q=", f"{P}/history"):
        while url:
            html = client.get(url).text
            page = assert_inert(html)
            rendered.append("".join(page.text))
            nxt = re.search(r'<a href="([^"]+)" rel="next">', html)
            url = nxt[1].replace("&amp;", "&") if nxt else ""
    shown = "\n".join(rendered)
    missing = [t for t in payloads if t.strip() and t.strip() not in shown]
    assert not missing, missing[:5]
    for text in payloads:
        for field in ("from", "target", "note"):
            data = {"csrf": csrf, "from": "/x", "target": "/y", field: text, "intent": "try"}
            answer = post(client, "/rules/new", data, Accept="text/html")
            assert answer.status_code == 200
            page = assert_inert(answer.text)
            assert text.strip() in "".join(page.text) or "\x00" in text or "\r" in text
    for rule in store.list_rules(limit=1000).rules[:40]:
        assert_inert(client.get(f"{P}/rules/{rule.id}").text)
    assert client.cookies.get(COOKIE_NAME)


def test_the_pages_work_mounted_in_a_users_app(store: SqliteStore, keys: Keys) -> None:
    from fastapi import FastAPI

    site = FastAPI()
    site.mount("/admin", create_admin_app(store))
    client = TestClient(site, base_url=BASE, follow_redirects=False)
    refused = client.get("/admin/rules", headers={"Accept": "text/html"})
    assert refused.headers["location"].startswith("/admin/login?next=/admin/rules")
    signed = client.post("/admin/login", data={"key": keys.write}, headers={"Origin": BASE})
    assert signed.headers["location"] == "/admin/"
    page = client.get("/admin/rules").text
    links = re.findall(r'(?:href|src|action)="(/[^"]*)"', page)
    assert links and all(link.startswith("/admin/") for link in links), links
    assert client.get("/admin/static/admin.js").status_code == 200
    data = {"csrf": token_at(client, "/admin/rules/new"), "from": "/m", "target": "/n"}
    created = client.post("/admin/rules/new", data=data, headers={"Origin": BASE})
    assert created.status_code == 303 and created.headers["location"].startswith("/admin/rules/")


def token_at(client: TestClient, path: str) -> str:
    found = _TOKEN.search(client.get(path).text)
    assert found is not None
    return found[1]


def test_a_large_rule_set_tries_the_rule_on_its_own(
    store: SqliteStore, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("waypost.admin.web.rules.CHECK_LIMIT", 1)
    store.create_rule({"from": "/second", "to": "/x"})
    client = signed_in(store, keys.write)
    data = {"csrf": token(client), "from": "/a/<itn:x>", "target": "/b", "intent": "try"}
    bad = post(client, "/rules/new", data, **{"X-Waypost-Request": "1"}).json()
    assert "did you mean" in " ".join(bad["fields"]["from"])  # the loader's messages still
    data.update({"from": "/a/<int:x>", "target": "/b/{x}", "sample": "/a/7"})
    tried = post(client, "/rules/new", data, **{"X-Waypost-Request": "1"}).json()
    assert tried["decision"] == "redirect 301 /b/7" and tried["decided_by_rule"]
    assert "tried on its own, not among the 2 stored rules" in tried["note"]
    # editing a stored rule: it stands in for itself
    rule_id = store.list_rules().rules[0].id
    edit = {"csrf": token(client), "from": "/old-page", "target": "/newer", "intent": "try",
            "sample": "/old-page"}  # fmt: skip
    tried = post(client, f"/rules/{rule_id}", edit, **{"X-Waypost-Request": "1"}).json()
    assert tried["decision"] == "redirect 301 /newer"
    # and saving still checks it against every rule: a duplicate is refused
    dup = {"csrf": token(client), "from": "/second", "target": "/y", "intent": "save"}
    refused = post(client, "/rules/new", dup, Accept="text/html")
    assert refused.status_code == 422 and store.count_rules() == 2


def test_the_rules_with_hits_busiest_first(store: SqliteStore, keys: Keys) -> None:
    from waypost.store.stats import RuleHitsDelta

    quiet = store.create_rule({"from": "/quiet", "to": "/q"})
    busy = store.list_rules().rules[0]
    now = time.time()
    store.add_rule_hits([RuleHitsDelta(busy.id, 9, now, now, {})])
    store.add_rule_hits([RuleHitsDelta(quiet.id, 2, now, now, {})])
    client = signed_in(store, keys.read)
    html = client.get(f"{P}/rules", params={"unused": "hit"}).text
    assert html.index("/old-page") < html.index("/quiet")
    assert "<td>9</td>" in html and "<td>2</td>" in html
