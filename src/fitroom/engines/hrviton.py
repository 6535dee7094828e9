"""The ``hrviton`` engine: HR-VITON's inference, from ``TryOnInputs`` at any size.

Steps (``shared/reference/hrviton/README.md`` section 2.7):
1. tensors at the generator's working size (a multiple of 64 or 128 with the person's 4:3 canvas); the
   condition generator's inputs are down-sampled from them to 256x192 (cloth and DensePose bilinear, masks and
   parse nearest, on tensors as the reference and the trainer do) by :class:`~fitroom.models.hrviton.HrvitonTryOn`,
   which runs steps 2-5;
2. the condition generator: flows, layout logits, warped cloth and mask; condition aligning (the upper-cloth
   logit times the warped mask);
3. the layout up-sampled to full size, blurred (15x15 Gaussian, sigma 3), arg-maxed and regrouped to 7 classes;
4. the last flow up-sampled to full size warps the full-size cloth and mask; occlusion by body parts is removed
   with the blurred layout's probabilities; the cloth is composited on white;
5. the SPADE generator renders the person from (agnostic person, DensePose, warped cloth) and the layout;
6. the result is resized back to the photo's size, and every pixel of ``inputs.keep`` is copied back from the
   photo.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from fitroom import imaging
from fitroom.engines import register_engine
from fitroom.errors import ConfigurationError
from fitroom.inputs import InputsError, TryOnInputs, TryOnResult
from fitroom.labels import CONDITION_SIZE, View
from fitroom.models.hrviton import ConditionGenerator, HrvitonTryOn, SPADEGenerator
from fitroom.models.io import load_parts

#: the parts of an hrviton checkpoint folder
PARTS = ("condition_generator", "generator")


def working_size(generator: SPADEGenerator, requested: tuple[int, int] | None) -> tuple[int, int]:
    if requested is not None:
        return requested
    return (1024, 768) if generator.config.num_upsampling_layers == "most" else CONDITION_SIZE


@register_engine("hrviton")
class HrvitonEngine:
    """HR-VITON try-on.

    Args:
        checkpoint: a folder with ``condition_generator/`` and ``generator/`` model folders (``fitroom convert
            hrviton`` or ``fitroom train generator`` makes them), or a folder with ``front/`` and ``back/`` such
            folders: two per-view models, each photo handled by its view's.
        condition_generator, generator: already built networks instead of a checkpoint (tests use tiny ones).
        size: the generator's working ``(H, W)`` (default 1024x768 for a 7-up-sampling generator, else 256x192).
        device: where to run.
    """

    def __init__(self, checkpoint: str | Path | None = None, condition_generator: ConditionGenerator | None = None,
                 generator: SPADEGenerator | None = None, size: tuple[int, int] | None = None,
                 device: str = "cpu") -> None:
        self.per_view: dict[View, HrvitonEngine] = {}
        views = [v for v in View if checkpoint is not None and (Path(checkpoint) / v.value).is_dir()]
        if views:
            # per-view models (front/, back/, ... each a checkpoint folder): each photo goes to its view's model
            self.per_view = {v: HrvitonEngine(Path(checkpoint) / v.value, size=size, device=device) for v in views}
            self.size = self.per_view[views[0]].size
            return
        if checkpoint is not None:
            parts = load_parts(checkpoint, PARTS, "the hrviton engine needs a checkpoint folder with "
                               "condition_generator/ and generator/, made by `fitroom convert hrviton "
                               "--condition-generator mtviton.pth --generator gen.pth --out DIR` from the official "
                               "release, or by `fitroom train generator`")
            condition_generator, generator = parts["condition_generator"], parts["generator"]
        if condition_generator is None or generator is None:
            raise ConfigurationError("the hrviton engine needs a checkpoint folder (--checkpoint DIR, or "
                                     "FITROOM_CHECKPOINT for the service): one made by `fitroom train condition` and "
                                     "`fitroom train generator`, or by `fitroom convert hrviton` from the official "
                                     "release")
        self.device = torch.device(device)
        self.model = HrvitonTryOn(condition_generator, generator).to(self.device).eval()
        self.size = working_size(generator, size)

    @property
    def condition_generator(self) -> ConditionGenerator:
        return self.model.condition_generator

    @property
    def generator(self) -> SPADEGenerator:
        return self.model.generator

    @torch.no_grad()
    def __call__(self, inputs: TryOnInputs) -> TryOnResult:
        if self.per_view:
            if inputs.view not in self.per_view:
                raise InputsError(f"this checkpoint has models for the {', '.join(v.value for v in self.per_view)} "
                                  f"view(s), not for {inputs.view.value}")
            return self.per_view[inputs.view](inputs)
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def tick(step: str) -> None:
            nonlocal clock
            timings[step] = time.perf_counter() - clock
            clock = time.perf_counter()

        # 1. tensors at the working size (the module down-samples the condition generator's inputs itself)
        for field in ("garment", "garment_mask", "dense", "agnostic", "parse_agnostic"):
            if getattr(inputs, field) is None:
                raise InputsError(f"the hrviton engine needs {field} (the preprocessing makes it)")
        full = {k: v[None].to(self.device) if v.ndim else v for k, v in inputs.to_tensors(self.size).items()}
        view = full["view"].reshape(1).to(self.device)
        tick("inputs")

        # 2.-4. condition generator, condition aligning, full-size layout and warp, occlusion removal
        conditions = self.model.conditions(full["garment"], full["garment_mask"], full["parse_agnostic"],
                                           full["dense"], view)
        warped_cloth, warped_mask = conditions["warped_cloth"], conditions["warped_mask"]
        tick("condition and warp")

        # 5. the image generator
        x = self.model.generator_input(full["agnostic"], full["dense"], warped_cloth, view)
        image = self.generator(x, conditions["seg7"])
        tick("generator")

        # 6. back to the photo's size; what the preprocessing protects (face, hair, hands, background) comes back
        #    from the photo itself
        size = inputs.size
        result = inputs.restore_kept(imaging.resize(imaging.tensor_to_image(image[0].float().cpu()), size, "image"))
        warped_image = imaging.resize(imaging.tensor_to_image(warped_cloth[0].float().cpu()), size, "image")
        mask = imaging.resize(warped_mask[0, 0].cpu().numpy() > 0.5, size, "mask")
        tick("output")
        return TryOnResult(image=result, engine="hrviton", warped_garment=warped_image, warped_mask=mask,
                           timings=timings,
                           extras={"layout13": imaging.resize(conditions["layout13"][0].byte().cpu().numpy(), size,
                                                              "labels")})
