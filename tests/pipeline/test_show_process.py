from io import StringIO

import pytest
from django.core.management import call_command

from pipeline.management.commands.show_process import Command as ShowProcess
from pipeline.models import StageTimeout
from pipeline.process import CRITERIA, CriterionKind, Stage

pytestmark = pytest.mark.django_db

# process.md's stage table, written out again so the command is checked against the spec
# rather than against the table it reads.
SPEC = [
    ("identifying", "Identifying Opportunity", 10, "Omitted", "none"),
    ("discovering", "Discovering Problems, Impacts & Goals", 25, "Pipeline", "30 days"),
    ("validating", "Validating Benefits & Values", 40, "Pipeline", "30 days"),
    ("confirming", "Confirming Value with Power", 60, "Best Case", "45 days"),
    ("negotiating", "Negotiating & Mutual Plan", 75, "Commit", "45 days"),
    ("finalizing", "Finalizing Closure", 90, "Commit", "30 days"),
    ("pending", "Pending (sales-ops review)", 95, "Commit", "none"),
    ("closed", "Closed (won)", 100, "Closed", "none"),
    ("dead", "Dead (parked)", 0, "Omitted", "none"),
]


def show_process() -> str:
    out = StringIO()
    call_command("show_process", stdout=out)
    return out.getvalue()


def stage_blocks(output: str) -> dict[str, str]:
    """The output's paragraphs after the title, by the stage key in their heading."""
    blocks = {}
    for block in output.strip().split("\n\n")[1:]:
        heading = block.splitlines()[0]
        key = heading.split(":", 1)[0].split(". ", 1)[-1]
        blocks[key] = block
    return blocks


def test_lists_all_nine_stages_in_process_order_with_probability_and_category():
    output = show_process()

    blocks = stage_blocks(output)
    assert list(blocks) == [key for key, *_ in SPEC]
    for key, name, probability, category, timeout in SPEC:
        lines = [line.strip() for line in blocks[key].splitlines()]
        assert name in lines[0]
        assert f"Probability: {probability} %" in lines
        assert f"Forecast category: {category}" in lines
        assert f"Timeout: {timeout}" in lines


def test_timeout_set_by_sales_ops_replaces_the_default_and_is_marked():
    StageTimeout.objects.create(stage=Stage.DISCOVERING, days=20)

    blocks = stage_blocks(show_process())

    assert "Timeout: 20 days (set by sales ops; default 30 days)" in blocks["discovering"]
    assert "Timeout: 30 days\n" not in blocks["discovering"]
    assert "Timeout: 30 days\n" in blocks["validating"]
    assert "set by sales ops" not in blocks["validating"]


def test_every_exit_criterion_appears_with_how_it_is_met():
    blocks = stage_blocks(show_process())

    for criterion in CRITERIA.values():
        block = blocks[criterion.stage.value]
        line = next(
            (line for line in block.splitlines() if str(criterion.label) in line), None
        )
        assert line is not None, f"{criterion.key} is missing"
        kind = "derived from data" if criterion.kind == CriterionKind.DERIVED else (
            "ticked by a person"
        )
        assert kind in line
        assert ("may be marked not required" in line) == criterion.may_be_not_required


def test_stages_without_a_checklist_say_so():
    blocks = stage_blocks(show_process())

    for key in ("pending", "closed", "dead"):
        assert "Exit criteria: none" in blocks[key]


def test_help_says_what_the_command_prints():
    parser = ShowProcess().create_parser("manage.py", "show_process")

    assert "Print the sales process as configured" in parser.format_help()
