"""What "auto" gave up per pair: the full run at the next weight up that it tried and rejected.

Usage: python scripts/auto_tradeoff.py [--size 256] [--sheet docs/contact_sheet_after.json]
(at 384 px: --size 384 --sheet docs/contact_sheet_after_384_pairs.json, writes auto_tradeoff_384.json)

For every pair of the "after" contact sheet whose chosen style weight is below the top of the
range, the weight just above it that "auto" tried and rejected (its first level kept too little
structure) runs to the end with the default settings. If that result still keeps S >= the
threshold, "auto" was more careful than it needed to be on that pair, and the table says how
much painting (P) it gave up; if not, the chosen weight was the most the threshold allowed
among those tried. Printed, and written to docs/auto_tradeoff.json (other sizes:
auto_tradeoff_<size>.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nstutils as nu
from nstutils.balance import STRUCTURE_THRESHOLD, structure_kept, style_kept

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--sheet", default=str(ROOT / "docs/contact_sheet_after.json"))
    args = ap.parse_args()
    rows = json.loads(Path(args.sheet).read_text())
    extractor = nu.VGGFeatures(nu.load_vgg19(), layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))
    out, needless = [], 0
    for row in rows:
        above = sorted(w for w, _ in row["probes"] or [] if w > row["style_weight"])
        r = dict(content=row["content"], style=row["style"], style_weight=row["style_weight"],
                 structure=row["structure"], painting=row["painting"], up=None)
        if above:
            load = lambda kind, name: nu.load_image(ROOT / "data" / kind / f"{name}.jpg", max_side=args.size)
            content, style = load("content", row["content"]), load("style", row["style"])
            result = nu.stylize(content, style, extractor, style_weight=above[0])
            r["up"] = dict(style_weight=above[0], structure=structure_kept(content, result.image),
                           painting=style_kept(content, result.image, style, extractor))
            needless += r["up"]["structure"] >= STRUCTURE_THRESHOLD
        out.append(r)
        up = ("  (top of the range)" if r["up"] is None else
              f"  next tried {r['up']['style_weight']:5.3g}: S {r['up']['structure']:.3f} P {r['up']['painting']:.3f}")
        print(f"{row['content'][:20]:20s} x {row['style'][:22]:22s} w {row['style_weight']:5.3g}: "
              f"S {row['structure']:.3f} P {row['painting']:.3f}{up}", flush=True)
    tried = sum(r["up"] is not None for r in out)
    print(f"{needless} of {tried} pairs would still keep S >= {STRUCTURE_THRESHOLD} at the next weight tried")
    tag = "" if args.size == 256 else f"_{args.size}"
    (ROOT / f"docs/auto_tradeoff{tag}.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
