"""The API's forecast figures, and the API itself: its routers from each app, its token
authentication and how it answers a refused request. Assembled here because forecasting
may import pipeline and crm, and crm may import neither (docs/architecture.md)."""


from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext
from ninja import Field, NinjaAPI, Query, Router, Schema
from ninja.errors import ValidationError as SchemaError

from crm.api import Invalid, Missing, TokenAuth
from crm.api import router as crm_router
from crm.models import User, fiscal_quarter, quarter_from_text
from forecasting.rollups import Figures, quarter_forecast
from forecasting.scope import requested_scope
from pipeline import api_orders, api_plans  # noqa: F401 (add to the records' router)
from pipeline.api import PreconditionFailed
from pipeline.api import router as opportunity_router
from pipeline.api_committee import router as committee_router
from pipeline.api_records import router as records_router
from pipeline.models import ChangeRefused, Conflict, GateNotMet

router = Router(tags=["forecast"])


class FiguresOut(Schema):
    closed: Decimal
    commit: Decimal
    best_case: Decimal
    pipeline: Decimal
    weighted: Decimal
    unconverted: int = Field(..., description="Opportunities left out for want of an "
                             "exchange rate.")


class OwnerFigures(FiguresOut):
    owner: int
    name: str
    quota: Decimal | None


class ForecastOut(FiguresOut):
    quarter: str
    target: Decimal | None
    owners: list[OwnerFigures]


def figures(found: Figures) -> dict:
    return {**found.amounts, "weighted": found.weighted, "unconverted": found.unconverted}


@router.get("/forecast", response=ForecastOut,
            summary="A quarter's Closed, Commit, Best Case and Pipeline, in all and per owner",
            description="In the company currency, for what the token's user may see: a rep "
                        "their own, a manager their teams', sales ops every team.")
def forecast(request, quarter: str = Query("", pattern=r"^(\d{4}-Q[1-4])?$",
                                            examples=["2026-Q4"]),
             team: int | None = Query(None, ge=1), rep: int | None = Query(None, ge=1)):
    scope = requested_scope(request.user, team=str(team or ""), rep=str(rep or ""))
    try:
        year, number = (quarter_from_text(quarter) if quarter
                        else fiscal_quarter(timezone.localdate()))
    except ValueError:
        raise Invalid({"quarter": [gettext("Name a quarter as 2027-Q1.")]}) from None
    total, per_owner = quarter_forecast(scope.opportunities, year, number)
    quotas = scope.quotas.of_quarter(year, number)
    quota_of = quotas.per_rep()
    owners = User.objects.filter(pk__in={*per_owner, *quota_of}).order_by(
        "first_name", "last_name", "username")
    return {
        **figures(total), "quarter": f"{year}-Q{number}", "target": quotas.target(),
        "owners": [{**figures(per_owner.get(owner.pk, Figures())), "owner": owner.pk,
                    "name": str(owner), "quota": quota_of.get(owner.pk)}
                   for owner in owners],
    }


api = NinjaAPI(
    title="Progression API", version="1",
    description="Accounts, contacts, opportunities and the forecast, with the permissions "
                "of the token's user. Make a token under API tokens in the app.",
    auth=TokenAuth(), urls_namespace="api", openapi_url="/schema/", docs_url="/docs/",
)
api.add_router("", crm_router)
api.add_router("", opportunity_router)
api.add_router("", records_router)
api.add_router("", committee_router)
api.add_router("", router)


def refused(request, message: str, status: int, **data):
    return api.create_response(request, {"detail": message, **data}, status=status)


@api.exception_handler(GateNotMet)
def gate_not_met(request, refusal: GateNotMet):
    """409 with the criteria still missing, as data a script can act on."""
    return refused(request, refusal.message, 409, stage=refusal.stage.value,
                   missing=[{"key": c.key, "label": str(c.label)} for c in refusal.missing])


@api.exception_handler(Conflict)
def version_conflict(request, refusal: Conflict):
    """The opportunity moved on past the If-Match version: 412, with the current ETag."""
    response = refused(request, refusal.message, 412)
    response["ETag"] = f'"{refusal.opportunity.version}"'
    return response


@api.exception_handler(PreconditionFailed)
def precondition_failed(request, refusal: PreconditionFailed):
    return refused(request, str(refusal), 412)


@api.exception_handler(ChangeRefused)
def change_refused(request, refusal: ChangeRefused):
    return refused(request, refusal.message, refusal.status_code)


@api.exception_handler(Invalid)
def invalid(request, refusal: Invalid):
    return refused(request, gettext("Some values were refused."), 400, errors=refusal.errors)


@api.exception_handler(ValidationError)
def model_validation(request, error: ValidationError):
    return refused(request, " ".join(error.messages), 400)


@api.exception_handler(Http404)
def not_found(request, error: Http404):
    """Out of sight and not there answer alike, as on the pages."""
    message = str(error) if isinstance(error, Missing) else gettext(
        "There is no such record among those you may see.")
    return refused(request, message, 404)


@api.exception_handler(SchemaError)
def unfit_input(request, error: SchemaError):
    """Input that does not fit the schema: 422, each field's messages by its name."""
    errors = defaultdict(list)
    for problem in error.errors:
        where = [str(part) for part in problem.get("loc", ())]
        # ("body", "payload", "amount") -> "amount"; ("query", "page_size") -> "page_size"
        name = ".".join(where[2:] if where[:1] == ["body"] else where[1:]) or "request"
        errors[name].append(problem.get("msg", ""))
    return refused(request, gettext("Some values do not fit the API's schema."), 422,
                   errors=dict(errors))


@api.exception_handler(PermissionDenied)
def forbidden(request, error: PermissionDenied):
    return refused(request, str(error) or gettext("Your role may not do this."), 403)
