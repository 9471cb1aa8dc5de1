"""The import in a real browser: a rep uploads a Salesforce report from the board, maps a
custom stage, previews the rows with their errors, commits, watches the progress bar while
the worker imports, and finds the deals on the board."""

from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from pipeline.imports.commit import run_import
from pipeline.models import ImportBatch, Opportunity, StageChange, Via
from pipeline.process import Stage
from tests.factories import make_cast

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SAMPLE = Path(__file__).parent / "import_samples" / "salesforce_us.csv"


def test_a_rep_imports_a_salesforce_report_from_upload_to_committed_rows(live_server,
                                                                         log_in):
    cast = make_cast()
    page = log_in(cast.rep)

    page.goto(f"{live_server.url}/board/")
    page.get_by_role("link", name="Import from another CRM").click()
    page.get_by_label("Exported from").select_option(label="Salesforce (opportunity report)")
    page.get_by_label("CSV file").set_input_files(str(SAMPLE))
    page.get_by_role("button", name="Upload and preview").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Import of salesforce_us.csv from Salesforce (opportunity report)")
    errors = page.locator("table.import-errors tbody tr")
    expect(errors).to_have_count(5)
    expect(page.locator('table.import-errors tr[data-line="7"]')).to_contain_text(
        "The stage “Verbal Yes” is mapped to none of ours.")
    axe = Axe().run(page)  # WCAG checks on the mapping and preview
    assert not axe.violations_count, axe.generate_report()

    page.get_by_label("Verbal Yes").select_option(label="Finalizing Closure")
    page.get_by_role("button", name="Preview again").click()
    expect(errors).to_have_count(4)
    expect(page.locator("table.import-rows tbody tr")).to_have_count(4)
    page.get_by_role("button", name="Import 4 opportunities").click()

    # No worker runs in this test: the page waits for one, then the test plays its part.
    expect(page.locator("#import-progress")).to_contain_text("Waiting for the worker")
    expect(page.locator("progress")).to_be_visible()
    run_import(ImportBatch.objects.get().pk)
    expect(page.locator("#import-progress")).to_contain_text(
        "4 opportunities imported.", timeout=15_000)

    page.get_by_role("link", name="See them on the board").click()
    column = page.locator('section.column[data-stage="finalizing"]')
    expect(column).to_contain_text("Vandelay imports")
    imported = Opportunity.objects.get(name="Vandelay imports")
    assert (imported.stage, imported.owner) == (Stage.FINALIZING, cast.rep)
    assert list(StageChange.objects.filter(opportunity=imported).values_list("via", flat=True)
                ) == [Via.IMPORT]
