"""The timeout sweep at scale: one full sweep next to its floor, on the same data.

    createdb -h 127.0.0.1 -U postgres progression_bench_sweep
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/progression_bench_sweep
    .venv/bin/python manage.py migrate
    .venv/bin/python bench/sweep.py --opportunities 1000000   # empties that database first

It seeds `--opportunities` open opportunities with SQL (generate_series, seconds rather
than minutes), a tenth of them overdue in stages 2 to 6 with the ticks of the stages they
passed, owned by 200 account executives of whom a quarter read German. Then, on the same
data and reset in between (rows put back, history and notifications deleted, VACUUM
ANALYZE):

- the floor: one raw UPDATE … RETURNING parking every overdue row, plus one
  INSERT … SELECT of their history rows (no checklist, no notification);
- the sweep: `pipeline.tasks.park_overdue_opportunities`, as beat runs it.

Floor and sweep alternate for `--rounds` rounds (default 3), and the script prints each
round's ratio and their median. Each runs in a fresh process, which reports its wall time
and how much its peak resident memory grew over what it held before (VmHWM − VmRSS from
/proc). Targets (issue 11): within 5x of the floor, and memory flat in the number of rows:
run it at two sizes.
`--no-seed` reuses the data of the previous run. It refuses any database whose name does
not contain "bench".
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_environment, setup_django  # noqa: E402

setup_django()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from crm.models import Account, Team, User  # noqa: E402
from pipeline.models import Opportunity  # noqa: E402
from pipeline.models.parking import timeout_reasons  # noqa: E402
from pipeline.process import PROCESS, TIMED_STAGES, Stage  # noqa: E402

REPS, TEAMS, ACCOUNTS = 200, 20, 2000
ORIGINAL = "bench_sweep_original"  # the overdue rows as seeded, to reset them from


def seed(opportunities: int) -> None:
    """Empty the pipeline and write `opportunities` open ones, a tenth overdue."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE pipeline_opportunity, crm_notification, crm_account, "
                       "crm_team, crm_user CASCADE")
        cursor.execute(f"DROP TABLE IF EXISTS {ORIGINAL}")
    teams = Team.objects.bulk_create(Team(name=f"Bench team {n}") for n in range(TEAMS))
    User.objects.bulk_create(
        User(username=f"bench-rep-{n}", email=f"rep{n}@bench.example", password="!",
             first_name="Rep", last_name=str(n), team=teams[n % TEAMS],
             language="de" if n % 4 == 0 else "en")
        for n in range(REPS))
    Account.objects.bulk_create(Account(name=f"Bench account {n}") for n in range(ACCOUNTS))
    timed = [stage.value for stage in TIMED_STAGES]
    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM crm_user")
        owners = cursor.fetchone()[0]
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM crm_account")
        accounts = cursor.fetchone()[0]
        # Every tenth overdue (deadline 1 to 30 days ago, untouched for 20 days), the rest
        # in stage 1 or with a deadline ahead; stages 2 to 6 in turn.
        cursor.execute(
            """
            INSERT INTO pipeline_opportunity (
                account_id, owner_id, name, type, source, amount, currency,
                expected_close_date, next_step, stage, stage_entered_at, stage_deadline,
                amount_at_stage_entry, dead_reason, dead_note, created_at, version,
                changed_at)
            SELECT (%(accounts)s::bigint[])[1 + i %% %(account_count)s],
                (%(owners)s::bigint[])[1 + i %% %(owner_count)s],
                'Bench opportunity ' || i, 'new_business', 'inbound', 10000 + i %% 50000, 'EUR',
                current_date + 90, '',
                CASE WHEN i %% 10 <> 0 AND i %% 3 = 0 THEN 'identifying'
                     ELSE (%(timed)s::text[])[1 + (i / 10) %% 5] END,
                now() - interval '40 days',
                CASE WHEN i %% 10 = 0 THEN now() - (1 + i %% 30) * interval '1 day'
                     WHEN i %% 3 = 0 THEN NULL
                     ELSE now() + (1 + i %% 40) * interval '1 day' END,
                10000 + i %% 50000, '', '', now() - interval '60 days', 5,
                CASE WHEN i %% 10 = 0 THEN now() - interval '20 days'
                     ELSE now() - interval '1 day' END
            FROM generate_series(1, %(count)s) AS i
            """,
            {"accounts": accounts, "account_count": len(accounts), "owners": owners,
             "owner_count": len(owners), "timed": timed, "count": opportunities},
        )
        # The ticks of every stage each overdue one passed, as a rep left them.
        criteria = [(criterion.key, PROCESS[criterion.stage].order)
                    for stage in (Stage.IDENTIFYING, Stage.DISCOVERING)
                    for criterion in PROCESS[stage].exit_criteria]
        orders = {stage.value: PROCESS[stage].order for stage in TIMED_STAGES}
        cursor.execute(
            f"""
            INSERT INTO pipeline_criteriontick (opportunity_id, criterion, state, note,
                                                ticked_at, ticked_by_id)
            SELECT o.id, c.key, 'met', 'Confirmed in the call of ' || o.id,
                   now() - interval '45 days', o.owner_id
            FROM pipeline_opportunity o
            JOIN (VALUES {", ".join(["(%s, %s)"] * len(criteria))}) AS c(key, stage_order)
              ON c.stage_order < (%s::jsonb ->> o.stage)::int
            WHERE o.stage_deadline < now()
            """,
            [value for pair in criteria for value in pair] + [json.dumps(orders)],
        )
        cursor.execute(
            f"CREATE TABLE {ORIGINAL} AS SELECT id, stage, stage_deadline, stage_entered_at, "
            "amount_at_stage_entry, version, changed_at FROM pipeline_opportunity "
            "WHERE stage_deadline < now()")
    vacuum()
    print(f"seeded {opportunities:,} opportunities in {time.perf_counter() - started:.1f} s")


