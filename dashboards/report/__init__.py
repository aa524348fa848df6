"""The weekly FinOps report: report.html, report.md, report.json and patches/ from one Snapshot.

``write_report`` computes the document once (``figures``), renders it (``html``, ``markdown``),
writes everything into a temp directory and renames it into place (``--out``) or into a
timestamped run of ``--history-dir`` (``history``); ``push`` sends a finished report to Slack or S3.
"""

from dashboards.report.figures import REPORT_FORMAT, REPORT_VERSION, ReportOptions, build_document
from dashboards.report.write import WrittenReport, check_writable, write_report

__all__ = ["REPORT_FORMAT", "REPORT_VERSION", "ReportOptions", "WrittenReport", "build_document", "check_writable",
           "write_report"]
