"""Figures of attention maps, drawn with matplotlib off-screen (Agg) and written as PNG.

`plot_attention(model, images, path=...)` collects a model's attention and draws one figure
with a section per kind of attention it has; the `plot_*` functions draw one section from
maps already collected with `collect_attention`. Every function returns the matplotlib
`Figure` (built without pyplot, so no global state and no display are involved) and writes
it when given a `path`.

Overlays blend a colormap of the map (scaled to its own minimum and maximum, so the
structure of a map is visible whatever its range; the range is printed under each panel)
with the image at the image's resolution.
"""

import os
import tempfile

import numpy as np

from attention_zoo.visualization.collect import OVERLAY_KINDS, collect_attention

SECTIONS = ("overlay", "channels", "paths", "affinity", "transformer", "glimpses", "patches")
# Overlays of layers with several maps show the one that acts on the features (gate first).
_OVERLAY_PRIORITY = OVERLAY_KINDS
_ALL_LAYERS_UP_TO = 6  # more layers than this: the last one of each stage


def _matplotlib():
    try:
        from matplotlib import cm, colormaps, colors, patches
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "attention plots need matplotlib: pip install 'attention_zoo[viz]' (matplotlib and pillow)"
        ) from error
    return Figure, colormaps, cm, colors, patches


# --------------------------------------------------------------------------- image helpers


def as_images(images):
    """One image (H, W, C) or (H, W), or a batch (B, H, W, C), as a float batch (B, H, W, C)."""
    images = np.asarray(images, dtype="float32")
    if images.ndim == 2:
        images = images[None, :, :, None]
    elif images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must be (H, W, C) or (B, H, W, C) with 1, 3 or 4 channels; got {images.shape}")
    return images


def display_image(image):
    """An image as RGB floats in [0, 1] for display: kept if already in [0, 1], divided by
    255 if it looks like 8-bit pixels, else scaled by its own minimum and maximum
    (normalised network inputs)."""
    image = np.asarray(image, dtype="float32")
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    low, high = float(image.min()), float(image.max())
    if low >= 0.0 and high <= 1.0:
        scaled = image
    elif low >= 0.0 and high <= 255.0:
        scaled = image / 255.0
    else:
        scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[..., None], 3, axis=-1)
    return np.clip(scaled, 0.0, 1.0)


def normalize_map(heatmap, value_range=None):
    """A map scaled to [0, 1] by `value_range` (default its own min and max); a flat map
    becomes 0.5 everywhere rather than noise blown up to the full scale."""
    heatmap = np.asarray(heatmap, dtype="float32")
    low, high = value_range if value_range is not None else (float(heatmap.min()), float(heatmap.max()))
    if high - low <= 1e-6 * max(1.0, abs(high)):
        return np.full_like(heatmap, 0.5)
    return np.clip((heatmap - low) / (high - low), 0.0, 1.0)


def overlay(image, heatmap, cmap="jet", alpha=0.5, value_range=None):
    """The image (H, W, C) with a colormap of `heatmap` (H, W) blended in: (H, W, 3) RGB."""
    _, colormaps, *_ = _matplotlib()
    base = display_image(image)
    heatmap = np.asarray(heatmap, dtype="float32")
    if heatmap.shape != base.shape[:2]:
        raise ValueError(f"the map {heatmap.shape} must have the image's size {base.shape[:2]} to overlay it")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha}")
    colours = colormaps[cmap](normalize_map(heatmap, value_range))[..., :3]
    return ((1.0 - alpha) * base + alpha * colours).astype("float32")


def save_figure(figure, path, dpi=100):
    """Writes `figure` as PNG to `path` through a temporary file, so a failure leaves no
    half-written file behind."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".png", prefix=".attention-", dir=directory)
    os.close(handle)
    try:
        figure.savefig(temporary, format="png", dpi=dpi)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


# -------------------------------------------------------------------------------- selection


def _group(part):
    """Maps of a nested model count their stages separately from the outer model's."""
    return part.layer.split("/")[0] if part.frame is not None else ""


def _matches(part, layers):
    return any(part.key == name or part.layer == name or part.layer.startswith(name + "/") for name in layers)