def reset() -> None:
    """Put the parked rows back as seeded; drop what parking wrote."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE pipeline_opportunity o SET stage = b.stage, stage_deadline = b.stage_deadline,
                stage_entered_at = b.stage_entered_at,
                amount_at_stage_entry = b.amount_at_stage_entry, version = b.version,
                changed_at = b.changed_at, changed_by_id = NULL, dead_reason = '',
                dead_note = '', deadline_warned_at = NULL
            FROM {ORIGINAL} b WHERE o.id = b.id
            """)
        cursor.execute("DELETE FROM pipeline_stagechange WHERE via = 'timeout'")
        cursor.execute("DELETE FROM crm_notification")
    vacuum()


def vacuum() -> None:
    """Both runs start from tables without dead rows and with fresh statistics."""
    with connection.cursor() as cursor:
        for table in ("pipeline_opportunity", "pipeline_stagechange", "crm_notification",
                      "pipeline_criteriontick"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def overdue_count() -> int:
    return Opportunity.objects.due_for_parking(timezone.now()).count()


# --- what each measured process runs ---


def floor() -> int:
    """One UPDATE … RETURNING and one INSERT … SELECT: the least parking can cost."""
    now = timezone.now()
    reasons = timeout_reasons()
    note = "CASE stage " + " ".join("WHEN %s THEN %s" for _ in reasons) + " END"
    note_params = [value for pair in reasons.items() for value in pair]
    back = "CASE dead_note " + " ".join("WHEN %s THEN %s" for _ in reasons) + " END"
    back_params = [value for stage, reason in reasons.items() for value in (reason, stage)]
    timed = [stage.value for stage in TIMED_STAGES]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE pipeline_opportunity SET stage = 'dead', dead_reason = 'timeout',
                dead_note = {note}, stage_entered_at = %s, amount_at_stage_entry = amount,
                stage_deadline = NULL, deadline_warned_at = NULL, version = version + 1,
                changed_at = %s, changed_by_id = NULL
            WHERE stage = ANY(%s) AND stage_deadline < %s AND changed_at < %s
              AND amount < 2 * amount_at_stage_entry
            RETURNING id
            """,
            [*note_params, now, now, timed, now, now - timedelta(days=7)],
        )
        parked = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""
            INSERT INTO pipeline_stagechange (opportunity_id, from_stage, to_stage, changed_at,
                via, reason, dead_reason, is_undo, checklist)
            SELECT id, {back}, 'dead', %s, 'timeout', dead_note, 'timeout', false, '{{}}'
            FROM pipeline_opportunity WHERE id = ANY(%s)
            """,
            [*back_params, now, parked],
        )
    return len(parked)


