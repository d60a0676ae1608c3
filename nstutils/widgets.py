"""The style-transfer playground: pick images, move sliders, watch the image change.

``app = Playground(); app`` in a notebook shows it (notebooks/06_playground.ipynb). Core
ipywidgets only, for ipywidgets 7.7.1 (Colab's) and 8.x. The optimization runs in a background
thread (``start``/``stop``, the Run and Stop buttons) or in the caller's thread (``run``, for
scripts). Imported by notebooks only, never by ``import nstutils``.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import ipywidgets as w
import torch

from .balance import AUTO_RANGE
from .course import find_data, samples
from .device import choose_device
from .features import VGGFeatures, min_side
from .images import load_image, save_image
from .layers import VGG19_LAYERS
from .optimize import DEFAULT_LR, DEFAULTS, StepInfo, StepRecord, StylizeResult, stylize
from .pickers import ImagePicker, image_bytes
from .progress import fraction_done
from .provenance import result_metadata
from .runner import INIT_PREVIOUS, Runner, Settings, progress_text, stop_callback
from .weights import load_vgg19

STYLE_CHOICES = tuple(n for n in VGG19_LAYERS if (n.startswith("relu") and n.endswith("_1"))
                      or n in DEFAULTS.style_layers)
CONTENT_CHOICES = tuple(n for n in VGG19_LAYERS if n.startswith("relu") or n in DEFAULTS.content_layers)
INITS = (("content", "content"), ("noise", "noise"), ("style", "style"),
         ("previous result", INIT_PREVIOUS))
STRIP_LENGTH = 6  # previous runs kept in the strip
COLORS = {"info": "#333", "ok": "#1b5e20", "warning": "#8a5300", "error": "#b00020"}
_WIDE = {"description_width": "110px"}


@dataclass(frozen=True)
class Entry:
    """One finished run: its number, settings and result."""

    number: int
    settings: Settings
    result: StylizeResult


def loss_plot_png(history: list[StepRecord], *, width: float = 4.0, height: float = 2.0) -> bytes:
    """Draw the weighted loss terms against the step (log scale) and return PNG bytes."""
    from matplotlib.figure import Figure  # no pyplot: safe in a thread, never shown inline
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_subplot()
    steps = [r.step for r in history]
    for term, look in (("content", "C1-"), ("style", "C2-"), ("tv", "C3-"), ("total", "k--")):
        ys = [getattr(r, term) for r in history]  # the total last and dashed: it hugs the largest term
        ax.plot(steps, [y if y > 0 else math.nan for y in ys], look, label=term, lw=1.3)
    if history:
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "the loss curves appear here", ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="0.4")
    ax.set_xlabel("step", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, ncol=4, loc="upper center", frameon=False)
    fig.subplots_adjust(left=0.13, right=0.98, top=0.86, bottom=0.2)  # tight_layout is slow
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _save_new(img: torch.Tensor, path: Path, meta: dict[str, str]) -> Path:
    """Save to ``path``, or to NAME-2.png, NAME-3.png, ... if it exists: never overwrite a result
    (earlier sessions number their runs from 1 too). Written atomically."""
    for n in range(1, 10000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            return save_image(img, candidate, metadata=meta, overwrite=False)
        except FileExistsError:
            continue
    raise FileExistsError(f"{path} and 9998 numbered variants exist; choose another folder")


def _log_slider(description: str, value: float, span: int = 4, **kw) -> w.FloatLogSlider:
    """A base-10 log slider spanning 10^(centre +- span) around ``value``."""
    centre = round(math.log10(value)) if value > 0 else 0
    return w.FloatLogSlider(value=value, base=10, min=centre - span, max=centre + span, step=0.1,
                            description=description, readout_format=".3g", style=_WIDE,
                            layout=w.Layout(width="470px"), continuous_update=False, **kw)


def _number(weight) -> float:
    """A slider's start value for a weight that may be "auto" (the top of the auto search's range)."""
    return AUTO_RANGE[1] if weight == "auto" else float(weight)


def _small(text: str) -> w.HTML:
    return w.HTML(f"<div style='font-size:12px;line-height:1.35;color:#555;margin:4px 0'>{text}</div>",
                  layout=w.Layout(width="470px"))


class Playground:
    """Interactive neural style transfer: ``app = Playground(); app`` shows it.

    Args (the caller decides): data (the course's data/ folder, default ``find_data()``),
    device (default "auto": see :func:`nstutils.device.choose`), weights (for ``load_vgg19``, default "caffe";
    loaded on the first run) or a ready ``extractor``, size (longer side of the result) and
    steps (default ``DEFAULTS.steps``), out_dir (where Save writes), refresh_s and plot_s (the
    least time between two preview and two loss-plot updates).
    Attributes: ``controls`` {name: widget}, ``preview`` (ipywidgets.Image), ``status`` (HTML),
    ``history`` (finished runs, newest first), ``result`` (the result shown), ``widget``.
    """

    def __init__(self, *, data=None, device=None, weights="caffe", extractor: VGGFeatures | None = None,
                 pooling: str = "max", size: int | None = None, steps: int | None = None,
                 content: str = "tubingen_neckarfront", style: str = "van_gogh_starry_night",
                 out_dir=None, refresh_s: float = 0.3, plot_s: float = 1.0):
        self.data = Path(data) if data is not None else find_data()
        self.device = choose_device("auto" if device is None else device)
        self.weights, self.pooling, self.extractor = weights, pooling, extractor
        self.out_dir = Path(out_dir) if out_dir is not None else self.data.parent / "out" / "playground"
        self.refresh_s, self.plot_s = refresh_s, plot_s
        self.runner = Runner()
        self._auto_chosen = False  # True while a run's automatic style weight moves the slider
        self.history: list[Entry] = []
        self.shown: Entry | None = None  # the result in the preview: what Save and "previous" use
        self._images: dict[tuple, torch.Tensor] = {}
        self._cards: dict[int, w.Widget] = {}
        self.status = w.HTML(layout=w.Layout(width="480px", min_height="24px"))
        self.pickers = {kind: ImagePicker(kind.capitalize(), samples(self.data, kind), value=name,
                                          on_error=lambda m: self.message(m, "error"))
                        for kind, name in (("content", content), ("style", style))}
        self.controls = self._make_controls(size or (512 if self.device.type == "cuda" else 256),
                                            steps or DEFAULTS.steps)
        fixed = ("content", "style", "content_upload", "style_upload", "run", "stop", "reset", "save")
        self.defaults = {k: c.value for k, c in self.controls.items() if k not in fixed}
        self.preview = w.Image(format="jpeg", layout=w.Layout(width="390px", height="290px",
                                                              object_fit="contain"))
        self.plot = w.Image(value=loss_plot_png([]), format="png", layout=w.Layout(width="400px"))
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="160px"))
        self.progress_text = w.Label("ready", layout=w.Layout(width="320px"))
        self.strip = w.HBox([], layout=w.Layout(overflow="auto", width="100%"))
        self.preview.value = self.pickers["content"].image_bytes(400)
        self.preview.add_class("nst-preview")  # a handle for the browser test
        self._wire()
        self.widget = self._layout()
        self.message(f"Ready on {self.device}. Pick two images, set the sliders, press Run.")

    # ---- building -------------------------------------------------------------------------
    def _make_controls(self, size: int, steps: int) -> dict[str, w.Widget]:
        c: dict[str, w.Widget] = {
            "content": self.pickers["content"].dropdown, "style": self.pickers["style"].dropdown,
            "content_upload": self.pickers["content"].upload, "style_upload": self.pickers["style"].upload,
            "content_weight": _log_slider("content weight", DEFAULTS.content_weight),
            "style_weight": _log_slider("style weight", _number(DEFAULTS.app_style_weight)),
            "style_weight_auto": w.Checkbox(value=DEFAULTS.app_style_weight == "auto", indent=False,
                                            description="auto: choose the style weight for this pair",
                                            layout=w.Layout(width="470px")),
            "tv_weight": _log_slider("TV weight", DEFAULTS.tv_weight),
            "content_layer": w.Dropdown(options=CONTENT_CHOICES, value=DEFAULTS.content_layers[0],
                                        description="content layer", style=_WIDE),
        }
        for name in STYLE_CHOICES:
            c[f"layer_{name}"] = w.Checkbox(value=name in DEFAULTS.style_layers, description=name,
                                            indent=False, layout=w.Layout(width="90px"))
            c[f"layer_weight_{name}"] = w.FloatLogSlider(value=1.0, base=10, min=-2, max=2, step=0.1,
                                                         readout_format=".2g", continuous_update=False,
                                                         layout=w.Layout(width="370px"))
        c.update(
            optimizer=w.Dropdown(options=(("L-BFGS", "lbfgs"), ("Adam", "adam")),
                                 value=DEFAULTS.optimizer, description="optimizer", style=_WIDE),
            lr=_log_slider("learning rate", DEFAULTS.lr or DEFAULT_LR[DEFAULTS.optimizer], span=3),
            steps=w.IntSlider(value=steps, min=1, max=2000, description="steps", style=_WIDE,
                              continuous_update=False, layout=w.Layout(width="470px")),
            size=w.IntSlider(value=size, min=32, max=1024, step=16, description="image size (px)",
                             style=_WIDE, continuous_update=False, layout=w.Layout(width="470px")),
            init=w.Dropdown(options=INITS, value=DEFAULTS.init, description="start from", style=_WIDE),
            seed=w.BoundedIntText(value=DEFAULTS.seed, min=0, max=2**31 - 1, description="seed",
                                  style=_WIDE, layout=w.Layout(width="200px")),
            run=w.Button(description="Run", button_style="success", icon="play"),
            stop=w.Button(description="Stop", button_style="danger", icon="stop", disabled=True),
            reset=w.Button(description="Reset defaults", icon="undo"),
            save=w.Button(description="Save PNG", icon="download", disabled=True),
        )
        for b, width in (("run", "100px"), ("stop", "100px"), ("reset", "140px"), ("save", "120px")):
            c[b].layout = w.Layout(width=width)
        return c

    def _guard(self, action):
        """Wrap a button's action so that any error becomes a message instead of a traceback."""

        def on_click(_button) -> None:
            try:
                action()
            except Exception as err:
                self.message(f"{type(err).__name__}: {err}", "error")

        return on_click

    def _wire(self) -> None:
        c = self.controls
        for name, action in (("run", self.start), ("stop", self.stop), ("reset", self.reset),
                             ("save", self.save)):
            c[name].on_click(self._guard(action))
        c["optimizer"].observe(lambda ch: setattr(c["lr"], "value", DEFAULT_LR[ch["new"]]), names="value")
        # Moving the style slider by hand means "this weight": auto is a starting point, not a lock.
        c["style_weight"].observe(lambda ch: self._auto_chosen or setattr(c["style_weight_auto"], "value", False),
                                  names="value")

    def _layout(self) -> w.Widget:
        c = self.controls
        layer_rows = [w.HBox([c[f"layer_{n}"], c[f"layer_weight_{n}"]]) for n in STYLE_CHOICES]
        tabs = w.Tab(children=[
            w.VBox([c["content_weight"], c["style_weight"], c["style_weight_auto"], c["tv_weight"], _small(
                "How strongly the result keeps the photo's layout (content), takes the painting's "
                "textures (style) and stays smooth (TV). Only the ratios matter. 'auto' picks the "
                "most style that keeps the photo's edges (a few short runs first) and moves the "
                "slider there; move the slider to use your own.")]),
            w.VBox([c["content_layer"], _small("Style layers (tick to use; slider = relative weight):"),
                    *layer_rows]),
            w.VBox([c["optimizer"], c["lr"], c["steps"], c["size"], c["init"], c["seed"], _small(
                "L-BFGS converges in fewer steps; Adam takes cheaper steps. 'previous result' "
                "continues from the image shown on the right.")]),
        ], layout=w.Layout(width="520px"))
        for i, title in enumerate(("Weights", "Layers", "Optimizer")):
            tabs.set_title(i, title)
        buttons = w.HBox([c["run"], c["stop"], c["reset"], c["save"]])
        left = w.VBox([w.HBox([self.pickers["content"].box, self.pickers["style"].box]), tabs, buttons,
                       w.HBox([self.progress, self.progress_text]), self.status],
                      layout=w.Layout(width="530px", margin="0 12px 0 0"))
        right = w.VBox([w.HTML("<b>Result</b>"), self.preview, self.plot], layout=w.Layout(width="400px"))
        strip_title = w.HTML("<b>Previous runs</b> <span style='color:#555'>(newest first; "
                             "Show puts one back on the right, Continue runs on from it)</span>")
        return w.VBox([w.HBox([left, right]), strip_title, self.strip])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ---- settings -------------------------------------------------------------------------
    def settings(self) -> Settings:
        """Return the current choices of every control as a :class:`Settings`."""
        c = self.controls
        layers = tuple((n, float(c[f"layer_weight_{n}"].value)) for n in STYLE_CHOICES if c[f"layer_{n}"].value)
        return Settings(content=c["content"].value, style=c["style"].value, size=int(c["size"].value),
                        content_weight=float(c["content_weight"].value),
                        style_weight="auto" if c["style_weight_auto"].value else float(c["style_weight"].value),
                        tv_weight=float(c["tv_weight"].value), content_layer=c["content_layer"].value,
                        style_layers=layers, optimizer=c["optimizer"].value, lr=float(c["lr"].value),
                        steps=int(c["steps"].value), init=c["init"].value, seed=int(c["seed"].value))

    def reset(self) -> None:
        """Put every slider, toggle and choice back to its default (the images stay)."""
        for name, value in self.defaults.items():
            self.controls[name].value = value
        self.controls["lr"].value = self.defaults["lr"]  # the optimizer observer changed it
        self.message("Defaults restored.")

    def message(self, text: str, level: str = "info") -> None:
        """Show one line in the status area (level: info, ok, warning or error)."""
        mark = {"error": "&#9888; ", "warning": "&#9888; "}.get(level, "")
        self.status.value = (f"<div style='color:{COLORS[level]};line-height:1.35;font-size:13px;"
                             f"overflow-wrap:anywhere'>{mark}{html.escape(text)}</div>")

    # ---- running --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.runner.running

    @property
    def result(self) -> StylizeResult | None:
        return self.shown.result if self.shown else None

    def start(self) -> bool:
        """Start a run in a background thread; False if one is already running.

        Problems found while it runs (a bad setting, an image too small) end it with a message.
        """
        settings = self.settings()
        started = self.runner.start(lambda stop: self._job(settings, stop), on_error=lambda err: None)
        if not started:
            self.message("A run is already in progress: press Stop first.", "warning")
        return started

    def stop(self) -> None:
        """Ask the running optimization to stop after its current step (the image so far is kept)."""
        if self.runner.running:
            self.runner.stop()
            self.message("Stopping after this step...")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background run to end; True if none is running any more."""
        return self.runner.wait(timeout)

    def run(self, *, steps: int | None = None, size: int | None = None) -> StylizeResult:
        """Run to the end in this thread (for scripts and tests) and return the result.

        ``steps`` and ``size`` also move their sliders. An error is shown in the app and raised.
        """
        if steps is not None:
            self.controls["steps"].value = steps
        if size is not None:
            self.controls["size"].value = size
        settings = self.settings()
        return self.runner.run(lambda stop: self._job(settings, stop))

    def _job(self, settings: Settings, stop) -> StylizeResult:
        self._set_running(True)
        try:
            result = self._stylize(settings, stop)
            self._finish(settings, result)
            return result
        except Exception as err:
            known = isinstance(err, (ValueError, FileNotFoundError, RuntimeError))
            self.message(str(err) if known else f"{type(err).__name__}: {err}", "error")
            raise
        finally:
            self._set_running(False)

    def _set_running(self, running: bool) -> None:
        c = self.controls
        c["run"].disabled, c["stop"].disabled = running, not running
        c["save"].disabled = running or self.shown is None

    def _image(self, kind: str, name: str, size: int) -> torch.Tensor:
        src = self.pickers[kind].source(name)
        # Keyed by content, not name: phones call every photo image.jpg.
        key = (kind, hashlib.sha256(src).hexdigest() if isinstance(src, bytes) else str(src), size)
        if key not in self._images:
            self._images[key] = load_image(src, max_side=size, device=self.device)
        return self._images[key]

    def _get_extractor(self) -> VGGFeatures:
        if self.extractor is None:
            self.message(f"Loading the VGG19 weights ({self.weights})...")
            self.extractor = VGGFeatures(load_vgg19(self.weights), pooling=self.pooling)
        return self.extractor.to(self.device)

    def _init_image(self, settings: Settings, content: torch.Tensor):
        if settings.init != INIT_PREVIOUS:
            return settings.init
        if self.shown is None:
            raise ValueError("there is no previous result yet: run once, or choose another 'start from'")
        prev = self.shown.result.image.to(self.device)
        return torch.nn.functional.interpolate(prev, size=content.shape[-2:], mode="bilinear",
                                               align_corners=False, antialias=True).clamp(0, 1)

    def _stylize(self, settings: Settings, stop) -> StylizeResult:
        kwargs = settings.stylize_kwargs()
        content = self._image("content", settings.content, settings.size)
        style = self._image("style", settings.style, settings.size)
        need = min_side((*kwargs["content_layers"], *kwargs["style_layers"]))
        for kind, img in (("content", content), ("style", style)):
            if min(img.shape[-2:]) < need:
                raise ValueError(f"the {kind} image is too small: {img.shape[-1]}x{img.shape[-2]} px at "
                                 f"this size, and the chosen layers need {need} px a side; raise the "
                                 "image size or untick the deepest style layers")
        kwargs["init"] = self._init_image(settings, content)
        extractor = self._get_extractor()
        self.progress.max, self.progress.value = settings.steps, 0
        self._records: list[StepRecord] = []
        self._last = {"preview": -math.inf, "plot": time.perf_counter()}
        h, w_ = content.shape[-2:]
        self.message(f"Running {settings.steps} {settings.optimizer} steps at {w_}x{h} px...")
        return stylize(content, style, extractor, callback=stop_callback(stop, self._on_step), **kwargs)

    def _on_step(self, info: StepInfo) -> None:
        if info.probe is not None:  # "auto" trying a weight at the first level: show it, plot only the run
            self.progress.value = info.step  # with one level the try is the whole run: the bar must move
            self.progress_text.value = f"choosing the style weight: trying {info.probe:g}, step {info.step}"
            if time.perf_counter() - self._last["preview"] >= self.refresh_s:
                self.preview.value = image_bytes(info.image, "jpeg")
                self._last["preview"] = time.perf_counter()
            return
        self._records.append(info.record)
        self.progress.value = info.step
        text = progress_text(info.step, info.steps, info.record.seconds, fraction_done(info))
        self.progress_text.value = f"{text}, loss {info.record.total:.4g}"
        if time.perf_counter() - self._last["preview"] >= self.refresh_s:
            self.preview.value = image_bytes(info.image, "jpeg")
            self._last["preview"] = time.perf_counter()
        start = time.perf_counter()
        if start - self._last["plot"] >= self.plot_s:
            self.plot.value = loss_plot_png(self._records)
            end = time.perf_counter()
            self._last["plot"] = end + 3 * (end - start)  # plotting takes at most 1/4 of the time

    def _finish(self, settings: Settings, result: StylizeResult) -> None:
        entry = Entry(self.history[0].number + 1 if self.history else 1, settings, result)
        self.history.insert(0, entry)
        self._show(entry)
        if result.history:  # the last step seen may have been a try's ("auto" with one level)
            self.progress.value = len(result.history)
            text = progress_text(len(result.history), self.progress.max, result.seconds, 1.0)
            self.progress_text.value = f"{text}, loss {result.history[-1].total:.4g}"
        if result.params.get("style_weight_auto"):  # show the chosen weight on the slider
            self._auto_chosen = True
            try:
                self.controls["style_weight"].value = result.params["style_weight"]
            finally:
                self._auto_chosen = False
        self.plot.value = loss_plot_png(result.history)
        self._render_strip()
        level = {"completed": "ok", "stopped": "ok"}.get(result.status, "warning")
        self.message(f"Run {entry.number}: {result.message} ({result.seconds:.1f} s).", level)

    # ---- results --------------------------------------------------------------------------
    def _show(self, entry: Entry) -> None:
        self.shown = entry
        self.preview.value = image_bytes(entry.result.image, "jpeg")
        self.controls["save"].disabled = False

    def _card(self, entry: Entry) -> w.Widget:
        s, r = entry.settings, entry.result
        last = r.history[-1].total if r.history else math.nan
        text = (f"<b>#{entry.number}</b> {r.status}, loss {last:.3g}<br>{html.escape(s.content)}<br>"
                f"+ {html.escape(s.style)}<br>{s.size} px, {len(r.history)} {s.optimizer} steps<br>"
                f"content {s.content_weight:.2g}, style {r.params.get('style_weight', math.nan):.2g}"
                f"{' (auto)' if r.params.get('style_weight_auto') else ''}, tv {s.tv_weight:.2g}")
        show = w.Button(description="Show", layout=w.Layout(width="72px"))
        cont = w.Button(description="Continue", layout=w.Layout(width="88px"))
        show.on_click(self._guard(lambda: self._show(entry)))
        cont.on_click(self._guard(lambda: self.continue_from(entry)))
        return w.VBox([w.Image(value=image_bytes(r.image, "jpeg", 160), format="jpeg",
                               layout=w.Layout(width="160px", height="120px", object_fit="contain")),
                       w.HTML(f"<div style='font-size:11px;line-height:1.3' "
                              f"title='{html.escape(s.summary(), quote=True)}'>{text}</div>"),
                       w.HBox([show, cont])], layout=w.Layout(width="172px", margin="0 8px 0 0"))

    def _render_strip(self) -> None:
        keep = {e.number for e in self.history[:STRIP_LENGTH]}
        for number in [n for n in self._cards if n not in keep]:
            self._cards.pop(number).close()
        for e in self.history[:STRIP_LENGTH]:
            if e.number not in self._cards:
                self._cards[e.number] = self._card(e)
        self.strip.children = [self._cards[e.number] for e in self.history[:STRIP_LENGTH]]

    def continue_from(self, entry: Entry | None = None) -> bool:
        """Show ``entry`` (default: the latest run) and start a new run from its image."""
        entry = entry or (self.history[0] if self.history else None)
        if entry is None:
            self.message("Nothing to continue from yet: press Run first.", "warning")
            return False
        if self.runner.running:
            self.message("A run is already in progress: press Stop first.", "warning")
            return False
        self._show(entry)
        self.controls["init"].value = INIT_PREVIOUS
        return self.start()

    def save(self, path=None) -> Path | None:
        """Write the result shown as PNG, with its settings in the PNG metadata; return the path."""
        if self.shown is None:
            self.message("Nothing to save yet: press Run first.", "warning")
            return None
        s, r = self.shown.settings, self.shown.result
        path = Path(path) if path else self.out_dir / f"run{self.shown.number:03d}_{s.content}_{s.style}.png"
        meta = {**result_metadata(r, {"content": s.content, "style": s.style}),
                "nstutils:settings": json.dumps(asdict(s), default=str)}
        try:
            path = _save_new(r.image, path, meta)
        except (OSError, ValueError) as err:
            self.message(f"could not save: {err}", "error")
            return None
        self.message(f"Saved {path} (settings in its PNG metadata).", "ok")
        if "google.colab" in sys.modules:  # in Colab, also hand the file to the browser
            from google.colab import files

            files.download(str(path))
        return path
