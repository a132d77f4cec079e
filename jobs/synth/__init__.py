"""The sample campaign's world: generators (pure: no Spark; they only write the media files they are asked to)
and the job that writes their tables to the lake.

* :mod:`jobs.synth.assets` — real offline material: the bundled photos and clips, found and loaded;
* :mod:`jobs.synth.products` — product listing photos (front and side views) per product and variant;
* :mod:`jobs.synth.footage` — people with their faces found, background clips and photos;
* :mod:`jobs.synth.casting` — which people, backgrounds and products each influencer's videos show (pe train's
  test influencers get a held-out cast);
* :mod:`jobs.synth.storyboard` — a seeded storyboard per video (shots, product track, captions, lighting);
* :mod:`jobs.synth.geometry` — the product's projected corners, polygon area and clipping, eased poses;
* :mod:`jobs.synth.layers` — the layers of a frame (background, person, product, captions, lighting) in I420;
* :mod:`jobs.synth.render` — the render loop: a storyboard to an MP4 and the per-second record of what is on
  screen;
* :mod:`jobs.synth.writer` — deterministic H.264/AAC MP4 writing (PyAV);
* :mod:`jobs.synth.truth` — per-second ground truth and true (product) engagement;
* :mod:`jobs.synth.engagement` — views, likes, comments, shares;
* :mod:`jobs.synth.sales` — the daily sales panel;
* :mod:`jobs.synth.campaign` — all of it for N videos, in parallel, as four pandas tables.

* :mod:`jobs.synth.sample` — the job (``pe sample``): the four tables into the lake, the first step of the flow.
"""
from jobs.synth.campaign import Campaign, CampaignSpec, SampleError, generate_campaign
from jobs.synth.sample import SampleSummary, run_sample

__all__ = ["Campaign", "CampaignSpec", "SampleError", "generate_campaign", "run_sample", "SampleSummary"]
