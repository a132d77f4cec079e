"""``pe report`` and ``pe advise``: what the scores say to people (the last step of the flow).

    write       the job: reads scores, seconds, evaluation and sales from the lake, writes the pages (HTML,
                self-contained and readable offline)
    advice      ``pe advise``: per-video edit advice (pe_udfs.advice) from pe_seconds into the edit_advice table
    pages       a video's page and the campaign's page (Jinja templates in jobs.templates, shared with jobs.analysis)
    figures     frames with the engagement overlay, per-second curves (matplotlib)

Not to be confused with :mod:`jobs.quality.results` (what a data-quality validation says).
"""
from jobs.report.write import ReportError, best_video_id, write_campaign_report, write_video_report

__all__ = ["write_video_report", "write_campaign_report", "best_video_id", "ReportError"]
