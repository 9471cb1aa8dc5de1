"""The import's two forms: the upload, and the mapping of the source's stages to ours."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.models import User
from pipeline.imports.parsing import stage_key
from pipeline.imports.vendors import Vendor
from pipeline.models import ImportBatch
from pipeline.process import ORDERED_STAGES, Stage

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class UploadForm(forms.Form):
    vendor = forms.ChoiceField(label=_("Exported from"), choices=Vendor.choices)
    file = forms.FileField(label=_("CSV file"))
    default_owner = forms.ModelChoiceField(
        label=_("Owner of deals whose owner is not found here"),
        queryset=User.objects.none(),
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        owners = ImportBatch.owners_for(user)
        self.fields["default_owner"].queryset = owners
        if owners.filter(pk=user.pk).exists():
            self.fields["default_owner"].initial = user.pk

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is larger than 50 MB; split it into several imports."))
        return upload


# Not Pending: that stage is sales ops' review of a received order, which an imported
# deal does not have; a won deal enters Closed.
STAGE_CHOICES = [("", _("— not imported —")),
                 *[(stage.value, stage.label) for stage in (*ORDERED_STAGES, Stage.DEAD)
                   if stage != Stage.PENDING]]


class StageMapForm(forms.Form):
    """One choice per stage name the file uses; a stage left unmapped is an error on each
    of its rows."""

    def __init__(self, *args, labels: list[tuple[str, int]], initial_map: dict[str, str],
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.labels = labels
        for index, (label, count) in enumerate(labels):
            self.fields[f"stage_{index}"] = forms.ChoiceField(
                label=label, choices=STAGE_CHOICES, required=False,
                initial=initial_map.get(stage_key(label), ""),
                help_text=ngettext("%(count)d row", "%(count)d rows", count) % {"count": count},
            )

    def stage_map(self) -> dict[str, str]:
        return {stage_key(label): self.cleaned_data[f"stage_{index}"]
                for index, (label, _count) in enumerate(self.labels)}
