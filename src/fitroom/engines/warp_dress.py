"""The ``warp`` engine for dresses: the bodice as a top, the skirt as a skirt hung from the bodice's hem.

The product photo is cut at the dress's waist, found as the narrowest row of the torso's own run (sleeves that hang
beside it are not counted) between a third and three fifths of the way down the garment. The skirt is the part
below that row joined to the torso (a hanging sleeve's cuff, separate from it, stays with the bodice). The bodice
goes on as a top whose hem lies on the natural waist (``NATURAL_WAIST`` of the way from the neck to the hip
joints; :meth:`.warp.WarpEngine.top` with ``hem_at``), its widths scaled by its chest and its lengths by that
hem; the skirt then goes on as a skirt (:func:`.warp_lower.warp_lower`) at the bodice's scales, its waistband a
little above the bodice's hem and behind it, so no seam opens between them.

Whatever the person wore from the waist down (the lower part of a dress or a long top, trousers, a skirt) is
replaced by the skirt: where the skirt does not reach, the legs get skin and the rest the background, as for a
lower garment. The person's light is not carried onto a dress: a top above and trousers below are two garments
whose prints and edges would show through it (on rendered people SSIM is 0.001-0.004 higher without).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from fitroom import geometry
from fitroom.engines.warp_lower import hip_frame, leg_joints, warp_lower
from fitroom.inputs import InputsError, TryOnInputs, TryOnResult
from fitroom.labels import UPPER_GARMENT_LABELS, Body25, Cihp, GarmentCategory

#: where a dress's waist is looked for, as fractions of the garment's height from its top
WAIST_BAND = (0.33, 0.6)
#: the natural waist (where a dress's bodice ends), as a fraction of the way from the neck to the hip joints: a
#: dress sits higher than trousers' waistband (:func:`fitroom.preprocess.agnostic.waist_y`, four fifths)
NATURAL_WAIST = 0.69


def dress_parts(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Cut a dress's ``(H, W)`` bool mask at its waist: ``(bodice, skirt, waist row)``. The skirt is the part
    from the waist row down that is joined to the torso; everything else is the bodice.

    Raises:
        ValueError: when the mask is empty or has no torso at its centre.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("the garment mask is empty")
    top, bottom = int(ys.min()), int(ys.max())
    centre = int(round((xs.min() + xs.max()) / 2))
    height = bottom - top + 1
    best, waist = None, None
    for y in range(top + int(WAIST_BAND[0] * height), top + int(WAIST_BAND[1] * height) + 1):
        run = geometry.run_near(mask[y], centre)
        if run is not None and (best is None or run[1] - run[0] < best):
            best, waist = run[1] - run[0], y
    if waist is None:
        raise ValueError("the garment mask has no torso at its centre")
    below = mask.copy()
    below[:waist] = False
    labels, _ = ndimage.label(below)
    run = geometry.run_near(mask[waist], centre)
    skirt = labels == labels[waist, (run[0] + run[1]) // 2]
    return mask & ~skirt, skirt, waist


def warp_dress(engine, inputs: TryOnInputs) -> TryOnResult:
    """A dress on the person of ``inputs`` (see the module docstring); ``engine`` is the
    :class:`.warp.WarpEngine` whose chest ease applies (not its carried light: see the module docstring)."""
    try:
        bodice, skirt, _ = dress_parts(inputs.garment_mask)
    except ValueError as error:
        raise InputsError(f"the dress's photo cannot be read: {error}") from None
    keypoints = np.asarray(inputs.keypoints, float)
    frame = hip_frame(keypoints, inputs.parse, "a dress")  # the hips, neck and legs before anything
    leg_joints(keypoints, "a dress")
    # below the natural waist every garment the person wears goes with the skirt: the top pass leaves it alone
    parse = inputs.parse.copy()
    neck_y = keypoints[Body25.NECK, 1]
    waist = neck_y + NATURAL_WAIST * (frame.hip_y - neck_y)
    parse[(np.arange(parse.shape[0])[:, None] > waist) & np.isin(parse, UPPER_GARMENT_LABELS)] = Cihp.SKIRT
    top = engine.top(inputs.replace(parse=parse, garment_mask=bodice, category=GarmentCategory.UPPER),
                     hem_at=waist, bodice=True, shading=False)
    torso_body = np.asarray(top.extras["torso_body"])
    hem = torso_body[[3, 7]]  # the bodice's hem corners on the body
    hem_y = float(hem[:, 1].mean())
    overlap = 0.04 * float(np.hypot(*(hem[1] - hem[0])))
    frame.waist_y = hem_y - overlap
    frame.centre_x = float(hem[:, 0].mean())
    lower = warp_lower(inputs.replace(person=top.image, parse=top.parse, garment_mask=skirt,
                                      category=GarmentCategory.LOWER),
                       shading=False, frame=frame,
                       scale=(float(top.extras["scale"]), float(top.extras["length_scale"])))
    new_parse = lower.parse.copy()
    new_parse[new_parse == Cihp.UPPER_CLOTHES] = Cihp.DRESS  # after the top pass, every top pixel is the bodice
    new_parse[(new_parse == Cihp.SKIRT) & lower.warped_mask] = Cihp.DRESS
    warped = np.where(lower.warped_mask[..., None], lower.warped_garment, top.warped_garment)
    return TryOnResult(image=lower.image, engine="warp", warped_garment=warped,
                       warped_mask=top.warped_mask | lower.warped_mask, parse=new_parse,
                       timings=top.timings, extras={"waist_y": hem_y})
