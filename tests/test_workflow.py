"""The CI recipe is valid YAML and calls qbench compare with options the CLI accepts."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # installed with asv (the test extra)

from qbench.cli import build_parser
from tests.test_analysis import copy_results

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "benchmarks.yml"


def test_workflow_runs_compare_and_uploads_its_report():
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert "pull_request" in flow[True]  # YAML 1.1 reads the key `on` as True
    steps = flow["jobs"]["compare"]["steps"]
    commands = [line.strip() for s in steps for line in s.get("run", "").splitlines() if "qbench compare" in line]
    assert len(commands) == 1
    argv = shlex.split(re.sub(r"\$\{\{[^}]*\}\}", "main", commands[0]))[1:]
    args = build_parser().parse_args(argv)  # exits (fails the test) on an unknown option
    assert args.command == "compare" and args.gate and args.base == "origin/main" and args.head == "HEAD"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == args.out
    assert next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))["with"]["fetch-depth"] == 0


def test_workflow_caches_asvs_environment_and_posts_the_summary():
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["compare"]["steps"]
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert (
        cache["with"]["path"] == ".asv/env" and "hashFiles('pyproject.toml', 'asv.conf.json')" in cache["with"]["key"]
    )
    names = [s.get("uses", s.get("name")) for s in steps]
    assert names.index(cache["uses"]) < next(i for i, s in enumerate(steps) if "qbench compare" in s.get("run", ""))
    summary = next(s for s in steps if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"] == "always()" and "reports/compare/compare.md" in summary["run"]


def test_workflow_installs_valgrind_before_the_gate():
    """Without valgrind the gate counts nothing and judges cache-resident kernels by a noisy time alone."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["compare"]["steps"]
    runs = [s.get("run", "") for s in steps]
    install = next(i for i, r in enumerate(runs) if re.search(r"apt-get install\b.*\bvalgrind\b", r))
    assert install < next(i for i, r in enumerate(runs) if "qbench compare" in r)


SWEEP = WORKFLOW.parents[2] / "benchmarks" / "thread_sweep.sh"


def test_the_thread_sweep_script_runs_commands_the_cli_accepts_on_the_right_benchmarks():
    """Each qbench command of the many-core sweep parses; its pattern takes quantize, dequantize and the
    side-by-side ratios (asv matches "name(params)"), and nothing else."""
    text = SWEEP.read_text().replace("\\\n", " ")
    commands = [line.strip() for line in text.splitlines() if line.strip().startswith("qbench ")]
    assert [c.split()[1] for c in commands] == ["run", "report"]
    pattern = None
    for command in commands:
        command = command.split("#")[0].replace('"$threads"', "1,2,4,8,16")
        argv = shlex.split(re.sub(r'"\$[^"]*"', "x", command))[1:]
        args = build_parser().parse_args(argv)  # exits (fails the test) on an unknown option
        pattern = pattern or args.bench
    assert re.search(r'threads="\$\{QBENCH_THREADS:-1,2,4,8,16\}"', text)
    bench = re.compile(pattern)
    for name in (
        "bench_quantize.Quantize.time_run",
        "bench_quantize.Dequantize.track_gbps",
        "bench_side_by_side.SideBySide.track_ratio",
    ):
        assert bench.search(f"{name}(16384, uint8, 4, qbench)")
    for name in ("bench_quantize.QuantizeAxis.time_run", "bench_accumulate.Sum.time_run", "bench_counts.x"):
        assert not bench.search(f"{name}(16384, uint8, 4, qbench)")


WORKFLOWS = sorted(WORKFLOW.parent.glob("*.yml"))
FLEET = WORKFLOW.parent / "fleet.yml"
ACTIONLINT = shutil.which("actionlint")


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint not installed (the test extra brings its wheel)")
def test_every_workflow_passes_actionlint():
    lint = subprocess.run([ACTIONLINT, *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert {p.name for p in WORKFLOWS} >= {"benchmarks.yml", "fleet.yml"}


def _commands(steps: list[dict], word: str) -> list[str]:
    return [line.strip() for s in steps for line in s.get("run", "").splitlines() if line.strip().startswith(word)]


def test_the_fleet_sweeps_each_runner_kind_and_uploads_its_results():
    flow = yaml.safe_load(FLEET.read_text())
    sweep = flow["jobs"]["sweep"]
    runners = sweep["strategy"]["matrix"]["runner"]
    assert any(r.endswith("-arm") for r in runners) and sum(not r.endswith("-arm") for r in runners) >= 2
    assert sweep["runs-on"] == "${{ matrix.runner }}" and sweep["strategy"]["fail-fast"] is False
    (run,) = _commands(sweep["steps"], "qbench run")
    args = build_parser().parse_args(shlex.split(run.replace("${{ matrix.runner }}", "ubuntu-24.04"))[1:])
    assert args.quick and args.machine == "ubuntu-24.04"
    upload = next(s for s in sweep["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == ".asv/results" and upload["if"] == "always()"
    assert upload["with"]["name"] == "results-${{ matrix.runner }}"


def test_the_fleet_merge_step_makes_one_page_of_two_machines_here(tmp_path):
    """The merge job's own commands, on two result folders laid out as download-artifact leaves them."""
    merge = yaml.safe_load(FLEET.read_text())["jobs"]["merge"]
    assert merge["needs"] == "sweep" and merge["if"] == "always()"
    download = next(s for s in merge["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == "results-*"
    for machine in ("ubuntu-24.04", "ubuntu-24.04-arm"):
        folder = copy_results(tmp_path / "x" / machine, machine=machine)
        shutil.move(folder, tmp_path / download["with"]["path"] / f"results-{machine}")
    (report,) = _commands(merge["steps"], "qbench report")
    done = subprocess.run(
        ["bash", "-c", report.replace("qbench", f"{sys.executable} -m qbench", 1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "reports" / "fleet"
    assert "2 machines side by side" in done.stdout
    machines = (out / "machines.csv").read_text()
    assert "ubuntu-24.04," in machines and "ubuntu-24.04-arm," in machines
    assert (out / "ubuntu-24.04-arm" / "index.html").exists()
    upload = next(s for s in merge["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "reports/fleet" and (out / "report.md").exists()
