"""Contact sheet: every content photo of data/ with every painting, with what each result keeps.

Usage: python scripts/contact_sheet.py before|after [--size 256] [--reuse] [--start-level] [--pair CONTENT STYLE ...]

``before`` runs ``nu.stylize`` with the fixed style weight 30 (the default before "auto");
``after`` with ``style_weight="auto"``. Every other setting is the default. Writes
docs/contact_sheet_<which>.jpg (rows: photos, columns: paintings; under each result its
structure kept "S", painting kept "P", see nstutils.balance, and the style weight "w") and
docs/contact_sheet_<which>.json (the numbers), and keeps each result as a PNG with its
settings in out/contact_sheet/<which>/; a --size other than 256 adds "_<size>" to these
names. ``--reuse`` skips pairs whose PNG is already there. ``--start-level`` runs "after" with
``start_level=True`` (each try of "auto" runs the start level and the level after it) and adds
"_start_level" to the names.
Takes about 10 minutes per sheet at 256 px on a quiet 2-core CPU ("after": about 1.6x that; 28
minutes on a 2-core AVX2-only AMD EPYC in fp32, 22 with --start-level).
On a busy machine, ``OMP_NUM_THREADS=1`` was 3x faster per pair (threads waiting for each other).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

import nstutils as nu
from nstutils.balance import structure_kept, style_kept
from nstutils.provenance import read_result, save_result

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = {"before": 30.0, "after": "auto"}
TILE = 168  # longer side of a tile in the sheet, pixels
LABEL = 30  # height of the text under each tile


def run_pair(content, style, extractor, weight, path: Path, reuse: bool, **kwargs) -> dict:
    """Stylize one pair (or read it back), measure it and return a row of the sheet's table."""
    if reuse and path.exists():
        saved = read_result(path)
        image, params, seconds = saved.image, saved.params, saved.params.get("seconds", float("nan"))
    else:
        result = nu.stylize(content, style, extractor, style_weight=weight, **kwargs)
        image, params, seconds = result.image, {**result.params, "seconds": result.seconds}, result.seconds
        path.parent.mkdir(parents=True, exist_ok=True)
        save_result(nu.StylizeResult(image, [], [], params, seconds), path)
    return {"style_weight": float(params["style_weight"]), "auto": bool(params.get("style_weight_auto", False)),
            "probes": params.get("style_weight_probes"),
            "structure": structure_kept(content, image), "painting": style_kept(content, image, style, extractor),
            "seconds": seconds, "auto_seconds": params.get("style_weight_seconds", 0.0), "image": image}


def tile(img: torch.Tensor, text: str, font) -> Image.Image:
    """A TILE x (TILE + LABEL) white cell with the image centred on top and ``text`` under it."""
    pil = nu.to_pil(img)
    pil.thumbnail((TILE, TILE), Image.LANCZOS)
    cell = Image.new("RGB", (TILE, TILE + LABEL), "white")
    cell.paste(pil, ((TILE - pil.width) // 2, (TILE - pil.height) // 2))
    draw = ImageDraw.Draw(cell)
    for k, line in enumerate(text.split("\n")):
        draw.text((TILE // 2, TILE + 2 + 13 * k), line, fill="black", font=font, anchor="ma")
    return cell


def sheet(contents: dict, styles: dict, rows: dict, font) -> Image.Image:
    """Rows: the photos; columns: the paintings; the first row and column show the inputs."""
    pad = 4
    out = Image.new("RGB", ((TILE + pad) * (len(styles) + 1), (TILE + LABEL + pad) * (len(contents) + 1)), "white")
    for j, (s_name, s) in enumerate(styles.items(), start=1):
        out.paste(tile(s, s_name.replace("_", " ")[:26], font), ((TILE + pad) * j, 0))
    for i, (c_name, c) in enumerate(contents.items(), start=1):
        y = (TILE + LABEL + pad) * i
        out.paste(tile(c, c_name.replace("_", " ")[:26], font), (0, y))
        for j, s_name in enumerate(styles, start=1):
            r = rows[(c_name, s_name)]
            text = f"S {r['structure']:.2f}  P {r['painting']:.2f}\nw {r['style_weight']:.3g}" + (" (auto)" if r["auto"] else "")
            out.paste(tile(r["image"], text, font), ((TILE + pad) * j, y))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=tuple(WEIGHTS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--reuse", action="store_true", help="read results already in out/contact_sheet/")
    parser.add_argument("--start-level", action="store_true", help="start_level=True (with 'after': tries of two levels)")
    parser.add_argument("--pair", nargs=2, action="append", metavar=("CONTENT", "STYLE"),
                        help="only these pairs (names without .jpg; repeat it): numbers only, no sheet")
    args = parser.parse_args()
    weight = WEIGHTS[args.which]
    tag = ("" if args.size == 256 else f"_{args.size}") + ("_start_level" if args.start_level else "")  # own files
    kwargs = {"start_level": True} if args.start_level else {}
    load = lambda kind: {p.stem: nu.load_image(p, max_side=args.size) for p in sorted((ROOT / "data" / kind).glob("*.jpg"))}
    contents, styles = load("content"), load("style")
    extractor = nu.VGGFeatures(nu.load_vgg19(), layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))
    print(f"{args.which}: style_weight={weight}, {args.size} px, {'start_level=True, ' if kwargs else ''}{platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    rows, start = {}, time.perf_counter()
    pairs = [tuple(p) for p in args.pair] if args.pair else [(c, s) for c in contents for s in styles]
    for c_name, s_name in pairs:
        if c_name not in contents or s_name not in styles:
            parser.error(f"no pair {c_name} x {s_name}: photos {', '.join(contents)}; paintings {', '.join(styles)}")
    for c_name, s_name in pairs:
        path = ROOT / "out/contact_sheet" / f"{args.which}{tag}" / f"{c_name}__{s_name}.png"
        rows[(c_name, s_name)] = r = run_pair(contents[c_name], styles[s_name], extractor, weight, path, args.reuse, **kwargs)
        print(f"{c_name:24s} x {s_name:28s} w {r['style_weight']:7.3g}  structure {r['structure']:.3f}  "
              f"painting {r['painting']:.3f}  {r['seconds']:.1f} s", flush=True)
    print(f"total {time.perf_counter() - start:.0f} s")
    table = [{"content": c, "style": s, **{k: v for k, v in r.items() if k != "image"}} for (c, s), r in rows.items()]
    if args.pair:
        out = ROOT / f"docs/contact_sheet_{args.which}{tag}_pairs.json"
        out.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")
        return
    font = ImageFont.truetype(str(Path(__import__("matplotlib").get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), 11)
    out = ROOT / f"docs/contact_sheet_{args.which}{tag}.jpg"
    sheet(contents, styles, rows, font).save(out, quality=72, optimize=True)
    out.with_suffix(".json").write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