def select_maps(maps, kinds, layers=None, per_stage="auto", require_upsampled=False):
    """The maps of `kinds` to draw, one per layer (the first of `kinds` a layer has).

    layers: names or keys to draw (all their maps of `kinds`); overrides `per_stage`.
    per_stage: "last" keeps the last layer of each stage (feature resolution), None keeps
        all, "auto" keeps all when there are at most six layers, else the last per stage.
    """
    candidates = [m for m in maps.values() if m.kind in kinds and (m.upsampled is not None or not require_upsampled)]
    if layers is not None:
        layers = [layers] if isinstance(layers, str) else list(layers)
        return [m for m in candidates if _matches(m, layers)]
    per_layer = {}
    for part in candidates:
        best = per_layer.get(part.layer)
        if best is None or kinds.index(part.kind) < kinds.index(best.kind):
            per_layer[part.layer] = part
    chosen = [m for m in candidates if per_layer[m.layer] is m]
    if per_stage is None or (per_stage == "auto" and len(chosen) <= _ALL_LAYERS_UP_TO):
        return chosen
    if per_stage not in ("auto", "last"):
        raise ValueError(f"per_stage must be 'auto', 'last' or None; got {per_stage!r}")
    last = {}
    for index, part in enumerate(chosen):
        key = (_group(part), part.stage if part.stage is not None else f"#{index}")
        last[key] = part
    keep = {id(part) for part in last.values()}
    return [m for m in chosen if id(m) in keep]


def _short(text, limit=28):
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _stage_label(part):
    return f"stride {part.stride:g}" if part.stride else ""


def _range_label(values):
    low, high = float(np.min(values)), float(np.max(values))
    digits = 3
    # Nearly flat maps are stretched to the full colour scale: the digits must show how flat.
    while digits < 8 and low != high and f"{low:.{digits}g}" == f"{high:.{digits}g}":
        digits += 1
    return f"[{low:.{digits}g}, {high:.{digits}g}]"


# ---------------------------------------------------------------------------------- sections


def _frame(part, images):
    return part.frame if part.frame is not None else images


def _overlay_size(images, selected):
    return max(4.0, 2.3 * len(selected) + 1.0), 2.6 * images.shape[0] + 0.4


def _draw_overlays(figure, images, selected, alpha=0.5, cmap="jet", value_range=None):
    _, colormaps, cm, colors, _ = _matplotlib()
    rows, columns = images.shape[0], len(selected)
    axes = np.asarray(figure.subplots(rows, columns, squeeze=False))
    for column, part in enumerate(selected):
        frames = _frame(part, images)
        for row in range(rows):
            ax = axes[row, column]
            shown = overlay(frames[row], part.upsampled[row], cmap=cmap, alpha=alpha, value_range=value_range)
            ax.imshow(shown, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            source = part.values[row] if part.kind != "mask" else part.values[row].mean(axis=-1)
            ax.set_xlabel(_range_label(source), fontsize=7)
            if part.kind == "self_attention" and "query" in part.extras:
                query_row, query_col = part.extras["query"]
                ax.plot(query_col, query_row, marker="+", color="white", markersize=12, markeredgewidth=2.5)
                ax.plot(query_col, query_row, marker="+", color="black", markersize=8, markeredgewidth=1)
            if row == 0:
                label = part.kind.replace("_", " ")
                if part.kind == "mask":
                    label += " (channel mean)"
                if part.kind == "self_attention":
                    label += " of +"
                ax.set_title(f"{_short(part.key)}\n{label}  {_stage_label(part)}", fontsize=8)
            if column == 0 and rows > 1:
                ax.set_ylabel(f"image {row}", fontsize=8)
    if value_range is None:
        mappable = cm.ScalarMappable(norm=colors.Normalize(0.0, 1.0), cmap=colormaps[cmap])
        bar = figure.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, ticks=[0.0, 1.0])
        bar.ax.set_yticklabels(["min", "max"], fontsize=7)
        bar.set_label("each map from its min to its max", fontsize=7)
    else:
        mappable = cm.ScalarMappable(norm=colors.Normalize(*value_range), cmap=colormaps[cmap])
        bar = figure.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8)
        bar.ax.tick_params(labelsize=7)


