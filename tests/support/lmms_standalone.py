"""Score predictions with an exported lmms-eval task folder the way lmms-eval would, with fracdata
and fracbench made unimportable (an lmms-eval user has neither).

    python tests/support/lmms_standalone.py TASK_DIR PREDICTIONS.jsonl  ->  stdout: {metric: value}

It reads <task>.yaml with a `!function` constructor as lmms-eval's loader does (the function is
looked up in the task folder's utils.py, imported by path), loads the task's Parquet with
`datasets` as lmms-eval does, calls process_results(doc, [answer]) per document and each metric's
aggregation over all of them. PREDICTIONS.jsonl: fracbench's rows ({"id", "raw", ...}); a row whose
call failed has raw "" (what an lmms-eval model returns when generation fails).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path


class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("fracdata", "fracbench", "tests"):
            raise ImportError(f"{name} is not importable here (an lmms-eval user does not have it)")
        return None


def main(task_dir: str, predictions: str) -> None:
    sys.meta_path.insert(0, _Blocked())
    import yaml

    folder = Path(task_dir)
    spec = importlib.util.spec_from_file_location("utils", folder / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)

    class Loader(yaml.SafeLoader):
        pass

    def function(loader, node):
        module, _, name = loader.construct_scalar(node).partition(".")
        assert module == "utils", module
        return getattr(utils, name)

    Loader.add_constructor("!function", function)
    config_path = folder / f"{folder.name}.yaml"  # the task folder is named after its task
    config = yaml.load(config_path.read_text(), Loader=Loader)

    import datasets

    data = datasets.load_dataset(config["dataset_path"], split=config["test_split"], cache_dir=str(folder / ".hf"),
                                 **config["dataset_kwargs"])
    raw = {}
    for line in Path(predictions).read_text().splitlines():
        row = json.loads(line)
        raw[row["id"]] = row.get("raw") or ""
    docs = [data[i] for i in range(len(data))]
    for doc in docs[:2]:  # the request side: an image and the question
        assert config["doc_to_visual"](doc)[0].mode == "RGB" and config["doc_to_text"](doc, {}) == doc["question"]
    results = [config["process_results"](doc, [raw[doc["id"]]]) for doc in docs]
    out = {}
    for m in config["metric_list"]:
        out[m["metric"]] = m["aggregation"]([r[m["metric"]] for r in results])
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
