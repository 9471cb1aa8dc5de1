from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = _("Pipeline")

    def ready(self) -> None:
        from crm.erasure import contact_erased
        from pipeline.contact_privacy import scrub_deal_texts

        # crm cannot import pipeline: an erased contact's name leaves the deals' texts here.
        contact_erased.connect(scrub_deal_texts, dispatch_uid="pipeline_scrub_deal_texts")
