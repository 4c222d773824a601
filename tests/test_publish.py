"""scripts/publish_records.py: records copied into a results folder, the later finished one kept."""

import importlib.util
import json

from elite_exp.records import write_json
from tests.conftest import REPO


def _script():
    spec = importlib.util.spec_from_file_location("publish_records", REPO / "scripts" / "publish_records.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _publish():
    return _script().publish


def _run(root, auc, finished_at=None, config_hash="abc", data_fingerprint=None):
    run_dir = root / "mnist" / "elite_svdd" / "class0" / "rp0.1_nl20_eta1.0_seed0_abc"
    rec = {"method": "elite_svdd", "data": "mnist", "normal_class": 0, "status": "ok", "test_auc": auc,
           "run_dir": str(run_dir), "config": {"out_dir": str(root)},
           "identity": {"format": 2, "config_hash": config_hash, "data_fingerprint": data_fingerprint}}
    if finished_at:
        rec["finished_at"] = finished_at
    write_json(run_dir / "result.json", rec)


def test_the_later_finished_record_of_a_run_is_kept_whatever_the_order_of_the_roots(tmp_path):
    publish = _publish()
    _run(tmp_path / "old", 0.7, "2026-11-01T00:00:00+00:00")
    _run(tmp_path / "new", 0.9, "2026-12-01T00:00:00+00:00")
    _run(tmp_path / "untimed", 0.5)
    for order in (["old", "new", "untimed"], ["untimed", "new", "old"]):
        dest = tmp_path / f"dest_{order[0]}"
        assert publish([tmp_path / r for r in order], dest) >= 1
        [copy] = dest.rglob("result.json")
        rec = json.loads(copy.read_text())
        assert rec["test_auc"] == 0.9 and rec["run_dir"] == str(copy.parent)
        assert rec["config"]["out_dir"] == str(dest / "records")


def test_a_record_of_other_settings_at_the_same_path_is_not_copied_and_dest_inside_a_root_is_skipped(tmp_path,
                                                                                                    capsys):
    publish = _publish()
    _run(tmp_path / "a", 0.7, "2026-11-01T00:00:00+00:00")
    _run(tmp_path / "b", 0.9, "2026-12-01T00:00:00+00:00", config_hash="other")  # e.g. other train.epochs
    dest = tmp_path / "a" / "pub"
    assert publish([tmp_path / "a", tmp_path / "b"], dest) == 1
    assert "holds the record of other settings" in capsys.readouterr().err
    [copy] = dest.rglob("result.json")
    assert json.loads(copy.read_text())["test_auc"] == 0.7
    assert publish([tmp_path / "a"], dest) == 1  # again: its own copies under a/pub are not copied into a/pub
    assert len(list(dest.rglob("result.json"))) == 1



def test_records_of_one_run_from_other_data_files_are_said(tmp_path, capsys):
    """The same settings on the other CIFAR-10 layout: the later finished record is kept, and a line says which."""
    publish = _publish()
    _run(tmp_path / "jpeg", 0.7, "2026-11-01T00:00:00+00:00", data_fingerprint="cifar10:image-folder")
    _run(tmp_path / "orig", 0.9, "2026-12-01T00:00:00+00:00", data_fingerprint="cifar10:torchvision")
    for order in (["jpeg", "orig"], ["orig", "jpeg"]):
        dest = tmp_path / f"dest_{order[0]}"
        publish([tmp_path / r for r in order], dest)
        [copy] = dest.rglob("result.json")
        assert json.loads(copy.read_text())["test_auc"] == 0.9
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("from other data files: ") and "(cifar10:image-folder)" in line
        kept = tmp_path / "orig" / copy.parent.relative_to(dest / "records")
        assert line.endswith(f"; kept: {copy.parent if order[0] == 'orig' else kept}'s"), line

def test_a_root_reached_through_a_link_is_published(tmp_path):
    """The report names records through links (runs.csv); publishing from a linked root copies them all the same,
    and a destination inside it, reached through the link, is not copied into itself."""
    publish = _publish()
    _run(tmp_path / "runs", 0.8, "2026-11-01T00:00:00+00:00")
    (tmp_path / "linked").symlink_to(tmp_path / "runs", target_is_directory=True)
    dest = tmp_path / "linked" / "pub"
    assert publish([tmp_path / "linked"], dest) == 1
    [copy] = (tmp_path / "runs" / "pub").rglob("result.json")
    assert copy.parent.relative_to(tmp_path / "runs" / "pub" / "records").as_posix() == \
        "mnist/elite_svdd/class0/rp0.1_nl20_eta1.0_seed0_abc"
    assert publish([tmp_path / "linked"], dest) == 1 and len(list(dest.rglob("result.json"))) == 1


def test_mistakes_are_one_error_before_anything_is_copied(tmp_path, capsys):
    import pytest

    module = _script()
    _run(tmp_path / "a", 0.7)
    (tmp_path / "file").write_text("")
    for argv, said in [([str(tmp_path / "none")], f"no such run folder: {tmp_path / 'none'}"),
                       ([str(tmp_path / "a"), "--only", "fig9"], "unknown figure 'fig9'"),
                       ([str(tmp_path / "a"), "--dest", str(tmp_path / "file" / "pub")],
                        f"cannot hold the records: {tmp_path / 'file'} is a file")]:
        dest = [] if "--dest" in argv else ["--dest", str(tmp_path / "pub")]
        with pytest.raises(SystemExit) as exc:
            module.main([*argv, *dest])
        assert exc.value.code == 2 and said in capsys.readouterr().err
        assert not (tmp_path / "pub").exists()