def sweep() -> int:
    from pipeline.tasks import park_overdue_opportunities

    return park_overdue_opportunities()


def warm_up_celery() -> None:
    """Load Celery's transport and connect to the broker, as the worker that runs the
    sweep has done long before: importing them on the first publish cost about 0.8 s,
    a sixth of a sweep of 10,000, that no sweep in production pays."""
    from crm.celery import app

    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1)


def resident_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_here(subject: str) -> None:
    """Run one subject in this process and print its figures as JSON."""
    overdue_count()  # connected, and the models' code loaded, before the baseline
    if subject == "sweep":
        warm_up_celery()
    baseline = resident_kb("VmRSS")
    started = time.perf_counter()
    parked = {"floor": floor, "sweep": sweep}[subject]()
    seconds = time.perf_counter() - started
    print(json.dumps({"parked": parked, "seconds": seconds,
                      "memory_mb": (resident_kb("VmHWM") - baseline) / 1024}))


def measure(subject: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--measure", subject],
                            capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{subject} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--no-seed", action="store_true", help="reuse the seeded data")
    parser.add_argument("--rounds", type=int, default=3,
                        help="floor and sweep measured this many times, alternating")
    parser.add_argument("--measure", choices=["floor", "sweep"], help=argparse.SUPPRESS)
    parser.add_argument("--i-know-this-empties-the-database", action="store_true")
    arguments = parser.parse_args()
    if arguments.measure:
        measure_here(arguments.measure)
        return
    name = connection.settings_dict["NAME"]
    if "bench" not in name and not arguments.i_know_this_empties_the_database:
        raise SystemExit(f"Refusing to empty {name!r}: its name does not contain 'bench'.")
    if connection.vendor != "postgresql":
        raise SystemExit("The sweep benchmark needs PostgreSQL.")
    print_environment()
    if not arguments.no_seed:
        seed(arguments.opportunities)
    reset()  # in case an earlier run stopped half-way
    total = Opportunity.objects.count()
    expected = overdue_count()
    print(f"{total:,} opportunities, {expected:,} overdue")
    rounds = []
    for number in range(1, arguments.rounds + 1):
        # Floor and sweep alternate, so a change of load on the machine hits both alike.
        figures = {}
        for subject in ("floor", "sweep"):
            reset()
            figures[subject] = measure(subject)
            if figures[subject]["parked"] != expected:
                raise SystemExit(f"{subject} parked {figures[subject]['parked']:,}, "
                                 f"expected {expected:,}")
            print(f"round {number}: {subject:<6} {figures[subject]['seconds']:8.2f} s   "
                  f"peak memory +{figures[subject]['memory_mb']:7.1f} MB   "
                  f"({figures[subject]['parked']:,} parked)")
        figures["ratio"] = figures["sweep"]["seconds"] / figures["floor"]["seconds"]
        print(f"round {number}: sweep / floor {figures['ratio']:.2f}x")
        rounds.append(figures)
    reset()
    ratios = sorted(figures["ratio"] for figures in rounds)
    print(f"sweep / floor: median {statistics.median(ratios):.2f}x, "
          f"from {ratios[0]:.2f}x to {ratios[-1]:.2f}x over {len(ratios)} rounds "
          "(target: within 5x)")
    print(f"peak memory: floor +{max(f['floor']['memory_mb'] for f in rounds):.1f} MB, "
          f"sweep +{max(f['sweep']['memory_mb'] for f in rounds):.1f} MB")


if __name__ == "__main__":
    main()
