"""How the structure a result keeps changes from the "auto" probe to each pyramid level.

Usage: python scripts/structure_by_level.py [--size 256] [--sheet docs/contact_sheet_after.json]

For every pair of the contact sheet, at the style weight that sheet records (so no probes are
rerun), one default ``nu.stylize`` that records ``structure_kept`` (S, nstutils.balance) of
the image at the end of every pyramid level, against the photo at that level's size. Printed
and written to docs/structure_by_level.json beside the probe's S at that weight (from the
sheet) and the final S. It answers: which measure, taken early and cheaply, predicts the
final S best (the spread of final S minus that measure over all pairs).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import nstutils as nu
from nstutils.balance import structure_kept
from nstutils.pyramid import resize

ROOT = Path(__file__).resolve().parents[1]


def by_level(content, style, extractor, weight: float) -> tuple[list[float], float]:
    """S at the end of each pyramid level (the last one is the result's) and the run's seconds."""
    last: dict[int, object] = {}
    result = nu.stylize(content, style, extractor, style_weight=weight,
                        callback=lambda info: last.__setitem__(info.record.level, info.image))
    s = [structure_kept(resize(content, img.shape[-2:]), img) for _, img in sorted(last.items())]
    s[-1] = structure_kept(content, result.image)
    return s, result.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--sheet", default=str(ROOT / "docs/contact_sheet_after.json"))
    args = ap.parse_args()
    rows = json.loads(Path(args.sheet).read_text())
    extractor = nu.VGGFeatures(nu.load_vgg19(), layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))
    out = []
    for row in rows:
        load = lambda kind, name: nu.load_image(ROOT / "data" / kind / f"{name}.jpg", max_side=args.size)
        content, style = load("content", row["content"]), load("style", row["style"])
        probes = dict((float(w), s) for w, s in row["probes"] or [])
        levels, seconds = by_level(content, style, extractor, row["style_weight"])
        r = dict(content=row["content"], style=row["style"], style_weight=row["style_weight"],
                 probe=probes.get(float(row["style_weight"])), levels=levels, sheet_final=row["structure"],
                 seconds=seconds)
        out.append(r)
        probe = "  -  " if r["probe"] is None else f"{r['probe']:.3f}"
        print(f"{row['content'][:20]:20s} x {row['style'][:22]:22s} w {row['style_weight']:6.3g} probe {probe} "
              f"levels {' '.join(f'{v:.3f}' for v in levels)} (sheet {row['structure']:.3f}) {seconds:.0f} s",
              flush=True)
    for name, pick in (("probe", lambda r: r["probe"]), ("level 1", lambda r: r["levels"][0])):
        d = [r["levels"][-1] - pick(r) for r in out if pick(r) is not None and len(r["levels"]) > 1]
        print(f"final S minus {name}: mean {statistics.mean(d):+.3f}, sd {statistics.stdev(d):.3f}, "
              f"range {min(d):+.3f} to {max(d):+.3f} ({len(d)} pairs)")
    (ROOT / "docs/structure_by_level.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
