"""The offline /docs (Swagger UI) and /graphql (GraphiQL) pages reference only vendored local files."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app import docs_pages
from experience_apis import graphiql_page

SWAGGER_PREFIX = "/static"
GRAPHIQL_PREFIX = "/static/experience"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str, str]] = []  # (tag, attr, value)
        self.attrs: list[tuple[str, str, str]] = []
        self.scripts: list[dict[str, str | None]] = []
        self.inline_script_text: list[str] = []
        self.style_tags = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self.attrs.append((tag, name, value or ""))
            if name in ("src", "href", "action", "data-openapi-url", "data-endpoint"):
                self.urls.append((tag, name, value or ""))
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        if tag == "style":
            self.style_tags += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script_text.append(data)


def _parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


PAGES = [
    pytest.param(
        docs_pages.swagger_html("/openapi.json", SWAGGER_PREFIX),
        SWAGGER_PREFIX,
        docs_pages.STATIC_DIR,
        docs_pages.SWAGGER_ASSETS,
        id="swagger",
    ),
    pytest.param(
        graphiql_page.graphiql_html("/graphql", GRAPHIQL_PREFIX),
        GRAPHIQL_PREFIX,
        graphiql_page.STATIC_DIR,
        graphiql_page.GRAPHIQL_ASSETS,
        id="graphiql",
    ),
]


@pytest.mark.parametrize(("html", "prefix", "static_dir", "assets"), PAGES)
def test_page_has_no_external_reference(html: str, prefix: str, static_dir: Path, assets: tuple[str, ...]):
    assert "http://" not in html and "https://" not in html
    page = _parse(html)
    assert page.urls
    for tag, attr, value in page.urls:
        parts = urlsplit(value)
        assert not parts.scheme and not parts.netloc, f"<{tag} {attr}={value!r}> is not a local path"
        assert value.startswith("/"), f"<{tag} {attr}={value!r}> is not an absolute local path"


@pytest.mark.parametrize(("html", "prefix", "static_dir", "assets"), PAGES)
def test_every_referenced_asset_exists(html: str, prefix: str, static_dir: Path, assets: tuple[str, ...]):
    page = _parse(html)
    referenced = [value for tag, attr, value in page.urls if attr in ("src", "href") and tag in ("script", "link")]
    assert len(referenced) == len(assets)
    for value in referenced:
        path = urlsplit(value).path
        assert path.startswith(prefix + "/"), value
        file = static_dir / path.removeprefix(prefix + "/")
        assert file.is_file(), f"{value} -> {file} missing"
        assert file.stat().st_size > 0
    for rel in assets:
        assert (static_dir / rel).is_file(), rel


@pytest.mark.parametrize(("html", "prefix", "static_dir", "assets"), PAGES)
def test_page_works_under_strict_csp(html: str, prefix: str, static_dir: Path, assets: tuple[str, ...]):
    """No inline script, <style>, style= or on*= attribute: strict CSP (no 'unsafe-inline') holds."""
    page = _parse(html)
    assert page.scripts and all(script.get("src") for script in page.scripts)
    assert page.inline_script_text == []
    assert page.style_tags == 0
    assert not [a for a in page.attrs if a[1] == "style" or a[1].startswith("on")]


def test_csp_constants_are_strict():
    for csp in (docs_pages.DOCS_CSP, graphiql_page.GRAPHIQL_CSP):
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert "unsafe" not in csp and "http" not in csp


def test_swagger_page_points_at_spec_and_escapes():
    html = docs_pages.swagger_html('/openapi.json?x="><script>', "/static/")
    assert 'data-openapi-url="/openapi.json?x=&quot;&gt;&lt;script&gt;"' in html
    assert "<script>" not in html.replace("<script src=", "")
    assert 'href="/static/swagger/swagger-ui.css?v=' in html  # trailing slash of the prefix dropped


def test_graphiql_page_points_at_endpoint_and_escapes():
    html = graphiql_page.graphiql_html('/graphql"x', "/static/experience")
    assert 'data-endpoint="/graphql&quot;x"' in html
    assert 'id="psb-key"' in html  # API-key input sent as "Authorization: Bearer <key>"
    init = (graphiql_page.STATIC_DIR / "graphiql/graphiql-init.js").read_text()
    assert '"Bearer " + key' in init and "sessionStorage" in init


def test_swagger_init_disables_online_validator():
    init = (docs_pages.STATIC_DIR / "swagger/swagger-init.js").read_text()
    assert "validatorUrl: null" in init


VENDORED = [
    (docs_pages.STATIC_DIR / "swagger", ["LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"]),
    (graphiql_page.STATIC_DIR / "graphiql", ["LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"]),
]


@pytest.mark.parametrize(("folder", "licences"), VENDORED, ids=["swagger", "graphiql"])
def test_vendored_files_are_licensed_offline_and_small(folder: Path, licences: list[str]):
    for name in licences:
        assert (folder / name).is_file(), name
    total = 0
    for file in folder.iterdir():
        total += file.stat().st_size
        if file.suffix not in (".js", ".css"):
            continue
        text = file.read_text(encoding="utf-8")
        # Source maps are not vendored, so no file may point at one.
        assert "sourceMappingURL" not in text, file.name
        if file.suffix == ".css":
            assert "@import" not in text, file.name
            for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", text):
                assert url.startswith("data:"), f"{file.name}: url({url[:60]})"
    assert total < 4_000_000


@pytest.mark.parametrize(
    "file",
    [
        docs_pages.STATIC_DIR / "swagger/swagger-init.js",
        docs_pages.STATIC_DIR / "swagger/swagger-page.css",
        graphiql_page.STATIC_DIR / "graphiql/graphiql-init.js",
        graphiql_page.STATIC_DIR / "graphiql/graphiql-page.css",
    ],
    ids=lambda p: p.name,
)
def test_own_glue_files_have_no_urls(file: Path):
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/", file.read_text(encoding="utf-8"))
