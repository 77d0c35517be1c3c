"""FFT low-pass filters against the periodic patterns a GAN generator can paint into its output.

The FPT SRGAN report (seed 000, section III.5 and Fig. 12) removes such patterns by multiplying the
centred spectrum with an ideal circular mask; its future work proposes "a gradient in the mask" to
balance high and low frequencies. An ideal mask rings (its impulse response is a 2-D sinc), so
smoother masks are offered as well:

    ideal:R           1 inside radius R, 0 outside (the published mask)
    gaussian:S        exp(-r^2 / (2 S^2))
    butterworth:C,N   1 / (1 + (r / C)^(2N)), cutoff C, order N (N >= 1)
    gradient:R0,R1    1 up to R0, a linear ramp down to 0 at R1, 0 beyond (the report's future work)

Radii (R, S, C, R0, R1) are fractions of the Nyquist frequency (0.5 cycles per pixel) measured
isotropically in cycles per pixel, so a spec means the same thing for any image size: `ideal:0.5`
keeps the lower half of the frequencies of every axis, whatever the image's width and height.

Every mask is 1 at zero frequency, so the image mean (DC) is kept exactly, and the result is never
min-max re-normalised (the report's normalisation stretched each channel and shifted its colour);
values may overshoot [0, 1] slightly and are clipped only when written. The image is reflect-padded
before the FFT so that its borders do not wrap around into each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from srgan.errors import SrganError

KINDS = ("ideal", "gaussian", "butterworth", "gradient")
MAX_MARGIN = 64


@dataclass(frozen=True)
class LowPass:
    kind: str
    params: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{p:g}' for p in self.params)}"


def parse_lowpass(spec: str | LowPass | None) -> LowPass | None:
    """'none' | 'ideal:R' | 'gaussian:S' | 'butterworth:C,N' | 'gradient:R0,R1' -> LowPass (None for none)."""
    if spec is None or isinstance(spec, LowPass):
        return spec
    text = spec.strip().lower()
    if text in ("", "none"):
        return None
    kind, _, rest = text.partition(":")
    usage = "use none, ideal:R, gaussian:S, butterworth:C,N or gradient:R0,R1 (radii as fractions of Nyquist)"
    if kind not in KINDS:
        raise SrganError(f"unknown low-pass filter {spec!r}: {usage}")
    try:
        params = tuple(float(p) for p in rest.split(",")) if rest else ()
    except ValueError as exc:
        raise SrganError(f"low-pass {spec!r}: parameters must be numbers; {usage}") from exc
    expected = {"ideal": 1, "gaussian": 1, "butterworth": 2, "gradient": 2}[kind]
    if len(params) != expected:
        raise SrganError(f"low-pass {kind} takes {expected} parameter(s), got {len(params)} in {spec!r}; {usage}")
    if any(not math.isfinite(p) or p <= 0 for p in params):
        raise SrganError(f"low-pass {spec!r}: parameters must be positive numbers")
    if kind == "butterworth" and params[1] < 1:
        raise SrganError(f"low-pass {spec!r}: the Butterworth order must be at least 1")
    if kind == "gradient" and params[1] <= params[0]:
        raise SrganError(f"low-pass {spec!r}: the ramp must end (R1) beyond where it starts (R0)")
    return LowPass(kind, params)


def radial_frequency(height: int, width: int, *, onesided: bool = False) -> torch.Tensor:
    """|f| / f_Nyquist for each bin of an (height, width) FFT (width//2+1 columns when `onesided`)."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64) / 0.5
    fx = (torch.fft.rfftfreq if onesided else torch.fft.fftfreq)(width, dtype=torch.float64) / 0.5
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def lowpass_mask(spec: str | LowPass, height: int, width: int, *, onesided: bool = False) -> torch.Tensor:
    """The filter's transfer function on the (unshifted) FFT grid, float64, 1 at DC."""
    lp = parse_lowpass(spec)
    if lp is None:
        raise SrganError("no low-pass filter to build a mask for")
    r = radial_frequency(height, width, onesided=onesided)
    if lp.kind == "ideal":
        return (r <= lp.params[0]).double()
    if lp.kind == "gaussian":
        return torch.exp(-(r ** 2) / (2 * lp.params[0] ** 2))
    if lp.kind == "butterworth":
        cutoff, order = lp.params
        return 1.0 / (1.0 + (r / cutoff) ** (2 * order))
    r0, r1 = lp.params
    return ((r1 - r) / (r1 - r0)).clamp(0.0, 1.0)


def apply_lowpass(image: torch.Tensor, spec: str | LowPass | None) -> torch.Tensor:
    """Low-pass every channel of a float image (..., H, W); returns float32 of the same shape."""
    lp = parse_lowpass(spec)
    if lp is None:
        return image
    x = image.float()
    height, width = x.shape[-2:]
    lead = x.shape[:-2]
    x = x.reshape(-1, 1, height, width)
    mh, mw = min(MAX_MARGIN, height - 1), min(MAX_MARGIN, width - 1)
    if mh > 0 or mw > 0:
        x = F.pad(x, (mw, mw, mh, mh), mode="reflect")
    ph, pw = x.shape[-2:]
    spectrum = torch.fft.rfft2(x.double())
    spectrum *= lowpass_mask(lp, ph, pw, onesided=True)
    filtered = torch.fft.irfft2(spectrum, s=(ph, pw)).float()
    return filtered[..., mh:mh + height, mw:mw + width].reshape(*lead, height, width)
