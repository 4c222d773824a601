"""Copy finished run records into a committed results folder and rebuild its report and figures.

    python scripts/publish_records.py RUNS [RUNS ...] [--dest docs/results/paper] [--only fig3,...]

Copies every ``ok`` record of the current record format found under RUNS to
``DEST/records/<same relative path>/result.json`` (the per-sample files only for runs with curves,
which Fig. 7 draws: ``curves.csv``, ``meta_scores.csv``), with ``run_dir`` and ``config.out_dir``
rewritten to the copy, so the folder is self-contained; then writes ``python -m elite_exp.report``
and ``python -m elite_exp.figures`` over ``DEST/records`` into DEST. A record already there is replaced
by the same run's record (same settings hash) unless it finished later (``finished_at``; a record without
one counts as older), so the order of RUNS does not matter; a record of other settings at the same path
(``hydra.sweep.subdir=${hydra.job.num}`` layouts) is not copied, with a line on stderr, and a line says when
the run's two records were made from other data files (``identity.data_fingerprint``); records under DEST
inside a root are not copied again; nothing else is removed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from elite_exp.figures import draw_all
from elite_exp.records import RECORD_FORMAT, RESULT_FILE, atomic_write, read_record, record_format, write_json
from elite_exp.report import chosen, collect, record_files, write_report

CURVE_FILES = ("curves.csv", "meta_scores.csv")


def publish(roots: list[Path], dest: Path) -> int:
    """Copy the records under ``roots`` into ``dest / "records"``; returns how many were copied."""
    copied = 0
    inside = (dest / "records").resolve()
    for root in roots:
        for f in map(Path.resolve, record_files([root])):  # the report's rule: MLflow's copies are not records
            rec = read_record(f.parent)
            if rec is None or rec.get("status") != "ok" or record_format(rec) != RECORD_FORMAT:
                continue
            if f.is_relative_to(inside):  # the destination inside a root: its own copies
                continue
            target = dest / "records" / f.parent.relative_to(root.resolve())
            there = read_record(target)
            if there is not None and there.get("identity", {}).get("config_hash") != \
                    rec.get("identity", {}).get("config_hash"):
                print(f"not copied: {f.parent} (its folder in {dest / 'records'} holds the record of other "
                      f"settings)", file=sys.stderr)
                continue
            later = there is not None and (there.get("finished_at") or "") > (rec.get("finished_at") or "")
            made_from = [r.get("identity", {}).get("data_fingerprint") for r in (there or {}, rec)]
            # e.g. the other CIFAR-10 layout, or a changed CSV (a record made before fingerprints says nothing)
            if there is not None and None not in made_from and made_from[0] != made_from[1]:
                print(f"from other data files: {f.parent} ({made_from[1]}) and the record in {target} "
                      f"({made_from[0]}); kept: {target if later else f.parent}'s", file=sys.stderr)
            if later:
                continue  # the copy there finished later
            rec["run_dir"] = str(target)
            rec["config"]["out_dir"] = str(dest / "records")
            write_json(target / RESULT_FILE, rec)
            if rec["config"].get("curves_every", 0) > 0:
                for name in CURVE_FILES:
                    if (f.parent / name).exists():
                        atomic_write(target / name, lambda fh, src=f.parent / name: fh.write(src.read_bytes()))
            copied += 1
    return copied


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run roots (a sweep's out_dir)")
    parser.add_argument("--dest", type=Path, default=Path("docs/results/paper"))
    parser.add_argument("--only", type=lambda v: v.split(","), default=None, metavar="FIGS",
                        help="figures to write (fig3,...,fig7; default: every figure with runs)")
    args = parser.parse_args(argv)
    try:  # every mistake said before anything is copied
        chosen(args.only)
    except ValueError as err:
        parser.error(str(err))
    for root in args.runs:
        if not root.exists():
            parser.error(f"no such run folder: {root}")
    blocked = [p for p in (args.dest / "records", args.dest, *args.dest.parents) if p.exists() and not p.is_dir()]
    if blocked:
        parser.error(f"--dest {args.dest} cannot hold the records: {blocked[-1]} is a file")
    n = publish(args.runs, args.dest)
    runs = collect([args.dest / "records"])
    written = write_report(runs, args.dest, args.only) + draw_all(runs, args.dest, args.only)
    print(f"{n} records copied; {len(runs)} in {args.dest / 'records'}; wrote {len(written)} files")


if __name__ == "__main__":
    main()
