"""The CI recipe is valid YAML and calls qbench compare with options the CLI accepts."""

import re
import shlex
from pathlib import Path

import yaml  # installed with asv (the test extra)

from qbench.cli import build_parser

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "benchmarks.yml"


def test_workflow_runs_compare_and_uploads_its_report():
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert "pull_request" in flow[True]  # YAML 1.1 reads the key `on` as True
    steps = flow["jobs"]["compare"]["steps"]
    commands = [line.strip() for s in steps for line in s.get("run", "").splitlines() if "qbench compare" in line]
    assert len(commands) == 1
    argv = shlex.split(re.sub(r"\$\{\{[^}]*\}\}", "main", commands[0]))[1:]
    args = build_parser().parse_args(argv)  # exits (fails the test) on an unknown option
    assert args.func.__name__ == "_compare" and args.quick and args.base == "origin/main" and args.head == "HEAD"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == args.out
    assert next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))["with"]["fetch-depth"] == 0
