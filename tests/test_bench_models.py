"""`fracbench models`: every shipped model entry listed and validated, bad entries named."""

from __future__ import annotations

import yaml

from fracbench.cli import main
from fracdata.inference.entry import MODELS_DIR
from fracdata.inference.task import TASKS_DIR


def test_lists_every_shipped_entry_with_its_kind_and_the_tasks(capsys, monkeypatch):
    for var in ("FRACBENCH_BASE_PATH", "FRACBENCH_FT_PATH", "LF_API_BASE_URL", "LF_API_MODEL"):
        monkeypatch.delenv(var, raising=False)
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    files = sorted(MODELS_DIR.glob("*.yaml"))
    assert len(files) >= 6
    assert lines[0].split() == ["name", "kind", "prompt", "points", "at"]
    rows = lines[1:-1]
    assert [r.split()[0] for r in rows] == [yaml.safe_load(p.read_text()).get("name", p.stem) for p in files]
    assert [r.split()[1] for r in rows] == [yaml.safe_load(p.read_text())["kind"] for p in files]
    tasks = ", ".join(sorted(p.stem for p in TASKS_DIR.glob("*.yaml")))
    assert lines[-1] == f"{len(files)} model entries in {MODELS_DIR}; tasks in {TASKS_DIR}: {tasks}"
    assert "fractography-v1" in tasks
    by_name = {r.split()[0]: r for r in rows}
    assert by_name["tiny-base"].split()[1:] == ["local", "training", "models/tiny-qwen3vl"]  # ${VAR:-default} expanded
    assert by_name["gpt-5.5"].split()[1:] == ["openai-compatible", "taxonomy", "gpt-5.5", "@",
                                               "https://api.openai.com/v1", "(key", "$OPENAI_API_KEY)"]


def test_environment_overrides_show_and_adapters_are_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FT", "/ckpt/ft")
    (tmp_path / "mine.yaml").write_text("kind: local\npath: ${FT}\nadapter: /ckpt/lora\n")
    assert main(["models", "--models-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["mine", "local", "default", "/ckpt/ft", "+", "adapter", "/ckpt/lora"]
    assert lines[2].startswith(f"1 model entries in {tmp_path}; tasks in {TASKS_DIR}: ")


def test_invalid_entries_are_named_after_the_valid_ones_exit_2(tmp_path, capsys):
    (tmp_path / "good.yaml").write_text("kind: openai-compatible\nbase_url: http://127.0.0.1:9/v1\nmodel: m\n")
    (tmp_path / "nopath.yaml").write_text("kind: local\n")
    (tmp_path / "typo.yaml").write_text("kind: local\npath: x\nbatchsize: 4\n")
    assert main(["models", "--models-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[1].split() == ["good", "openai-compatible", "default", "m", "@", "http://127.0.0.1:9/v1"]
    assert out.splitlines()[2].startswith(f"1 model entries in {tmp_path} (2 invalid, below); tasks in ")
    assert err == (f"error: {tmp_path}/nopath.yaml: file: Value error, a local model needs `path`\n"
                   f"error: {tmp_path}/typo.yaml: batchsize: Extra inputs are not permitted\n")


def test_a_missing_or_empty_folder_is_an_error(tmp_path, capsys):
    assert main(["models", "--models-dir", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}/nowhere: no such folder of model entries\n"
    assert main(["models", "--models-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: no model entries (*.yaml)\n"
