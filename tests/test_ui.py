"""`liser ui` points at each study's runs in MLflow's model-training view."""

from liser import tracking
from liser.ui import TRAINING_VIEW, study_urls


def test_study_urls_link_each_study_in_the_training_view(tmp_path):
    uri, artifacts = tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'm.db'}")
    a = tracking.setup_experiment(uri, artifacts, "study-a", {"liser.study": "study-a"})
    tracking.setup_experiment(uri, artifacts, "not-a-study", {"team": "x"})  # someone else's experiment in the same store
    b = tracking.setup_experiment(uri, artifacts, "study-b", {"liser.study": "study-b"})
    urls = dict(study_urls(uri, "http://127.0.0.1:5000"))
    assert set(urls) == {"study-a", "study-b"}
    assert urls["study-a"] == f"http://127.0.0.1:5000/#/experiments/{a}/runs?{TRAINING_VIEW}"
    assert urls["study-b"].startswith(f"http://127.0.0.1:5000/#/experiments/{b}/runs")
    assert study_urls(f"sqlite:///{tmp_path / 'empty.db'}", "http://x") == []
