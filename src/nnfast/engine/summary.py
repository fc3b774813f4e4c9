"""Sequential.summary: the table of layers, output shapes and parameter counts."""
from __future__ import annotations


def print_summary(model, print_fn=print) -> None:
    """Print each layer of ``model`` with its output shape and parameter count.

    A model is built as soon as its input shape is known (declared by its first layer, given to
    build(), or read from the first data), so an unbuilt model shows "?" for what depends on it.
    """
    rows = [("Layer (type)", "Output shape", "Param #")]
    if model.built:
        # Param # counts the non-trainable weights too (BatchNormalization's moving statistics)
        plan = [(lay, lay.output_shape, lay.count_params() + lay.count_state())
                for lay in model.layers]
    else:
        plan = [(lay, None, None) for lay in model.layers]
    for layer, out, count in plan:
        rows.append((f"{layer.name} ({type(layer).__name__})",
                     "?" if out is None else "(" + ", ".join(map(str, (None, *out))) + ")",
                     "?" if count is None else str(count)))
    widths = [max(len(r[i]) for r in rows) + 3 for i in range(3)]
    line = "=" * sum(widths)
    print_fn(f'Model: "{model.name}"')
    for j, r in enumerate(rows):
        print_fn("".join(c.ljust(w) for c, w in zip(r, widths)))
        print_fn(line if j == 0 else "-" * sum(widths))
    if model.built:
        print_fn(f"Total params: {sum(c for _, _, c in plan):,}")
        if model._state.size:
            print_fn(f"Trainable params: {model._params.size:,}")
            print_fn(f"Non-trainable params: {model._state.size:,}")
        print_fn(f"dtype: {model.dtype}, parameter memory: {model._params.nbytes:,} bytes")
    else:
        print_fn("Total params: ? (input shape unknown)")