def _channel_size(images, selected):
    return max(4.0, 3.0 * len(selected)), 2.2 * images.shape[0] + 0.4


def _draw_channel_weights(figure, images, selected):
    rows, columns = images.shape[0], len(selected)
    axes = np.asarray(figure.subplots(rows, columns, squeeze=False))
    for column, part in enumerate(selected):
        logits = part.extras.get("logits", False)
        bounded = not logits and float(part.values.min()) >= 0.0 and float(part.values.max()) <= 1.0
        for row in range(rows):
            ax = axes[row, column]
            weights = part.values[row]
            # One filled step artist instead of a patch per channel: fast for 2048 channels.
            ax.stairs(weights, np.arange(weights.shape[0] + 1) - 0.5, fill=True, color="tab:blue", baseline=0.0)
            ax.axhline(float(weights.mean()), color="tab:red", linewidth=1, linestyle="--")
            ax.set_xlim(-0.5, weights.shape[0] - 0.5)
            # Fixed ticks: matplotlib's automatic tick search dominates the drawing time.
            ax.set_xticks([0, weights.shape[0] // 2, weights.shape[0] - 1])
            if bounded:
                ax.set_ylim(0.0, 1.0)
                ax.set_yticks([0.0, 0.5, 1.0])
            ax.tick_params(labelsize=6)
            if row == rows - 1:
                ax.set_xlabel("channel", fontsize=7)
            if column == 0:
                ax.set_ylabel(("logit" if logits else "gate") + (f"\nimage {row}" if rows > 1 else ""), fontsize=7)
            if row == 0:
                ax.set_title(f"{_short(part.key)}\n{weights.shape[0]} channels  {_stage_label(part)}", fontsize=8)


def _paths_size(images, selected):
    return max(5.0, 0.45 * len(selected) + 2.5), 2.8 * images.shape[0] + 0.4


def _draw_path_weights(figure, images, selected):
    _, colormaps, *_ = _matplotlib()
    rows = images.shape[0]
    axes = np.asarray(figure.subplots(rows, 1, squeeze=False))[:, 0]
    paths = max(part.values.shape[1] for part in selected)
    palette = colormaps["tab10"]
    positions = np.arange(len(selected))
    for row, ax in enumerate(axes):
        bottom = np.zeros(len(selected))
        for path in range(paths):
            shares = np.array(
                [part.values[row, path].mean() if path < part.values.shape[1] else 0.0 for part in selected]
            )
            labels = next((p.extras.get("path_labels") for p in selected if p.values.shape[1] > path), None)
            label = labels[path] if labels else f"path {path}"
            ax.bar(positions, shares, bottom=bottom, color=palette(path % 10), label=label, width=0.8)
            if path < paths - 1:
                # Channels disagree where the mean hides it: whiskers span the 10th to 90th
                # percentile over channels of the cumulative share up to this path.
                cumulative = [part.values[row, : path + 1].sum(axis=0) for part in selected]
                low = bottom + shares - np.array([np.percentile(c, 10) for c in cumulative])
                high = np.array([np.percentile(c, 90) for c in cumulative]) - bottom - shares
                ax.errorbar(
                    positions, bottom + shares, yerr=[np.maximum(low, 0), np.maximum(high, 0)],
                    fmt="none", ecolor="black", elinewidth=0.8, capsize=2,
                )
            bottom += shares
        stages = [part.stage for part in selected]
        for index in range(1, len(selected)):
            if stages[index] != stages[index - 1]:
                ax.axvline(index - 0.5, color="grey", linewidth=0.8, linestyle=":")
        ax.set_ylim(0.0, 1.0)
        ax.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])
        ax.set_xlim(-0.6, max(len(selected), 6) - 0.4)  # a lone layer gets a bar, not a wall
        ax.set_ylabel("mean path weight" + (f"\nimage {row}" if rows > 1 else ""), fontsize=7)
        ax.set_xticks(positions)
        ax.set_xticklabels([_short(part.key, 20) for part in selected], rotation=60, ha="right", fontsize=6)
        ax.tick_params(axis="y", labelsize=6)
        if row == 0:
            ax.set_title(
                "selective kernel: share of each path, mean over channels (whiskers: 10-90th percentile)", fontsize=8
            )
            ax.legend(fontsize=6, loc="upper right", framealpha=0.8)


