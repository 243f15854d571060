from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InsightsConfig(AppConfig):
    name = "siyu.insights"
    label = "insights"
    verbose_name = "Insights"

    def ready(self):
        # lazy: these imports need the app registry, which is loaded when ready() runs
        from siyu.core import menu, worker
        from siyu.insights import sections, tasks
        from siyu.profiles import sections as profile_sections

        menu.register("cdp", _("RFM 分析"), "insights:rfm", order=30)
        menu.register("cdp", _("生命周期"), "insights:lifecycle", order=40)
        menu.register("cdp", _("RFM 设置"), "insights:settings", order=90, roles=("admin", "operator"))
        profile_sections.register(
            "rfm", _("RFM 与生命周期"), order=20, template="insights/section_rfm.html", fn=sections.rfm_section
        )
        # the incremental tick, the nightly full run, a first run on a new install
        worker.on_start(tasks.on_worker_start)
