"""The report page in a real browser: it loads, every image decodes, the headline is on top.

Needs a Chromium (Debian: ``apt-get install chromium``); without one the test skips and says how to get one.
"""

import re
import shutil
import subprocess

import pytest

from qbench import report
from qbench.analysis.results import load_results, machine_info
from tests.test_analysis import RESULTS

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium to render the page (Debian: apt-get install chromium)")
def test_the_page_loads_with_every_image_and_the_headline_first(tmp_path):
    index = report.build_report(
        load_results(RESULTS), machine_info(RESULTS, "box"), tmp_path / "page", progress=lambda s: None
    )
    figures = len(re.findall(r"<img ", index.read_text()))
    dom = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            index.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert f'data-images-loaded="{figures}/{figures}"' in dom and figures >= 6
    assert 'class="broken"' not in dom
    headline = dom.index('id="headline"')
    assert headline < dom.index("<img") and 'class="dataframe headline"' in dom
    assert "quantize float32 -&gt; uint8" in dom[headline:]
