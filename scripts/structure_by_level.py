"""How the structure a result keeps changes from the first pyramid level to the last.

Usage: python scripts/structure_by_level.py [--size 256] [--every K] [--sheet docs/contact_sheet_after.json]

For every pair of the contact sheet, at the style weight that sheet records (so "auto" does
not search again), one default ``nu.stylize`` that records ``structure_kept`` (S,
nstutils.balance) of the image at the end of every pyramid level, against the photo at that
level's size, and ``structure_forecast`` of the first level's image (what "auto" judges a try
by). Printed and written to docs/structure_by_level.json. It answers: which measure, taken
after the first level, predicts the final S best (the spread of final S minus that measure
over all pairs), and so how large a margin "auto" needs. ``--every K`` takes every K-th pair
(for larger sizes, where a run takes longer); sizes other than 256 write
docs/structure_by_level_<size>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import nstutils as nu
from nstutils.balance import structure_forecast, structure_kept
from nstutils.pyramid import resize

ROOT = Path(__file__).resolve().parents[1]


def by_level(content, style, extractor, weight: float) -> tuple[list[float], float, float]:
    """S at the end of each pyramid level (the last one is the result's), the first level's forecast
    and the run's seconds."""
    last: dict[int, object] = {}
    result = nu.stylize(content, style, extractor, style_weight=weight,
                        callback=lambda info: last.__setitem__(info.record.level, info.image))
    s = [structure_kept(resize(content, img.shape[-2:]), img) for _, img in sorted(last.items())]
    s[-1] = structure_kept(content, result.image)
    return s, structure_forecast(content, last[min(last)]), result.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--every", type=int, default=1, help="every K-th pair of the sheet")
    ap.add_argument("--sheet", default=str(ROOT / "docs/contact_sheet_after.json"))
    args = ap.parse_args()
    rows = json.loads(Path(args.sheet).read_text())[::args.every]
    extractor = nu.VGGFeatures(nu.load_vgg19(), layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))
    out = []
    for row in rows:
        load = lambda kind, name: nu.load_image(ROOT / "data" / kind / f"{name}.jpg", max_side=args.size)
        content, style = load("content", row["content"]), load("style", row["style"])
        levels, forecast, seconds = by_level(content, style, extractor, row["style_weight"])
        r = dict(content=row["content"], style=row["style"], style_weight=row["style_weight"],
                 forecast=forecast, levels=levels, sheet_final=row["structure"], seconds=seconds)
        out.append(r)
        print(f"{row['content'][:20]:20s} x {row['style'][:22]:22s} w {row['style_weight']:6.3g} forecast {forecast:.3f} "
              f"levels {' '.join(f'{v:.3f}' for v in levels)} (sheet {row['structure']:.3f}) {seconds:.0f} s",
              flush=True)
    for name, pick in (("the forecast", lambda r: r["forecast"]), ("S after level 1", lambda r: r["levels"][0])):
        d = [r["levels"][-1] - pick(r) for r in out if pick(r) is not None and len(r["levels"]) > 1]
        print(f"final S minus {name}: mean {statistics.mean(d):+.3f}, sd {statistics.stdev(d):.3f}, "
              f"range {min(d):+.3f} to {max(d):+.3f} ({len(d)} pairs)")
    name = "structure_by_level" + ("" if args.size == 256 else f"_{args.size}")
    (ROOT / f"docs/{name}.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
