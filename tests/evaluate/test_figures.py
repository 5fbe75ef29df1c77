import subprocess
import sys
import textwrap

from tests.conftest import REPO


def test_figures_leave_the_matplotlib_backend_and_pyplot_alone(tmp_path):
    # a fresh interpreter: the user's backend is set before modeldx is imported, as in a notebook
    script = textwrap.dedent(f"""
        import sys
        import matplotlib
        matplotlib.use("svg")
        import pandas as pd
        import modeldx
        from modeldx.evaluate import summarize
        from modeldx.evaluate.calibration import plot_reliability
        from modeldx.evaluate.figures import plot_metric
        rows = [("uniform", f, s, "top-k-neurons", "a", 0, True, "precision@k", 0.5 + f + s / 10)
                for f in (0.1, 0.2) for s in (0, 1)]
        rows += [("uniform", 0.1, 0, "top-k-confidence", "", -1, None, m, v)
                 for m, v in (("bin3:n", 4.0), ("bin3:confidence", 1.4), ("bin3:hits", 2.0))]
        results = pd.DataFrame(rows, columns=["method", "fraction", "seed", "query", "layer", "label",
                                              "correct", "metric", "value"])
        a = plot_metric(summarize(results), "top-k-neurons", "precision@k", r"{tmp_path}/a.png")
        b = plot_reliability(results, {{"top-k-confidence": "thinning"}}, r"{tmp_path}/b.png")
        assert a.stat().st_size > 1000 and b.stat().st_size > 1000
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert "matplotlib.pyplot" not in sys.modules
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO / "src") + ":" + str(REPO), "PATH": "/usr/bin"})
    assert run.returncode == 0, run.stderr
