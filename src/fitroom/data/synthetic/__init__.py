"""The synthetic try-on renderer: people, garments, every modality, and unpaired ground truth."""

from fitroom.data.synthetic.render import Render, render_garment, render_person
from fitroom.data.synthetic.spec import GarmentSpec, PersonSpec, SampleSpec, sample_spec

__all__ = ["GarmentSpec", "PersonSpec", "Render", "SampleSpec", "render_garment", "render_person", "sample_spec"]
