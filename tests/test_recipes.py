"""Recipes: every shipped one resolves and passes LlamaFactory's parser; the paper recipe is exact."""

from __future__ import annotations

import re

import pytest
import yaml

from fracdata.train import recipes
from fracdata.cli import main
from fracdata.errors import FracdataError

PAPER = recipes.RECIPES_ROOT / "qwen3vl_32b_lora_sft_ds3.yaml"
SECTIONS = ["model", "method", "dataset", "output", "train", "eval"]


def test_every_recipe_found_recursively_resolves_and_parses():
    found = recipes.find_recipes()
    names = [str(p.relative_to(recipes.RECIPES_ROOT)) for p in found]
    assert names == [
        "ablations/lr_1e-4.yaml", "ablations/mined_only.yaml", "ablations/no_rare.yaml",
        "ablations/no_rotation.yaml", "ablations/vision_lora.yaml", "demo/tiny_qwen3vl_full_sft.yaml",
        "inference/qwen3vl_32b_lora_infer.yaml", "inference/tiny_qwen3vl_lora_infer.yaml",
        "merge/qwen3vl_32b_lora_merge.yaml", "merge/tiny_qwen3vl_lora_merge.yaml",
        "qwen3vl_32b_lora_sft_ds3.yaml",
        "smoke/tiny_qwen3vl_lora_sft.yaml", "smoke/tiny_qwen3vl_lora_sft_ds3.yaml",
    ]
    kinds = {}
    for path in found:
        _, config = recipes.resolve(path)
        typed = recipes.validate(config, str(path))  # raises on any problem
        assert recipes.EXTENDS not in typed
        if not str(path.relative_to(recipes.RECIPES_ROOT)).startswith("demo/"):
            kinds[recipes.kind(typed)] = kinds.get(recipes.kind(typed), 0) + 1
        first = path.read_text().splitlines()[0]
        # the Run line names this very file
        assert first.startswith("# Run: ") and str(path.relative_to(recipes.RECIPES_ROOT.parent)) in first, path
    assert len(found) == 13
    assert kinds == {"train": 8, "export": 2, "infer": 2}  # the demo recipe is counted apart


def test_base_recipes_use_llamafactory_sections_in_order():
    for path in recipes.find_recipes():
        heads = re.findall(r"^### (\w+)", path.read_text(), re.M)
        if recipes.kind(recipes.load(path)) == "train" and "extends" not in path.read_text():
            assert heads == SECTIONS, path


