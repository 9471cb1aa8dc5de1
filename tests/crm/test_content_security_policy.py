"""The content security policy: sent with every page, and no template needs more than it
allows (no inline script, style or event handler; htmx evaluates nothing)."""

import re
from pathlib import Path

import pytest
from django.conf import settings

INLINE = {
    "an inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "a <style> block": re.compile(r"<style\b", re.IGNORECASE),
    "a style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "an event handler attribute": re.compile(r"\son[a-z]+\s*=\s*[\"']", re.IGNORECASE),
    "hx-on": re.compile(r"\b(?:hx|data-hx)-on", re.IGNORECASE),
    "a javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
    "htmx's js: values": re.compile(r"hx-(?:vals|vars)\s*=\s*[\"']\s*js:", re.IGNORECASE),
}


def templates() -> list[Path]:
    folders = [Path(folder) for folder in settings.TEMPLATES[0]["DIRS"]]
    folders += [settings.BASE_DIR / app / "templates" for app in ("crm", "pipeline",
                                                                  "forecasting")]
    return [path for folder in folders if folder.is_dir() for path in folder.rglob("*.html")]


def test_no_template_carries_inline_code_or_styles():
    found = [f"{path.relative_to(settings.BASE_DIR)}: {what}"
             for path in templates()
             for what, pattern in INLINE.items() if pattern.search(path.read_text())]

    assert templates(), "no templates found"
    assert found == []


def test_htmx_injects_no_styles_and_evaluates_nothing():
    base = (settings.BASE_DIR / "templates" / "base.html").read_text()

    assert '"includeIndicatorStyles": false' in base
    assert '"allowEval": false' in base
    assert ".htmx-indicator" in (settings.BASE_DIR / "static" / "css" / "app.css").read_text()


@pytest.mark.django_db
def test_every_page_comes_with_a_policy_that_allows_only_our_own_files(client):
    policy = client.get("/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))

    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy



@pytest.mark.django_db
def test_a_purchase_order_document_keeps_its_stricter_sandboxing_policy(client):
    from pipeline.process import Stage
    from tests.factories import OpportunityFactory, RepFactory, advance, record_order

    rep = RepFactory()
    order = record_order(advance(OpportunityFactory(owner=rep), Stage.FINALIZING))
    client.force_login(rep)

    response = client.get(f"/orders/{order.pk}/document/")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "sandbox"
