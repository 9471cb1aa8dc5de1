"""The process table says what /work/shared/process.md says.

The expectations are typed from process.md (Stages; Exit criteria), never read from
pipeline/process.py, so a change to the code's table that the spec does not make fails here.
"""

import pytest

from pipeline.models import StageTimeout
from pipeline.process import (
    CRITERIA,
    KILLABLE_STAGES,
    ORDERED_STAGES,
    PROCESS,
    TIMED_STAGES,
    Stage,
    next_stage,
)

# process.md, "Stages": key, name, order, probability, forecast category, default timeout.
STAGE_TABLE = [
    ("identifying", "Identifying Opportunity", 1, 10, "Omitted", None),
    ("discovering", "Discovering Problems, Impacts & Goals", 2, 25, "Pipeline", 30),
    ("validating", "Validating Benefits & Values", 3, 40, "Pipeline", 30),
    ("confirming", "Confirming Value with Power", 4, 60, "Best Case", 45),
    ("negotiating", "Negotiating & Mutual Plan", 5, 75, "Commit", 45),
    ("finalizing", "Finalizing Closure", 6, 90, "Commit", 30),
    ("pending", "Pending (sales-ops review)", 7, 95, "Commit", None),
    ("closed", "Closed (won)", 8, 100, "Closed", None),
    ("dead", "Dead (parked)", None, 0, "Omitted", None),
]

# process.md, "Exit criteria": how many bullet points each stage has.
EXIT_CRITERIA_COUNT = {
    "identifying": 3,
    "discovering": 5,
    "validating": 3,
    "confirming": 3,
    "negotiating": 4,
    "finalizing": 2,
    "pending": 0,
    "closed": 0,
    "dead": 0,
}


def stage_row(stage: Stage) -> tuple:
    rule = PROCESS[stage]
    return (
        stage.value,
        str(stage.label),
        rule.order,
        rule.probability,
        str(rule.category.label),
        rule.default_timeout_days,
    )


def test_stage_table_matches_the_process():
    assert [stage_row(stage) for stage in Stage] == STAGE_TABLE


def test_every_stage_of_the_process_and_no_other_is_in_the_table():
    assert {stage.value for stage in PROCESS} == {row[0] for row in STAGE_TABLE}


def test_exit_criteria_per_stage_match_the_process():
    counted = {stage.value: len(PROCESS[stage].exit_criteria) for stage in Stage}
    assert counted == EXIT_CRITERIA_COUNT
    assert len(CRITERIA) == 20


def test_each_criterion_belongs_to_the_stage_whose_gate_lists_it():
    for stage, rule in PROCESS.items():
        for criterion in rule.exit_criteria:
            assert criterion.stage == stage, criterion.key


def test_only_the_two_assessments_of_negotiating_may_be_marked_not_required():
    may_be_skipped = {key for key, c in CRITERIA.items() if c.may_be_not_required}
    assert may_be_skipped == {"negotiating.risk_assessment", "negotiating.security_assessment"}


def test_stages_follow_the_process_order_with_dead_outside_it():
    assert [stage.value for stage in ORDERED_STAGES] == [
        "identifying", "discovering", "validating", "confirming",
        "negotiating", "finalizing", "pending", "closed",
    ]
    assert [next_stage(stage) for stage in ORDERED_STAGES] == [*ORDERED_STAGES[1:], None]
    assert next_stage(Stage.DEAD) is None


def test_only_stages_two_to_six_time_out():
    assert [stage.value for stage in TIMED_STAGES] == [
        "discovering", "validating", "confirming", "negotiating", "finalizing",
    ]


def test_an_opportunity_can_be_parked_from_every_stage_before_pending():
    assert [stage.value for stage in KILLABLE_STAGES] == [
        "identifying", "discovering", "validating", "confirming", "negotiating", "finalizing",
    ]


@pytest.mark.django_db
def test_sales_ops_override_of_a_timeout_wins_over_the_default():
    assert StageTimeout.days_for(Stage.CONFIRMING) == 45
    StageTimeout.objects.create(stage=Stage.CONFIRMING, days=60)
    assert StageTimeout.days_for(Stage.CONFIRMING) == 60
    assert StageTimeout.days_for(Stage.VALIDATING) == 30


@pytest.mark.django_db
def test_stages_without_a_timeout_have_none_in_force():
    for key in ("identifying", "pending", "closed", "dead"):
        assert StageTimeout.days_for(Stage(key)) is None