def test_paper_recipe_hyperparameters():
    _, config = recipes.resolve(PAPER)
    c = recipes.validate(config, str(PAPER))
    # Issue 12 changed two of these on purpose: `val_size: 0.1` (a random 10% of rows, rotated copies of
    # training images included) became `eval_dataset: val` (the builder's grouped, unrotated split), and
    # `dataset_dir: data/processed/synthetic` is gone (a 32B run on the demo sample by default).
    assert {k: c[k] for k in (
        "model_name_or_path", "template", "stage", "finetuning_type", "lora_rank", "lora_alpha", "lora_target",
        "freeze_vision_tower", "learning_rate", "lr_scheduler_type", "warmup_steps", "num_train_epochs",
        "eval_dataset", "eval_strategy", "save_strategy", "eval_steps", "save_steps", "early_stopping_steps",
        "metric_for_best_model", "load_best_model_at_end", "bf16", "save_only_model", "dataset",
        "image_max_pixels", "cutoff_len")} == {
        "model_name_or_path": "Qwen/Qwen3-VL-32B-Instruct", "template": "qwen3_vl_nothink", "stage": "sft",
        "finetuning_type": "lora", "lora_rank": 16, "lora_alpha": 32, "lora_target": "all",
        "freeze_vision_tower": True, "learning_rate": 1.0e-5, "lr_scheduler_type": "cosine", "warmup_steps": 0.1,
        "num_train_epochs": 3.0, "eval_dataset": "val", "eval_strategy": "steps", "save_strategy": "steps",
        "eval_steps": 0.05, "save_steps": 0.05, "early_stopping_steps": 2, "metric_for_best_model": "eval_loss",
        "load_best_model_at_end": True, "bf16": True, "save_only_model": False, "dataset": "full",
        "image_max_pixels": 768 * 768, "cutoff_len": 1024}
    assert "val_size" not in c and "dataset_dir" not in c
    assert c["deepspeed"] == str(recipes.RECIPES_ROOT / "deepspeed" / "ds_z3_config.json")
    # effective batch 4 on one GPU: per device x accumulation
    assert c["per_device_train_batch_size"] * c["gradient_accumulation_steps"] == 4
    # the cutoff arithmetic: 768^2 px / (32 px)^2 = 576 image tokens + 2 markers leave >= 400 for text
    assert c["cutoff_len"] - (c["image_max_pixels"] // 32 ** 2 + 2) >= 400
    text = PAPER.read_text()
    assert "1 per device x 4 accumulation steps x 1 GPU" in text and "589,824 / 1,024 = 576" in text


def _train_recipes():
    return [p for p in recipes.find_recipes() if recipes.kind(recipes.load(p)) == "train"]


def test_hub_model_recipes_validate_on_the_builders_split_and_name_no_dataset():
    hub = []
    for path in _train_recipes():
        _, config = recipes.resolve(path)
        if not config["model_name_or_path"].startswith("models/"):
            hub.append(str(path.relative_to(recipes.RECIPES_ROOT)))
            assert config["eval_dataset"] == "val" and "val_size" not in config, path
            assert "dataset_dir" not in config, path
    assert hub == ["ablations/lr_1e-4.yaml", "ablations/mined_only.yaml", "ablations/no_rare.yaml",
                   "ablations/no_rotation.yaml", "ablations/vision_lora.yaml", "qwen3vl_32b_lora_sft_ds3.yaml"]
    # the smoke and demo recipes keep their synthetic default; smoke validates on `val` like the paper recipe
    for name in ("smoke/tiny_qwen3vl_lora_sft.yaml", "smoke/tiny_qwen3vl_lora_sft_ds3.yaml", "demo/tiny_qwen3vl_full_sft.yaml"):
        _, config = recipes.resolve(name)
        assert config["dataset_dir"] == "data/processed/synthetic" and config["eval_dataset"] == "val", name


def test_every_training_recipe_cutoff_is_a_multiple_of_8():
    found = _train_recipes()
    assert len(found) == 9  # 8 train + the demo
    for path in found:
        assert recipes.load(path)["cutoff_len"] % 8 == 0, path


def test_packing_needs_cutoff_multiple_of_8_and_val_size_excludes_eval_dataset():
    _, config = recipes.resolve(PAPER, ["neat_packing=true", "cutoff_len=1001", "val_size=0.1"])
    with pytest.raises(FracdataError) as e:
        recipes.validate(config, "paper")
    assert str(e.value).split("\nerror: ") == [
        "paper: val_size: cannot be combined with eval_dataset (LlamaFactory refuses both); keep eval_dataset: val, "
        "the builder's grouped split",
        "paper: cutoff_len: 1001 is not a multiple of 8, which LlamaFactory's packing path needs (use 1008)",
    ]


@pytest.mark.parametrize("name, diff", [
    ("no_rare", {"dataset": "no_rare"}),
    ("no_rotation", {"dataset": "no_rotation"}),
    ("mined_only", {"dataset": "mined_only"}),
    ("vision_lora", {"freeze_vision_tower": False}),
    ("lr_1e-4", {"learning_rate": 1.0e-4}),
])
def test_ablation_changes_only_its_keys(name, diff):
    base = recipes.load(PAPER)
    overlay = recipes.load(recipes.RECIPES_ROOT / "ablations" / f"{name}.yaml")
    changed = {k: v for k, v in overlay.items() if base.get(k) != v}
    assert changed == {**diff, "output_dir": f"runs/ablation_{name}"}
    assert list(overlay) == list(base)  # nothing added, order kept


def test_typo_key_is_one_line_naming_it(capsys):
    rc = main(["recipes", "render", "qwen3vl_32b_lora_sft_ds3.yaml", "--set", "learning_rat=1.0e-4"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err == (f"error: {PAPER}: learning_rat: unknown LlamaFactory train key (did you mean learning_rate?)\n")


def test_all_errors_reported_together():
    _, config = recipes.resolve(PAPER, ["lora_rnk=8", "lora_rank=eight", "eval_strategy=sometimes",
                                        "template=qwen3vl", "load_best_model_at_end=false"])
    with pytest.raises(FracdataError) as e:
        recipes.validate(config, "paper")
    assert str(e.value).split("\nerror: ") == [
        "paper: lora_rank: 'eight' is not int",
        "paper: eval_strategy: 'sometimes' is not one of no, steps, epoch",
        "paper: lora_rnk: unknown LlamaFactory train key (did you mean lora_rank?)",
        "paper: template: 'qwen3vl' is not a LlamaFactory template (did you mean qwen3_vl?)",
        "paper: early_stopping_steps: needs load_best_model_at_end: true",
    ]


def test_cross_field_rule_from_transformers_is_reported():
    _, config = recipes.resolve(PAPER, ["save_steps=0.07"])
    with pytest.raises(FracdataError, match=r"^paper: --load_best_model_at_end requires the saving steps to be a "
                                            r"multiple of the evaluation steps, but found 0.07, which is not a multiple of 0.05.$"):
        recipes.validate(config, "paper")


def test_set_values_are_typed_by_the_parser():
    # YAML 1.1 reads 2e-4 as a string; the parser's field type makes it a float
    _, config = recipes.resolve(PAPER, ["learning_rate=2e-4", "lora_rank=8", "bf16=false"])
    typed = recipes.validate(config, "paper")
    assert (typed["learning_rate"], typed["lora_rank"], typed["bf16"]) == (2e-4, 8, False)


def test_render_prints_resolved_yaml_without_extends(capsys):
    assert main(["recipes", "render", "ablations/no_rare.yaml", "--set", "seed=7"]) == 0
    out = capsys.readouterr().out
    assert "extends" not in yaml.safe_load(out)
    expected = recipes.load(PAPER)
    expected.update(dataset="no_rare", output_dir="runs/ablation_no_rare", seed=7,
                    deepspeed=str(recipes.RECIPES_ROOT / "deepspeed" / "ds_z3_config.json"))
    assert yaml.safe_load(out) == expected
    assert re.findall(r"^### (\w+)", out, re.M) == SECTIONS
    assert out.splitlines()[0] == (f"# Resolved from {recipes.RECIPES_ROOT / 'ablations' / 'no_rare.yaml'} "
                                   "by `fracdata recipes render` with --set seed=7")


def test_extends_loop_and_missing_base(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nseed: 1\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nseed: 2\n")
    with pytest.raises(FracdataError, match="`extends` loops"):
        recipes.load(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(FracdataError, match=r"c.yaml: extends nowhere.yaml, which does not exist"):
        recipes.load(tmp_path / "c.yaml")


def test_deepspeed_file_is_checked(tmp_path):
    bad = tmp_path / "ds.json"
    bad.write_text('{"zero_optimization": {}}')
    for value, msg in ((tmp_path / "none.json", f"deepspeed: {tmp_path / 'none.json'} does not exist"),
                       (bad, f"deepspeed: {bad} is not a DeepSpeed JSON with zero_optimization.stage (KeyError)")):
        _, config = recipes.resolve(PAPER, [f"deepspeed={value}"])
        with pytest.raises(FracdataError) as e:
            recipes.validate(config, "paper")
        assert str(e.value) == f"paper: {msg}"


def test_check_command_counts(capsys):
    assert main(["recipes", "check"]) == 0
    out = capsys.readouterr().out
    n = len(recipes.find_recipes())
    assert out.splitlines()[-1] == f"checked {n} recipes: {n} ok, 0 with errors"
