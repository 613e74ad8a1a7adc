"""Hindcast ``report.md``: the data (real or SYNTHETIC), the windows, each model's scores and pass rates, the
whole-period tests, how to read them, and the figures; rendered from the summary and the results table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodl_hpc.forecasting.hindcast_config import PAIRED_TESTS
from geodl_hpc.forecasting.hindcast_scoring import T_ALPHA

if TYPE_CHECKING:
    import pandas as pd


def render_report(summary: dict[str, Any], table: pd.DataFrame) -> str:
    """``report.md``: data (real or SYNTHETIC), windows, per-model scores and pass rates, the figures."""
    tests = list(dict.fromkeys(table["test"]))
    lines = ["# Hindcast report", ""]
    lines += _data_lines(summary)
    lines += [f"## Scores (information gain per event vs `{summary['reference']}`, pass rate per test)", ""]
    lines += _score_table(summary, tests)
    if any("whole_period" in s for s in summary["models"].values()):
        lines += ["", "## Whole test period (windows pooled): quantile, pass", ""]
        lines += _whole_period_table(summary, tests)
    lines += _reading_notes(summary, tests)
    lines.append("")
    for name, path in summary.get("plots", {}).items():
        lines += [f"![{name}]({Path(path).relative_to(summary['output'])})", ""]
    return "\n".join(lines)


def _data_lines(summary: dict[str, Any]) -> list[str]:
    """Where the catalog came from, how many events it holds, the windows, the grid and the work items."""
    source = summary["catalog"]
    w = summary["windows"]
    lines: list[str] = []
    if source.get("synthetic"):
        lines += [
            f"**SYNTHETIC catalog**: {source.get('model', 'ETAS')}, parameters {source['params'].get('name')} "
            f"({source['params'].get('reference', '')}), seed {source.get('seed')}.",
            "",
        ]
    else:
        lines += [f"Catalog: `{source['file']}` (real data).", ""]
    lines += [
        f"- events in the region: {source['events_in_region']}; binned (>= Mc, in the windows): "
        f"{source['events_binned']}; in test windows: {source['events_tested']}",
        f"- windows: {w['total']} of {w['window_days']} days; {w['test']} test windows from {w['first_test_start']}; "
        "each model refit every "
        + ", ".join(f"{n} windows ({m})" for m, n in w["refit_every"].items())
        + " on the windows before the refit origin only",
        f"- grid: {summary['grid']['cells']} cells of {summary['grid']['dh']} deg, {summary['grid']['mags']} "
        f"magnitude bins from M{summary['grid']['mag_edges'][0]}",
        f"- work items: {summary['campaign']['n_items']} ({summary['campaign']['computed']} computed in this run, "
        f"{summary['campaign']['skipped']} resumed from earlier pieces)",
        "",
    ]
    return lines


def _score_table(summary: dict[str, Any], tests: list[str]) -> list[str]:
    """One row per model: windows, events, expected, log-likelihood, gain, Molchan ASS, pass rate per test."""
    has_ass = any("molchan_area_skill_score" in s for s in summary["models"].values())
    head = "| model | windows | events | expected | log-likelihood | IG/event | "
    head += "Molchan ASS pooled / per window | " if has_ass else ""
    lines = [head + " | ".join(tests) + " |", "|---" * (6 + has_ass + len(tests)) + "|"]
    for model, s in summary["models"].items():
        ig = s[f"information_gain_vs_{summary['reference']}"]
        rates = " | ".join(f"{100 * s['pass_rate'][t]:.0f}%" if t in s["pass_rate"] else "-" for t in tests)
        scores = s.get("molchan_area_skill_score", {})
        ass = f"{scores.get('whole_period')} / {scores.get('mean_per_window')} | " if has_ass else ""
        lines.append(
            f"| {model} | {s['windows']} | {s['events']} | {s['expected_events']:.1f} | {s['log_likelihood']} | "
            f"{ig} | {ass}{rates} |"
        )
    return lines


def _whole_period_table(summary: dict[str, Any], tests: list[str]) -> list[str]:
    """One row per model, one cell per test over the whole test period."""
    lines = ["| model | " + " | ".join(tests) + " |", "|---" * (1 + len(tests)) + "|"]
    for model, s in summary["models"].items():
        cells = [_whole_period_cell(t, s["whole_period"].get(t)) for t in tests]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def _whole_period_cell(test: str, r: dict[str, Any] | None) -> str:
    """One whole-period cell of report.md: the quantile (T: gain and interval, W: p-value) and pass/FAIL."""
    if r is None:
        return "-"
    verdict = "pass" if r["passed"] else "FAIL"
    if test == "T":
        gain, lower, upper = (r.get(k) for k in ("observed_statistic", "ig_lower", "ig_upper"))
        if gain is None or lower is None or upper is None:
            return f"n/a {verdict}"
        return f"{gain:.3f} [{lower:.3f}, {upper:.3f}] {verdict}"
    q = r["quantile"]
    shown = f"{min(q):.3f}" if isinstance(q, list) else f"{q:.3f}" if q is not None else "n/a"
    return f"{shown} {verdict}"


def _reading_notes(summary: dict[str, Any], tests: list[str]) -> list[str]:
    """How a window passes each test, and what the paired tests and the Molchan scores mean."""
    lines = [
        "",
        "A window passes the N-test when both quantiles are >= 0.025 (shown: the smaller) and the L/CL/S/M/Brier "
        "tests when the quantile is >= 0.025. The full table (one row per model, window and test) is `results.csv`.",
    ]
    if any(t in PAIRED_TESTS for t in tests):
        lines.append(
            f"Paired tests against `{summary['reference']}` (no row for the reference itself): T passes when the "
            f"{100 * (1 - T_ALPHA):.0f} % interval of the information gain per event lies above 0 (whole period: "
            f"gain [interval]); W passes when its p-value is < {T_ALPHA} and the gain is positive (shown: p). "
            "Molchan ASS: area skill score of the Molchan diagram (0.5: no skill) of the test windows summed "
            "(pooled) and its mean over the windows with events (per window)."
        )
    return lines
