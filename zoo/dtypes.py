"""The one rule by which Zoo converts an array to the dtype a model takes: values never change.

- A conversion is made when every value survives it exactly: int64 -> float32 for integers up to
  2**24, float16 -> float32, float -> int for whole numbers in range, int -> bool for 0 and 1.
- Floats may go to a narrower float type (float64 -> float32): values are rounded to the nearest
  representable one, as every framework does, but a finite value too large for the target
  (it would become Infinity) is refused.
- Anything else (a fraction to an int, 16777217 to float32, 300 to uint8, a complex number with an
  imaginary part to a real type, text to numbers) is refused with the first offending value.

`lossless_cast` returns the converted array, or the reason it refused; callers raise their own
error (`zoo.inference.InferenceInputError`, `zoo.serving.InputError`) with that reason.
"""

from __future__ import annotations

import warnings

import numpy as np


def lossless_cast(array: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray | None, str | None]:
    """``(converted, None)``, or ``(None, reason)`` when converting ``array`` to ``dtype`` would
    change a value (see the module docstring for the rule)."""
    dtype = np.dtype(dtype)
    source = array.dtype
    if source == dtype:
        return array, None
    if source.kind not in "biufc" or dtype.kind not in "biufc":
        return None, f"{source.name} values cannot be converted to {dtype.name}"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # ComplexWarning and invalid casts: judged below
        converted = array.astype(dtype)
        if source.kind == "f" and dtype.kind == "f":
            changed = np.isfinite(array) & ~np.isfinite(converted)
        else:
            back = converted.astype(source)
            changed = back != array
            if source.kind in "fc":
                changed &= ~(np.isnan(array) & np.isnan(back))
    if not changed.any():
        return converted, None
    index = tuple(int(i) for i in np.argwhere(changed)[0]) if array.ndim else ()
    before, after = _show(array[index]), _show(converted[index])
    where = f" at index {list(index)}" if index else ""
    if source.kind == "f" and dtype.kind == "f":
        return None, f"the value {before}{where} is too large for {dtype.name} (it would become {after})"
    return None, f"the value {before}{where} would become {after} in {dtype.name}"


def _show(value) -> str:
    return repr(value.item()) if isinstance(value, np.generic) else repr(value)
