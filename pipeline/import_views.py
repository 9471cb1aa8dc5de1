"""The import from another CRM: upload a file, map its stages, preview its rows, commit
the clean ones on the worker while the page shows the progress."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from crm.models import enqueue_quietly
from pipeline.imports.commit import progress_of
from pipeline.imports.forms import StageMapForm, UploadForm
from pipeline.imports.preview import file_stages, preview, receive
from pipeline.imports.reading import UnreadableFile
from pipeline.models import ImportBatch, ImportStatus
from pipeline.tasks import import_file


def importer(request):
    if not ImportBatch.may_import(request.user):
        raise PermissionDenied(_("Sales ops, managers and account executives import "
                                 "opportunities; ask one of them."))
    return request.user


@login_required
def import_upload(request) -> TemplateResponse:
    user = importer(request)
    form = UploadForm(request.POST or None, request.FILES or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            batch = receive(by=user, upload=form.cleaned_data["file"],
                            vendor=form.cleaned_data["vendor"],
                            default_owner=form.cleaned_data["default_owner"])
        except UnreadableFile as refusal:
            form.add_error("file", str(refusal))
        else:
            return HttpResponseRedirect(batch_url(batch))
    return TemplateResponse(request, "pipeline/import.html", {
        "form": form,
        "imports": ImportBatch.visible_to(user).defer("content").order_by("-created_at")[:10],
    }, status=400 if form.errors else 200)


def batch_url(batch: ImportBatch) -> str:
    return reverse("pipeline:import_preview", args=[batch.pk])


@login_required
def import_preview(request, pk: int) -> TemplateResponse:
    """The mapping and the preview; posting the mapping previews it again, or commits."""
    batch = get_object_or_404(ImportBatch.visible_to(importer(request)), pk=pk)
    if batch.status != ImportStatus.DRAFT:
        if request.method == "POST" and batch.status == ImportStatus.QUEUED:
            # The broker was down when it was queued: the task is safe to send twice.
            enqueue_quietly(import_file, batch.pk)
            return HttpResponseRedirect(batch_url(batch))
        return TemplateResponse(request, "pipeline/import_preview.html",
                                progress_context(batch))
    form = StageMapForm(request.POST or None, labels=file_stages(batch),
                        initial_map=batch.stage_map)
    if request.method == "POST" and form.is_valid():
        batch.stage_map = form.stage_map()
        batch.save(update_fields=["stage_map"])
        if request.POST.get("action") == "commit":
            return commit(request, batch)
    return TemplateResponse(request, "pipeline/import_preview.html", {
        "batch": batch, "form": form, "preview": preview(batch),
    }, status=400 if form.errors else 200)


@transaction.atomic
def commit(request, batch: ImportBatch) -> HttpResponseRedirect:
    if batch.queue():
        transaction.on_commit(lambda: enqueue_quietly(import_file, batch.pk))
    return HttpResponseRedirect(batch_url(batch))


@login_required
def import_progress(request, pk: int) -> TemplateResponse:
    """The progress bar, polled by the page until the import is finished."""
    batch = get_object_or_404(ImportBatch.visible_to(importer(request)).defer("content"),
                              pk=pk)
    return TemplateResponse(request, "pipeline/import_preview.html#progress",
                            progress_context(batch))


def progress_context(batch: ImportBatch) -> dict:
    done, total = progress_of(batch) or (0, None)
    return {"batch": batch, "done": done, "total": total}
