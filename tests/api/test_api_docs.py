"""/docs and /redoc load everything from the service itself: no CDN, so they work offline."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient


class _AssetLinks(HTMLParser):
    """The script and stylesheet URLs of a page (`<script src>`, `<link href>`)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") if tag == "script" else found.get("href") if tag == "link" else None
        if url:
            self.urls.append(url)


def _asset_urls(html: str) -> list[str]:
    parser = _AssetLinks()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_their_assets_from_the_service(client: TestClient, page: str) -> None:
    response = client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = _asset_urls(response.text)
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        assert not urlsplit(url).netloc, f"{page} loads {url} from another host"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    assert "cdn.jsdelivr.net" not in response.text
    assert "fonts.googleapis.com" not in response.text


def test_api_docs_assets_stay_out_of_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert not any(path.startswith(("/docs", "/redoc", "/static")) for path in paths)
