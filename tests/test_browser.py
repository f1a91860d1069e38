"""The report page in a real browser: it loads, every image decodes, the answers are on its first screen.

Needs a Chromium (Debian: ``apt-get install chromium``); without one the test skips and says how to get one.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from qbench import report
from qbench.analysis.results import load_results, machine_info
from tests.test_analysis import RESULTS
from tests.test_busy import results_with_busy, two_threads_busy

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def dom_of(page: Path, *args: str) -> str:
    """The page's DOM after its scripts ran, as headless Chromium has it."""
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", *args]
    return subprocess.run([*command, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout


#: Appended to a copy of the page: where each answer's top sits, in pixels from the top of the page.
WHERE = (
    "<script>window.addEventListener('load',function(){var out={};"
    "[['trust','#trust'],['layers','table.answers'],['elementwise','table.headline']].forEach(function(p){"
    "var e=document.querySelector(p[1]);out[p[0]]=e?e.getBoundingClientRect().top:-1;});"
    "out.screen=window.innerHeight;document.body.setAttribute('data-where',JSON.stringify(out));});</script>"
)


def quick_and_layer_results(tmp_path: Path) -> Path:
    """The quick run's results and the linear layers' in one commit, as one full quick run leaves them, with a
    CPU-bound program beside the run's 2-thread points."""
    folder = results_with_busy(tmp_path, two_threads_busy)
    layer = Path(__file__).parent / "data" / "layer-run"
    mine = next((folder / "box").glob("40a34056-*.json"))
    merged, extra = json.loads(mine.read_text()), json.loads(next((layer / "box").glob("e7e1bffb-*.json")).read_text())
    merged["results"].update(extra["results"])
    mine.write_text(json.dumps(merged))
    meta = json.loads((folder / "benchmarks.json").read_text())
    meta.update(json.loads((layer / "benchmarks.json").read_text()))
    (folder / "benchmarks.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.skipif(BROWSER is None, reason="no Chromium to render the page (Debian: apt-get install chromium)")
def test_the_first_screen_answers_what_int8_buys_against_onnx_runtime_and_whether_to_trust_it(tmp_path):
    folder = quick_and_layer_results(tmp_path)
    index = report.build_report(
        load_results(folder), machine_info(folder, "box"), tmp_path / "page", progress=lambda s: None
    )
    probe = index.with_name("probe.html")
    probe.write_text(index.read_text().replace("</body>", WHERE + "</body>"))
    dom = dom_of(probe, "--window-size=1280,1000")
    where = json.loads(re.search(r'data-where="([^"]+)"', dom).group(1).replace("&quot;", '"'))
    # A laptop's screen: the busy warning, then the linear layer's answers, both within it.
    assert 0 <= where["trust"] < where["layers"] < where["screen"], where
    first = dom[dom.index('id="trust"') : dom.index('class="dataframe headline"')]
    assert "Busy machine" in first and "int8 dynamic (DynamicQuantizeMatMul)" in first
    assert "(ONNX Runtime)" in first and "x NumPy float32" in first


@pytest.mark.skipif(BROWSER is None, reason="no Chromium to render the page (Debian: apt-get install chromium)")
def test_the_page_loads_with_every_image_and_the_headline_first(tmp_path):
    index = report.build_report(
        load_results(RESULTS), machine_info(RESULTS, "box"), tmp_path / "page", progress=lambda s: None
    )
    figures = len(re.findall(r"<img ", index.read_text()))
    dom = dom_of(index)
    assert f'data-images-loaded="{figures}/{figures}"' in dom and figures >= 6
    assert 'class="broken"' not in dom
    headline = dom.index('id="headline"')
    assert headline < dom.index("<img") and 'class="dataframe headline"' in dom
    assert "quantize float32 -&gt; uint8" in dom[headline:]
