"""`manage.py show_process`: the sales process as this installation runs it.

Everything printed comes from the process table (pipeline/process.py) and the timeouts
sales ops have set, so the output cannot drift from what the app enforces.
"""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext, ngettext, pgettext

from pipeline.models import StageTimeout
from pipeline.process import ORDERED_STAGES, PROCESS, Criterion, CriterionKind, Stage

INDENT = "   "


def days(count: int) -> str:
    return ngettext("%(count)d day", "%(count)d days", count) % {"count": count}


class Command(BaseCommand):
    @property
    def help(self) -> str:
        # Translated when asked for: argparse cannot format a lazy string.
        return gettext(
            "Print the sales process as configured: stages, probabilities, forecast "
            "categories, timeouts in force and exit criteria."
        )

    def handle(self, *args, **options) -> None:
        # Dead has no place in the order, so it comes last, after Closed.
        stages = [*ORDERED_STAGES, *(stage for stage in Stage if stage not in ORDERED_STAGES)]
        overridden = set(StageTimeout.objects.values_list("stage", flat=True))
        self.stdout.write(
            gettext("The sales process as configured (%(count)d stages)") % {"count": len(stages)}
        )
        for stage in stages:
            self.stdout.write("")
            self.stdout.write("\n".join(self.describe(stage, stage.value in overridden)))

    def describe(self, stage: Stage, overridden: bool) -> list[str]:
        """The lines for one stage: heading, facts, then its exit criteria."""
        rule = PROCESS[stage]
        if rule.order is None:
            heading = gettext("%(key)s: %(name)s, outside the process order")
        else:
            heading = gettext("%(position)d. %(key)s: %(name)s")
        lines = [
            heading % {"position": rule.order, "key": stage.value, "name": stage.label},
            INDENT + gettext("Probability: %(probability)d %%") % {
                "probability": rule.probability
            },
            INDENT + gettext("Forecast category: %(category)s") % {
                "category": rule.category.label
            },
            INDENT + gettext("Timeout: %(timeout)s") % {
                "timeout": self.timeout(stage, overridden)
            },
        ]
        if not rule.exit_criteria:
            lines.append(INDENT + gettext("Exit criteria: none"))
            return lines
        lines.append(INDENT + gettext("Exit criteria:"))
        lines.extend(INDENT + "- " + self.criterion(c) for c in rule.exit_criteria)
        return lines

    def timeout(self, stage: Stage, overridden: bool) -> str:
        in_force = StageTimeout.days_for(stage)
        if in_force is None:
            return pgettext("timeout", "none")
        if not overridden:
            return days(in_force)
        return gettext("%(days)s (set by sales ops; default %(default)s)") % {
            "days": days(in_force),
            "default": days(PROCESS[stage].default_timeout_days),
        }

    def criterion(self, criterion: Criterion) -> str:
        how = [CriterionKind(criterion.kind).label]
        if criterion.may_be_not_required:
            how.append(gettext("may be marked not required"))
        return gettext("%(label)s [%(how)s]") % {
            "label": criterion.label, "how": ", ".join(str(part) for part in how)
        }
