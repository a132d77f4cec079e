"""What a validation says: one :class:`ValidationReport` per table, its failed expectations in words, and the
errors of the quality gate."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from pe_udfs.errors import PEError


class QualityError(PEError):
    """A data quality problem or a validation that could not run; ``reason`` is a stable code."""

    stage = "validate"


class ValidationFailed(QualityError):
    """One or more expectations failed on tables whose failures fail the job."""

    def __init__(self, reports: Sequence["ValidationReport"]):
        self.reports = tuple(reports)
        names = sorted({f"{r.table}.{f.expectation}" for r in reports for f in r.failed})
        super().__init__("validation_failed", "data quality gate failed: " + ", ".join(names))


@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation of a table's suite."""

    expectation: str  # GE's name, e.g. 'expect_compound_columns_to_be_unique'
    check: str  # this project's short name, e.g. 'key_unique'
    columns: tuple[str, ...]
    rule: str  # what the expectation says, in words
    unexpected_count: int | None  # rows that broke it (None when the expectation could not run)
    element_count: int | None
    examples: tuple[Any, ...] = ()  # a few offending values
    error: str | None = None  # the exception message when the expectation could not be evaluated

    def describe(self) -> str:
        where = f" [{', '.join(self.columns)}]" if self.columns else ""
        if self.error:
            return f"{self.expectation}{where}: could not run: {self.error}"
        count = f"{self.unexpected_count} of {self.element_count} rows" if self.unexpected_count is not None else ""
        ex = f"; e.g. {', '.join(repr(e) for e in self.examples)}" if self.examples else ""
        return f"{self.expectation}{where}: {count} broke '{self.rule}'{ex}"


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one table's suite."""

    table: str
    success: bool
    rows: int  # rows validated (for pe_seconds: (video_id, model_version) groups)
    expectations: int
    failed: tuple[FailedExpectation, ...] = ()
    docs_path: str | None = None  # Data Docs index (HTML) when written
    row_level: bool = False  # an input table: failing rows are rejected instead of failing the job

    @property
    def failed_expectations(self) -> list[str]:
        return [f.expectation for f in self.failed]

    def describe(self) -> str:
        status = "passed" if self.success else f"FAILED {len(self.failed)} of {self.expectations} expectations"
        lines = [f"{self.table}: {status} ({self.rows} rows)"]
        lines += [f"  - {f.describe()}" for f in self.failed]
        return "\n".join(lines)
