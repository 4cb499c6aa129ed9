"""apps.paper's report: a failed experiment is named with its error, not left as an empty cell."""

from apps.paper import write_report


def test_report_names_failed_experiments(tmp_path):
    results = {"error_model": {}, "sweeps": {}, "vgg8": {"software": 0.99, "emulated": 0.98, "n": 100, "emulated_s": 3.0},
               "mnist_mlp": {"error": "RuntimeError: the perceptron run failed (status 1)"},
               "face": {"error": "OSError: no face crops"}}
    text = write_report(tmp_path, results).read_text()
    assert "**perceptron did not run:** RuntimeError: the perceptron run failed (status 1)" in text
    assert "**face detection did not run:** OSError: no face crops" in text
    assert "VGG-8 did not run" not in text and "98.00 %" in text
