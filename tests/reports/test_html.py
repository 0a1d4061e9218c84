"""Page parts: where run links point, plotly.js carried once, nothing to fetch."""

from plotly.offline import get_plotlyjs
import plotly.graph_objects as go

from liser.reports import html


def test_ui_url():
    assert html.ui_url_for("sqlite:////x/mlflow.db") == "http://127.0.0.1:5000"
    assert html.ui_url_for("/some/folder") == "http://127.0.0.1:5000"
    assert html.ui_url_for("http://mlflow:5000/") == "http://mlflow:5000"
    assert html.ui_url_for("https://mlflow.lab", "http://localhost:8080/") == "http://localhost:8080"
    assert html.run_url("http://h:1", "3", "abc") == "http://h:1/#/experiments/3/runs/abc"


def test_figure_html_has_no_plotlyjs_and_no_script_src():
    part = html.figure_html(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    assert part.count('class="plotly-graph-div"') == 1
    assert "<script src" not in part and "http" not in part and len(part) < 20_000


def test_page_inlines_plotlyjs_once_in_head():
    page = html.page("t <1>", [("A & B", html.figure_html(go.Figure())), ("C", "<p>x</p>")])
    js = get_plotlyjs()
    assert page.count(js) == 1
    assert page.index(js) < page.index("</head>") < page.index('class="plotly-graph-div"')
    assert "<title>t &lt;1&gt;</title>" in page and "<h2>A &amp; B</h2>" in page
    assert "<script src" not in page and "<link" not in page
