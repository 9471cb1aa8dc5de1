"""A timeout sweep that dies at a fixed point, as a worker killed by the kernel would:
`python killed_sweep.py after-first-batch|inside-first-batch BATCH_SIZE`, with
DATABASE_URL set. Exits with status 9 where it dies; tests/pipeline/test_parking.py
starts it and then sweeps again."""

import os
import sys

import django

KILLED = 9


def main(kill_at: str, batch_size: int) -> None:
    django.setup()
    from django.utils import timezone

    from pipeline.models import Opportunity

    if kill_at == "after-first-batch":
        park_batch = Opportunity.park_batch.__func__

        def park_then_die(cls, *args, **kwargs):
            park_batch(cls, *args, **kwargs)  # committed
            os._exit(KILLED)

        Opportunity.park_batch = classmethod(park_then_die)
    elif kill_at == "inside-first-batch":
        record = Opportunity._record_parked.__func__

        def record_then_die(cls, *args, **kwargs):
            record(cls, *args, **kwargs)  # claimed and recorded, not committed
            os._exit(KILLED)

        Opportunity._record_parked = classmethod(record_then_die)
    else:
        raise SystemExit(f"unknown kill point {kill_at!r}")
    Opportunity.park_overdue(timezone.now(), batch_size=batch_size)
    raise SystemExit("the sweep finished instead of dying")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
