"""The board's list as CSV: the opportunities the same filters show, every column a
spreadsheet needs, no cell it would run as a formula."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import spreadsheet_text
from pipeline.board_views import board_filters, board_opportunities, board_stages
from pipeline.dead_pool_views import Echo
from pipeline.process import PROCESS, Stage


@login_required
def board_export(request) -> StreamingHttpResponse:
    """Every card the board's filters select in every column shown, not only the first
    cards a column loads; streamed in chunks so memory stays flat."""
    filters = board_filters(request, request.GET)
    if filters.errors:
        raise BadRequest(_("Those filters are not valid; reload the board and export again."))
    opportunities = (board_opportunities(request, filters)
                     .filter(stage__in=board_stages(filters))
                     .select_related("account", "owner")
                     .order_by("expected_close_date", "id"))
    header = [_("Id"), _("Opportunity"), _("Account"), _("Owner"), _("Stage"),
              _("Probability (%)"), _("Forecast category"), _("Type"), _("Amount"),
              _("Currency"), _("Expected close date"), _("Next step"), _("In stage since")]

    def lines():
        writer = csv.writer(Echo())
        yield writer.writerow(header)
        for opportunity in opportunities.iterator(chunk_size=1000):
            rule = PROCESS[Stage(opportunity.stage)]
            yield writer.writerow([
                opportunity.pk, *[spreadsheet_text(text) for text in (
                    opportunity.name, opportunity.account.name, opportunity.owner,
                    opportunity.get_stage_display())],
                rule.probability, spreadsheet_text(rule.category.label),
                spreadsheet_text(opportunity.get_type_display()), opportunity.amount,
                opportunity.currency, opportunity.expected_close_date.isoformat(),
                spreadsheet_text(opportunity.next_step),
                timezone.localtime(opportunity.stage_entered_at).date().isoformat(),
            ])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="board-{timezone.localdate().isoformat()}.csv"')
    return response
