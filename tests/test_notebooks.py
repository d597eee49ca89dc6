"""Tutorials executed as Jupyter notebooks show their figures (needs the [notebooks] extra)."""
import pytest

pytest.importorskip("jupytext")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

from tinygrad_rnn import assignment, cli  # noqa: E402


def test_two_tutorials_as_executed_notebooks_contain_png_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert cli.main(["notebooks", str(tmp_path), "--only", "02_vanilla", "06_gated"]) == 0
    import nbformat
    for name in ("02_vanilla_rnn.ipynb", "06_gated_cells.ipynb"):
        notebook = nbformat.read(tmp_path / name, as_version=4)
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert images, f"{name}: no figure shown in the notebook"
        assert any("saved figures/" in o.get("text", "") for o in outputs)      # and saved, saying where
        assert not [o for o in outputs if o.output_type == "error"]
    assert list((tmp_path / "figures").glob("*.png"))


def test_no_matching_tutorial_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["notebooks", str(tmp_path), "--only", "no_such_tutorial"]) == 1
    assert "notebooks: no tutorials found" in capsys.readouterr().err
    assert assignment.TUTORIALS.is_dir()
