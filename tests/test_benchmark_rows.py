"""benchmarks/runner.py and benchmarks/migrate_rows.py: recorded rows name paths relative to the
repository, the migration rewrites old rows without losing one appended meanwhile."""

import glob
import json
import os
import sys

import pytest

from benchmarks import migrate_rows, runner

PARENT = os.path.dirname(runner.REPO)
HOME = os.path.expanduser("~")


def test_paths_inside_and_beside_the_repository_are_written_relative_to_it(monkeypatch):
    monkeypatch.setattr(runner, "CODE_DIR", os.path.join(PARENT, "snapshot"))
    relative = runner.relative_text
    assert relative(f"--model_dir={runner.REPO}/runs/repro/x") == "--model_dir=runs/repro/x"
    assert relative(f"--dataset=npz:{PARENT}/runs/overfit/data/a.npz") == "--dataset=npz:../runs/overfit/data/a.npz"
    assert relative(f"--source=folder:{PARENT}/cache/cifar10") == "--source=folder:../cache/cifar10"
    assert relative(f"--saved_model={PARENT}/snapshot/runs/e") == "--saved_model=runs/e"   # the code's directory
    assert relative(f"{runner.REPO} {PARENT}") == ". .."
    # Only whole path components: a sibling whose name starts like the repository's is not inside it.
    assert relative(f"{runner.REPO}-old/x") == f"../{os.path.basename(runner.REPO)}-old/x"
    for unchanged in ("runs/repro/x", "../runs/overfit/x", "npz:../shared/data/mnist.npz", "python train_main.py",
                      "~/.cache/rat_tf/cifar10-jpeg", f"x{PARENT}/y"):
        assert relative(unchanged) == unchanged
    if not (HOME + os.sep).startswith(PARENT + os.sep) and HOME != os.sep:
        assert relative(f"folder:{HOME}/.cache/rat_tf/cifar10-jpeg") == "folder:~/.cache/rat_tf/cifar10-jpeg"
    row = {"a": [f"{PARENT}/runs/x", 1, None], "b": {"c": f"{runner.REPO}/docs"}}
    assert runner.relative_row(row) == {"a": ["../runs/x", 1, None], "b": {"c": "docs"}}
    assert runner.command_text([sys.executable, "-m", "benchmarks.overfit_train", f"--model_dir={PARENT}/runs/a b"]) \
        == "python -m benchmarks.overfit_train '--model_dir=../runs/a b'"


def test_no_script_in_benchmarks_edits_the_import_path_or_names_this_machine():
    for path in glob.glob(os.path.join(runner.REPO, "benchmarks", "*.py")):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        name = os.path.relpath(path, runner.REPO)
        assert "sys.path" not in text, f"{name} edits sys.path (run it as python -m benchmarks.NAME)"
        assert PARENT + os.sep not in text and runner.REPO not in text, f"{name} names a path of this machine"


def _old_row(name):
    return {"name": name, "train_id": "3c693bb1",
            "commands": {"train": f"python benchmarks/overfit_train.py --dataset=npz:{PARENT}/runs/overfit/data/a.npz "
                                  f"--model_dir={PARENT}/runs/overfit/3c693bb1/{name}"},
            "config": {"run": {"model_dir": f"{PARENT}/runs/overfit/3c693bb1/{name}"}}, "best": {"pgd": 17.2}}


def test_the_migration_rewrites_old_rows_keeps_one_appended_meanwhile_and_is_idempotent(tmp_path, monkeypatch):
    path = tmp_path / "overfit.jsonl"
    path.write_text("".join(json.dumps(_old_row(n), sort_keys=True) + "\n" for n in ("a", "b")))
    write = migrate_rows.atomic_write_text

    def append_then_write(target, text):   # a runner appends its row after the migration read the file
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps(_old_row("c"), sort_keys=True) + "\n")
        return write(target, text)
    monkeypatch.setattr(migrate_rows, "atomic_write_text", append_then_write)
    assert migrate_rows.migrate(str(path)) == 2
    monkeypatch.setattr(migrate_rows, "atomic_write_text", write)
    rows = runner.read_rows(str(path))
    assert [r["name"] for r in rows] == ["a", "b", "c"]
    for r in rows:
        assert r["commands"]["train"] == ("python -m benchmarks.overfit_train --dataset=npz:../runs/overfit/data/"
                                          f"a.npz --model_dir=../runs/overfit/3c693bb1/{r['name']}")
        assert r["config"]["run"]["model_dir"] == f"../runs/overfit/3c693bb1/{r['name']}"
        assert r["train_id"] == "3c693bb1" and r["best"] == {"pgd": 17.2}
    again = path.read_bytes()
    assert migrate_rows.migrate(str(path)) == 0 and path.read_bytes() == again


def test_the_migration_keeps_a_json_file_byte_for_byte_but_the_rewritten_text(tmp_path):
    path = tmp_path / "step_cost.json"
    payload = {"command": "python benchmarks/step_cost.py --json_out x.json", "over_sat": {"cifar": {"sat": 1.0}}}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True))           # no newline at the end
    assert migrate_rows.migrate(str(path), dry_run=True) == 1 and json.loads(path.read_text()) == payload
    assert migrate_rows.migrate(str(path)) == 1
    expected = json.dumps({**payload, "command": "python -m benchmarks.step_cost --json_out x.json"}, indent=1,
                          sort_keys=True)
    assert path.read_text() == expected


@pytest.mark.parametrize("text", ["python benchmarks/make_results.py", "`python benchmarks/reproduce.py --list`"])
def test_recorded_script_commands_become_module_commands(text):
    assert "python -m benchmarks." in migrate_rows.rewrite_line(text)
    assert migrate_rows.rewrite_line(migrate_rows.rewrite_line(text)) == migrate_rows.rewrite_line(text)