def _affinity_size(images, selected):
    return max(4.0, 2.6 * len(selected) + 1.0), 2.6 * images.shape[0] + 0.4


def _draw_channel_affinity(figure, images, selected):
    rows, columns = images.shape[0], len(selected)
    axes = np.asarray(figure.subplots(rows, columns, squeeze=False))
    top = max(float(part.values.max()) for part in selected)
    for column, part in enumerate(selected):
        for row in range(rows):
            ax = axes[row, column]
            shown = ax.imshow(part.values[row], cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest")
            ax.set_anchor("W")  # square panels in a wide figure: keep them by their labels
            ax.tick_params(labelsize=6)
            if row == 0:
                ax.set_title(f"{_short(part.key)}\nchannel x channel  {_stage_label(part)}", fontsize=8)
            if column == 0:
                ax.set_ylabel("query channel" + (f"\nimage {row}" if rows > 1 else ""), fontsize=7)
            if row == rows - 1:
                ax.set_xlabel("key channel", fontsize=7)
            if column == columns - 1:
                # An inset beside the panel: a layout colorbar would push the square panels
                # to the far side of a wide figure.
                bar = figure.colorbar(shown, cax=ax.inset_axes([1.04, 0.0, 0.05, 1.0]))
                bar.ax.tick_params(labelsize=6)


def _transformer_size(images, selected):
    return 7.5, 2.9 * images.shape[0] * len(selected) + 0.5


def _grid_lines(pixels, every):
    """Outline and every `every`-th row and column of a (Ho, Wo, 2) sampling grid."""
    outline = np.concatenate([pixels[0, :], pixels[:, -1], pixels[-1, ::-1], pixels[::-1, 0]])
    inner = [pixels[r, :] for r in range(every, pixels.shape[0] - 1, every)]
    inner += [pixels[:, c] for c in range(every, pixels.shape[1] - 1, every)]
    return outline, inner


def _draw_spatial_transformer(figure, images, selected):
    rows = images.shape[0] * len(selected)
    axes = np.asarray(figure.subplots(rows, 3, squeeze=False))
    for index, part in enumerate(selected):
        frames = _frame(part, images)
        for image_index in range(images.shape[0]):
            row = index * images.shape[0] + image_index
            image = display_image(frames[image_index])
            pixels = part.extras["pixels"][image_index]
            outline, inner = _grid_lines(pixels, max(1, min(pixels.shape[:2]) // 6))
            axes[row, 0].imshow(image, interpolation="nearest")
            axes[row, 1].imshow(image, interpolation="nearest")
            for line in inner:
                axes[row, 1].plot(line[:, 0], line[:, 1], color="yellow", linewidth=0.6, alpha=0.7)
            axes[row, 1].plot(outline[:, 0], outline[:, 1], color="red", linewidth=1.8)
            axes[row, 1].plot(*pixels[0, 0], marker="o", color="red", markersize=4)  # the output's top-left
            # The grid may reach past the image (zero padding there): show all of it.
            low, high = outline.min(axis=0) - 1.0, outline.max(axis=0) + 1.0
            axes[row, 1].set_xlim(min(-0.5, low[0]), max(image.shape[1] - 0.5, high[0]))
            axes[row, 1].set_ylim(max(image.shape[0] - 0.5, high[1]), min(-0.5, low[1]))
            transformed = part.extras.get("transformed")
            if transformed is not None:
                axes[row, 2].imshow(display_image(transformed[image_index]), interpolation="nearest")
            theta = part.extras.get("theta")
            if theta is not None:
                text = "\n".join(" ".join(f"{v:+.2f}" for v in line) for line in theta[image_index])
                axes[row, 1].set_xlabel(f"theta\n{text}", fontsize=6, family="monospace")
            for ax in axes[row]:
                ax.set_xticks([])
                ax.set_yticks([])
            if row == 0:
                axes[row, 0].set_title("input", fontsize=8)
                axes[row, 1].set_title(f"{_short(part.key)}\nsampling grid", fontsize=8)
                axes[row, 2].set_title("transformed", fontsize=8)


def _glimpse_size(images, selected):
    return 4.0, 3.6 * images.shape[0] * len(selected) + 0.4


def _draw_glimpses(figure, images, selected):
    _, colormaps, _, _, patches = _matplotlib()
    rows = images.shape[0] * len(selected)
    axes = np.asarray(figure.subplots(rows, 1, squeeze=False))[:, 0]
    palette = colormaps["viridis"]
    for index, part in enumerate(selected):
        frames = _frame(part, images)
        for image_index in range(images.shape[0]):
            ax = axes[index * images.shape[0] + image_index]
            image = display_image(frames[image_index])
            ax.imshow(image, interpolation="nearest")
            points = part.extras["pixels"][image_index]
            steps = points.shape[0]
            ax.plot(points[:, 0], points[:, 1], color="white", linewidth=1.2, alpha=0.9)
            for step, (x, y) in enumerate(points):
                colour = palette(step / max(1, steps - 1))
                for scale_index, width in enumerate(part.extras.get("patch_sizes", ())):
                    ax.add_patch(
                        patches.Rectangle(
                            (x - width / 2.0, y - width / 2.0),
                            width,
                            width,
                            fill=False,
                            edgecolor=colour,
                            linewidth=1.4 if scale_index == 0 else 0.7,
                            linestyle="-" if scale_index == 0 else "--",
                        )
                    )
                ax.plot(x, y, marker="o", color=colour, markersize=7, markeredgecolor="white")
                ax.annotate(str(step + 1), (x, y), color="white", fontsize=7, xytext=(4, 4), textcoords="offset points")
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if image_index == 0:
                ax.set_title(f"{_short(part.key)}: {steps} glimpses (1 = first)", fontsize=8)


def _patches_size(images, selected):
    return 8.0, 2.8 * images.shape[0] * len(selected) + 0.4


def _mosaic(patches_):
    """(k, h, w, C) patches in reading order, at most four per row, 2-pixel white gaps."""
    k, h, w = patches_.shape[:3]
    gap, columns = 2, min(k, 4)
    rows = -(-k // columns)
    canvas = np.ones((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), dtype="float32")
    for index in range(k):
        top, left = (index // columns) * (h + gap), (index % columns) * (w + gap)
        canvas[top : top + h, left : left + w] = display_image(patches_[index])
    return canvas


def _draw_boxes(ax, boxes, patches, colormaps):
    palette = colormaps["autumn"]
    for rank, (top, left, bottom, right) in enumerate(boxes):
        colour = palette(rank / max(1, len(boxes) - 1))
        ax.add_patch(
            patches.Rectangle(
                (left - 0.5, top - 0.5), right - left, bottom - top, fill=False, edgecolor=colour, linewidth=1.3
            )
        )
        ax.annotate(
            str(rank + 1), (left - 0.5, top - 0.5), color=colour, fontsize=6, xytext=(1, -7), textcoords="offset points"
        )


def _draw_selected_patches(figure, images, selected, alpha=0.5, cmap="jet", value_range=None):
    _, colormaps, _, _, patches = _matplotlib()
    rows = images.shape[0] * len(selected)
    axes = np.asarray(figure.subplots(rows, 3, squeeze=False))
    for index, part in enumerate(selected):
        frames = _frame(part, images)
        for image_index in range(images.shape[0]):
            row = index * images.shape[0] + image_index
            image = frames[image_index]
            boxes = part.values[image_index]
            axes[row, 0].imshow(display_image(image), interpolation="nearest")
            _draw_boxes(axes[row, 0], boxes, patches, colormaps)
            if part.upsampled is not None:
                shown = overlay(image, part.upsampled[image_index], cmap=cmap, alpha=alpha, value_range=value_range)
                axes[row, 1].imshow(shown)
                _draw_boxes(axes[row, 1], boxes, patches, colormaps)
                saliency = part.extras.get("saliency")
                if saliency is not None:
                    axes[row, 1].set_xlabel(_range_label(saliency[image_index]), fontsize=7)
            chosen = part.extras.get("patches")
            if chosen is not None:
                axes[row, 2].imshow(_mosaic(chosen[image_index]), interpolation="nearest")
            for ax in axes[row]:
                ax.set_xticks([])
                ax.set_yticks([])
            for ax in axes[row, :2]:
                ax.set_xlim(-0.5, image.shape[1] - 0.5)
                ax.set_ylim(image.shape[0] - 0.5, -0.5)
            if row == 0:
                axes[row, 0].set_title(f"{len(boxes)} selected patches (1 = most salient)", fontsize=8)
                axes[row, 1].set_title("saliency", fontsize=8)
                axes[row, 2].set_title("what the fine layers saw (in rank order)", fontsize=8)


_SECTION_SPECS = {
    # section: (kinds it draws, needs an upsampled map, size, draw, one map per stage by default)
    "overlay": (_OVERLAY_PRIORITY, True, _overlay_size, _draw_overlays),
    "channels": (("channel_weights",), False, _channel_size, _draw_channel_weights),
    "paths": (("path_weights",), False, _paths_size, _draw_path_weights),
    "affinity": (("self_attention",), False, _affinity_size, _draw_channel_affinity),
    "transformer": (("sampling_grid",), False, _transformer_size, _draw_spatial_transformer),
    "glimpses": (("glimpse_path",), False, _glimpse_size, _draw_glimpses),
    "patches": (("selected_patches",), False, _patches_size, _draw_selected_patches),
}
_PER_STAGE = {"overlay": "auto", "channels": "auto", "affinity": "auto", "paths": None}
_STYLED = ("overlay", "patches")


def _section_maps(section, maps, layers):
    kinds, require_upsampled, *_ = _SECTION_SPECS[section]
    selected = select_maps(maps, kinds, layers, per_stage=_PER_STAGE.get(section), require_upsampled=require_upsampled)
    if section == "affinity":
        selected = [m for m in selected if m.extras.get("axis") == "channels"]
    return selected


def _figure(width, height):
    Figure, *_ = _matplotlib()
    return Figure(figsize=(width, height), layout="constrained")


def _plot_sections(images, maps, sections, path, layers, alpha, cmap, title, dpi, value_range=None):
    images = as_images(images)
    chosen = []
    for section in sections:
        selected = _section_maps(section, maps, layers)
        if selected:
            chosen.append((section, selected))
    if not chosen:
        kinds = sorted({m.kind for m in maps.values()})
        raise ValueError(
            f"nothing to draw for {', '.join(sections)}: the maps are of kind(s) {', '.join(kinds) or 'none'}"
        )
    sizes = [_SECTION_SPECS[section][2](images, selected) for section, selected in chosen]
    heading = 0.4 if title else 0.0
    figure = _figure(max(w for w, _ in sizes), sum(h for _, h in sizes) + heading)
    if len(chosen) == 1:
        targets = [figure]
    else:
        targets = list(figure.subfigures(len(chosen), 1, height_ratios=[h for _, h in sizes]))
    for target, (section, selected) in zip(targets, chosen):
        draw = _SECTION_SPECS[section][3]
        if section in _STYLED:
            draw(target, images, selected, alpha=alpha, cmap=cmap, value_range=value_range)
        else:
            draw(target, images, selected)
    if title:
        figure.suptitle(title, fontsize=10)
    if path is not None:
        save_figure(figure, path, dpi=dpi)
    return figure


def plot_overlays(images, maps, path=None, layers=None, alpha=0.5, cmap="jet", value_range=None, dpi=100):
    """Spatial maps (gates, spatial maps, masks, self-attention of the query, marked +) over
    the images: one row per image, one column per layer (the last of each stage when a
    model has many). Each map spans the colormap from its minimum to its maximum, or
    `value_range` = (low, high) for all (e.g. (0, 1) to compare gates on one scale)."""
    return _plot_sections(images, maps, ["overlay"], path, layers, alpha, cmap, None, dpi, value_range)


def plot_channel_weights(images, maps, path=None, layers=None, dpi=100):
    """Bar charts of channel gates (SE, ECA, CBAM; BAM's channel logits), the mean dashed:
    one row per image, one column per layer."""
    return _plot_sections(images, maps, ["channels"], path, layers, 0.5, "jet", None, dpi)


def plot_path_weights(images, maps, path=None, layers=None, dpi=100):
    """Selective Kernel: each layer's share of every path (stacked bars summing to one),
    averaged over channels, stages separated by dotted lines."""
    return _plot_sections(images, maps, ["paths"], path, layers, 0.5, "jet", None, dpi)


def plot_channel_affinity(images, maps, path=None, layers=None, dpi=100):
    """DANet channel attention matrices (C x C), one per layer."""
    return _plot_sections(images, maps, ["affinity"], path, layers, 0.5, "jet", None, dpi)


def plot_spatial_transformer(images, maps, path=None, layers=None, dpi=100):
    """Spatial transformer: the input, the sampling grid's outline (red; the dot marks the
    output's top-left corner) and some grid lines on it, the transformed image and theta."""
    return _plot_sections(images, maps, ["transformer"], path, layers, 0.5, "jet", None, dpi)


def plot_glimpses(images, maps, path=None, layers=None, dpi=100):
    """RAM: the glimpse centres joined in order, with each glimpse's patch at every scale
    (the finest solid)."""
    return _plot_sections(images, maps, ["glimpses"], path, layers, 0.5, "jet", None, dpi)


def plot_selected_patches(images, maps, path=None, layers=None, alpha=0.5, cmap="jet", value_range=None, dpi=100):
    """DCN: the boxes of the selected patches on the image and on the saliency map, and the
    patches themselves."""
    return _plot_sections(images, maps, ["patches"], path, layers, alpha, cmap, None, dpi, value_range)


def plot_attention_maps(
    images, maps, path=None, kind="auto", layers=None, alpha=0.5, cmap="jet", value_range=None, title=None, dpi=100
):
    """One figure of collected maps: with kind="auto" a section per kind of attention they
    hold (overlays, channel gates, path weights, channel affinities, transformer, glimpses,
    patches); or the named section(s) of `SECTIONS`."""
    if kind == "auto":
        sections = list(SECTIONS)
    else:
        sections = [kind] if isinstance(kind, str) else list(kind)
        unknown = [s for s in sections if s not in SECTIONS]
        if unknown:
            raise ValueError(f"unknown plot kind(s) {unknown}; expected 'auto' or one of {SECTIONS}")
    return _plot_sections(images, maps, sections, path, layers, alpha, cmap, title, dpi, value_range)


def plot_attention(
    model, images, path=None, kind="auto", layers=None, query=None, alpha=0.5, cmap="jet", value_range=None, dpi=100
):
    """Runs `model` on `images` and draws its attention (see `plot_attention_maps`).

    Args:
        model: a zoo model.
        images: one image (H, W, C) or a batch, preprocessed as the model expects.
        path: where to write the PNG (None: only return the figure).
        kind: "auto" or a section of `SECTIONS` ("overlay", "channels", ...).
        layers: layer names (or "layer/part" keys) to draw; default a sensible choice.
        query: (row, col) input pixel whose self-attention is drawn; default the centre.
        alpha, cmap, value_range: of the overlays (see `plot_overlays`).
        dpi: resolution of the PNG.
    """
    images = as_images(images)
    maps = collect_attention(model, images, layers=layers, query=query)
    if not maps:
        raise ValueError(f"{model.name} has no attention layers that hand back their maps")
    return plot_attention_maps(images, maps, path, kind, layers, alpha, cmap, value_range, title=model.name, dpi=dpi)


__all__ = [
    "SECTIONS",
    "as_images",
    "display_image",
    "normalize_map",
    "overlay",
    "plot_attention",
    "plot_attention_maps",
    "plot_channel_affinity",
    "plot_channel_weights",
    "plot_glimpses",
    "plot_overlays",
    "plot_path_weights",
    "plot_selected_patches",
    "plot_spatial_transformer",
    "save_figure",
    "select_maps",
]
