"""Resume never trusts a record made by other settings, other data files or an older record format."""

import json

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from elite_exp.records import read_record, write_json
from elite_exp.runner import execute
from tests.test_runner import composed, run_cli
from tests.test_sweep import cli

TINY = ["data=digits", "train.epochs=1", "device=cpu"]


def test_same_run_dir_with_other_settings_is_a_conflict_not_a_skip(tmp_path):
    run_dir = tmp_path / "fixed"
    first = run_cli(*TINY, "r_p=0.1", f"hydra.run.dir={run_dir}", out_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    second = run_cli(*TINY, "r_p=0.3", f"hydra.run.dir={run_dir}", out_dir=tmp_path)
    assert second.returncode == 2
    err = second.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "r_p: 0.1 -> 0.3" in err[0], second.stderr
    assert "skipping" not in second.stdout + second.stderr
    assert read_record(run_dir)["r_p"] == 0.1  # kept, not overwritten
    forced = run_cli(*TINY, "r_p=0.3", "force=true", f"hydra.run.dir={run_dir}", out_dir=tmp_path)
    assert forced.returncode == 0 and read_record(run_dir)["r_p"] == 0.3



@pytest.mark.parametrize("setting, said", [("elite.pretrain=true", "elite.pretrain: None -> True"),
                                           ("elite.warmup_epochs=1", "elite.warmup_epochs: None -> 1")])
def test_a_setting_unset_in_one_record_and_set_in_the_other_is_a_conflict(tmp_path, setting, said):
    """A key one run leaves at its off value (or None) and the other sets is a difference: the record is kept."""
    run_dir = tmp_path / "fixed"
    assert run_cli(*TINY, f"hydra.run.dir={run_dir}", out_dir=tmp_path).returncode == 0
    before = (run_dir / "result.json").read_bytes()
    second = run_cli(*TINY, setting, f"hydra.run.dir={run_dir}", out_dir=tmp_path)
    assert second.returncode == 2 and said in second.stderr, second.stderr
    assert (run_dir / "result.json").read_bytes() == before

def test_sweep_into_numbered_folders_runs_what_another_sweep_left(tmp_path):
    sweep = [f"hydra.sweep.dir={tmp_path / 's'}", "hydra.sweep.subdir=${hydra.job.num}"]
    assert cli(["-m", *TINY, "r_p=0.1,0.2", *sweep], tmp_path).returncode == 0
    again = cli(["-m", *TINY, "r_p=0.2,0.3", *sweep], tmp_path)
    assert again.returncode == 1 and again.stderr.splitlines()[-1].startswith(
        f"error: 2 of 2 run(s) failed or were not run: {tmp_path / 's' / '0'}: RecordConflict: "), again.stderr
    assert "holds the record of other settings (r_p: 0.1 -> 0.2" in again.stdout + again.stderr
    assert [read_record(tmp_path / "s" / str(i))["r_p"] for i in (0, 1)] == [0.1, 0.2]  # nothing overwritten


def test_changed_csv_under_the_same_path_is_rerun(tmp_path):
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.iloc[:, :5].assign(diagnosis=bunch.target_names[bunch.target.to_numpy()])
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    args = ["data=csv", f"data.path={path}", "data.label_column=diagnosis", "normal_class=benign", "n_train=100",
            "n_labels=10", "train.epochs=1", "train.batch_size=32", "device=cpu"]
    assert run_cli(*args, out_dir=tmp_path).returncode == 0
    skipped = run_cli(*args, out_dir=tmp_path)
    assert "skipping" in skipped.stdout + skipped.stderr
    [record] = list(tmp_path.rglob("result.json"))
    before = json.loads(record.read_text())
    pd.concat([frame, frame.iloc[:30]]).to_csv(path, index=False)  # the same path, other rows
    proc = run_cli(*args, out_dir=tmp_path)
    assert proc.returncode == 0 and "skipping" not in proc.stdout + proc.stderr
    assert "its record was made by other data files" in proc.stdout + proc.stderr
    after = json.loads(record.read_text())
    assert after["identity"]["data_fingerprint"] != before["identity"]["data_fingerprint"]


def test_cifar10_from_its_other_layout_is_another_data_set_in_the_same_folder(tmp_path, caplog):
    # an image-folder copy (here a JPEG re-encoding) and torchvision's original differ in their pixels
    from elite_exp.runner import run_identity, run_path

    jpeg, original = tmp_path / "jpeg", tmp_path / "original"
    for split in ("train", "test"):
        (jpeg / "CIFAR10" / split).mkdir(parents=True)
    (original / "cifar-10-batches-py").mkdir(parents=True)
    a, b = (composed(tmp_path, "data=cifar10", f"data.root={root}") for root in (jpeg, original))
    assert run_path(a) == run_path(b)  # where the data is found names no other folder...
    assert run_identity(a)["data_fingerprint"] == "cifar10:image-folder"
    # ...but the record of one is not done for the other
    assert run_identity(b)["data_fingerprint"] == "cifar10:torchvision"
    assert run_identity(composed(tmp_path, "data=mnist"))["data_fingerprint"] is None
    # a record of a version that did not say which layout it read is run again, saying why
    from elite_exp.runner import _previous_record, base_record

    run_dir = tmp_path / "run"
    record = {**base_record(a, run_dir), "status": "ok"}
    record["identity"]["data_fingerprint"] = None
    write_json(run_dir / "result.json", record)
    with caplog.at_level("WARNING", logger="elite_exp"):
        assert _previous_record(a, run_dir, run_identity(a), multirun=True) is None
    assert "a version that did not record which CIFAR-10 layout it read" in caplog.text
    record["identity"] = run_identity(a)
    write_json(run_dir / "result.json", record)
    assert _previous_record(a, run_dir, run_identity(a), multirun=True) == "finished"
    assert _previous_record(b, run_dir, run_identity(b), multirun=True) is None  # the other layout: not done


@pytest.mark.parametrize("edit", ["no identity", "old format"])
def test_records_of_an_older_format_are_not_done(tmp_path, caplog, edit):
    cfg = composed(tmp_path, *TINY)
    run_dir = tmp_path / "run"
    rec = execute(cfg, run_dir, multirun=True)
    assert execute(cfg, run_dir, multirun=True) is None  # finished: skipped
    if edit == "no identity":
        del rec["identity"]
    else:
        rec["identity"]["format"] = 1
    write_json(run_dir / "result.json", rec)
    again = execute(cfg, run_dir, multirun=True)
    assert again is not None and again["status"] == "ok"
    assert "an older version of elite-exp (record format 1, now 2)" in caplog.text


def test_a_class_named_by_index_or_by_name_is_one_run(tmp_path):
    from elite_exp.runner import run_path

    tiny = ["data=breast_cancer", "train.epochs=1", "device=cpu"]
    by_name, by_index = composed(tmp_path, *tiny, "normal_class=benign"), composed(tmp_path, *tiny, "normal_class=0")
    assert run_path(by_name) != run_path(by_index)  # the folders of runs made before never move
    record = execute(by_name, tmp_path / run_path(by_name), multirun=False)
    assert record["status"] == "ok" and record["normal_class_name"] == "benign"
    # the same run spelled by index is found done in the other folder; the folder Hydra made for it goes
    index_dir = tmp_path / run_path(by_index)
    (index_dir / ".hydra").mkdir(parents=True)
    assert execute(by_index, index_dir, multirun=True) is None
    assert not (tmp_path / "breast_cancer/elite_svdd/class0").exists()
    # a run folder of the user's own (hydra.run.dir), with their files in it, is run in, never emptied
    own = tmp_path / "mine"
    (own / ".hydra").mkdir(parents=True)
    (own / "notes.txt").write_text("mine")
    assert execute(by_index, own, multirun=True)["status"] == "ok" and (own / "notes.txt").exists()
    # force=true runs it again in its own folder
    forced = composed(tmp_path, *tiny, "normal_class=0", "force=true")
    assert execute(forced, index_dir, multirun=True)["status"] == "ok"


def test_class_names_that_are_numbers_are_never_taken_for_an_index(tmp_path):
    from elite_exp.runner import run_path

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "label"})
    frame["label"] += 1  # classes 1 and 2: index 1 is the class 2, and normal_class=1 the class 1
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    tiny = ["data=csv", f"data.path={path}", "n_train=100", "n_labels=10", "train.epochs=1", "device=cpu"]
    one, two = composed(tmp_path, *tiny, "normal_class=1"), composed(tmp_path, *tiny, "normal_class=2")
    assert execute(one, tmp_path / run_path(one), multirun=True)["normal_class_name"] == "1"
    record = execute(two, tmp_path / run_path(two), multirun=True)  # not skipped as "class 1" done
    assert record["status"] == "ok" and record["normal_class_name"] == "2"
