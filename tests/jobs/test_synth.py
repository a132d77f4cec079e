"""The sample-campaign generators (jobs/synth): real offline assets, geometry, compositing, truth, labels, sales.

Fast tests render hand-made storyboards at 180x320 with photo material only; whole campaigns (which load
the bundled clips too) are in the slow tests at the end.
"""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pandas as pd
import pytest

from jobs.synth.campaign import CampaignSpec, SampleError, generate_campaign
from jobs.synth.engagement import Influencer, engagement_counts
from jobs.synth.footage import person_asset
from jobs.synth.geometry import clip_polygon, polygon_area, product_quad
from jobs.synth.layers import ProductLayer
from jobs.synth.products import PRODUCT_KEYS, product_asset
from jobs.synth.render import render_video
from jobs.synth.sales import LIFT_PER_PE, sales_panel, true_lift
from jobs.synth.storyboard import SCENARIOS, Caption, ProductTrack, Shot, VideoPlan, _held_track, _prop_track
from jobs.synth.truth import video_truth
from jobs.synth.yuv import I420Frame, Planes

W, H, FPS = 180, 320, 30


def _track(start, end, cx=0.5, cy=0.55, w=0.5, yaw=0.0, pitch=0.0, roll=0.0, behind=False, moving=True):
    keys = [(start, cx, cy, w, yaw, pitch, roll)]
    if moving:
        keys.append(((start + end) // 2, cx + 0.1, cy - 0.05, w * 1.1, yaw + 20, pitch - 10, roll + 5))
    keys.append((end - 1, cx, cy, w, yaw, pitch, roll))
    return ProductTrack(start, end, "hero", np.array(keys, np.float64), behind, (1.0, 0.9))


def _plan(shots, tracks=(), captions=(), n_seconds=3, lighting=None, video_id="t"):
    if lighting is None:
        lighting = np.array([[0, 1.0, 1.0, 1.0], [n_seconds * FPS - 1, 0.8, 1.05, 0.95]])
    return VideoPlan(video_id, W, H, FPS, n_seconds * FPS, "test", tuple(shots), tuple(tracks), tuple(captions),
                     lighting, audio=False)


def _frames(plan, product, with_product=True):
    """Render without writing a file; return the Y plane of every sampled frame and the states."""
    ys = {}

    def hook(f, yuv):
        if f % FPS == 0:
            ys[f // FPS] = yuv[:H].copy()

    rendered = render_video(plan, product.listing, product.alpha, None, with_product=with_product, frame_hook=hook)
    return ys, rendered.seconds


# ---------------------------------------------------------------------------------------------- assets
@pytest.mark.parametrize("key", PRODUCT_KEYS)
def test_listing_is_the_object_on_a_white_background(key):
    p = product_asset(key)
    h, w = p.alpha.shape
    assert max(h, w) == 480 and p.listing.shape == (h, w, 3)
    border = np.concatenate([p.listing[0], p.listing[-1], p.listing[:, 0], p.listing[:, -1]])
    assert border.min() >= 250, "a seller's listing photo has a plain white background"
    assert (p.alpha[0] == 0).all() and (p.alpha[:, 0] == 0).all()
    assert 0.3 < (p.alpha > 127).mean() < 0.95
    inside = p.listing[p.alpha > 250]
    assert inside.std() > 25, "the object is a textured photo, not a flat patch"


@pytest.mark.parametrize("key", PRODUCT_KEYS)
def test_variants_are_distinct_skus_with_their_own_listing(key):
    base, other = product_asset(key), product_asset(key, 1)
    assert other.listing.shape == base.listing.shape and other.title != base.title
    assert np.abs(other.listing.astype(int) - base.listing.astype(int)).mean() > 3
    border = np.concatenate([other.listing[0], other.listing[-1], other.listing[:, 0], other.listing[:, -1]])
    assert border.min() >= 250


@pytest.mark.parametrize("key", PRODUCT_KEYS)
def test_products_are_matchable_by_sift_at_a_moderate_size(key):
    """Warped into a real frame at 35% of its width with perspective, SIFT + RANSAC recovers the corners."""
    p = product_asset(key)
    frame = I420Frame(360, 640)
    frame.fill(Planes.from_rgb(cv2.resize(person_asset("astronaut").frames[0], (360, 640))))
    prod = ProductLayer(p.listing, p.alpha)
    quad = product_quad(np.array([0.55, 0.6, 0.35, 25.0, -15.0, 8.0]), prod.aspect, 360, 640)
    assert prod.draw(frame, quad, 0.9) is not None
    sift = cv2.SIFT_create()
    k1, d1 = sift.detectAndCompute(cv2.cvtColor(p.listing, cv2.COLOR_RGB2GRAY), None)
    k2, d2 = sift.detectAndCompute(cv2.cvtColor(frame.rgb(), cv2.COLOR_RGB2GRAY), None)
    pairs = [m for m, n in cv2.BFMatcher().knnMatch(d1, d2, k=2) if m.distance < 0.75 * n.distance]
    src = np.float32([k1[m.queryIdx].pt for m in pairs])
    dst = np.float32([k2[m.trainIdx].pt for m in pairs])
    hmat, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
    assert hmat is not None and int(inliers.sum()) >= 10
    h, w = p.alpha.shape
    found = cv2.perspectiveTransform(np.float32([[[0, 0], [w, 0], [w, h], [0, h]]]), hmat)[0]
    assert np.abs(found - quad).max() < 6.0


def test_faces_are_found_in_the_people_footage():
    for key in ("astronaut", "hopper", "luispedro"):
        person = person_asset(key)
        x, y, w, h = person.faces[0]
        assert 60 < w < 300 and np.isfinite([x, y, w, h]).all()


# ---------------------------------------------------------------------------------------------- geometry
def test_product_quad_is_the_posed_rectangle():
    q = product_quad(np.array([0.5, 0.5, 0.5, 0, 0, 0]), 1.2, 360, 640)
    np.testing.assert_allclose(q, [[90, 212], [270, 212], [270, 428], [90, 428]], atol=1e-9)
    turned = product_quad(np.array([0.5, 0.5, 0.5, 30, 0, 0]), 1.2, 360, 640)
    left_h, right_h = turned[3, 1] - turned[0, 1], turned[2, 1] - turned[1, 1]
    assert turned[1, 0] - turned[0, 0] < 180 and left_h != pytest.approx(right_h)  # foreshortened, perspective


def test_clip_polygon_and_area():
    sq = np.array([[-10, -10], [10, -10], [10, 10], [-10, 10]], float)
    assert polygon_area(sq) == pytest.approx(400)
    assert polygon_area(clip_polygon(sq, 100, 100)) == pytest.approx(100)
    assert len(clip_polygon(sq + 500, 100, 100)) == 0


# ---------------------------------------------------------------------------------------------- compositing
def test_drawn_product_is_inside_its_truth_quad_and_absent_where_truth_says_absent():
    """Render the same storyboard with and without the product: every changed pixel lies in the truth
    quadrilateral (1 px of anti-aliasing), most of the quadrilateral changes, nothing changes where the
    truth says the product is absent."""
    product = product_asset("space-puzzle")
    shots = [Shot(0, 60, "talk", "astronaut", None, zoom=1.1, sway=(0.01, 0.005, 2.0)),
             Shot(60, 120, "broll", None, "brick", pan=(0.3, 0.4, 0.05, 0.02))]
    plan = _plan(shots, [_track(20, 80, yaw=-25, pitch=10, roll=-8)], n_seconds=4)  # on screen at t = 1, 2 s
    with_p, states = _frames(plan, product)
    without, _ = _frames(plan, product, with_product=False)
    truth = video_truth(states, W, H, product.alpha).seconds
    assert [t.quad_224 is not None for t in truth] == [False, True, True, False]
    for t in truth:
        diff = cv2.absdiff(with_p[t.second], without[t.second]) > 0
        if t.quad_224 is None:
            assert not diff.any() and not t.product_visible
            continue
        quad = np.array(t.quad_224).reshape(4, 2) * [W / 224, H / 224]
        inside = np.zeros((H, W), np.uint8)
        cv2.fillPoly(inside, [np.round(quad * 16).astype(np.int32)], 1, shift=4)
        grown = cv2.dilate(inside, np.ones((3, 3), np.uint8)) > 0
        assert diff.sum() > 0 and not (diff & ~grown).any(), "a drawn product pixel lies outside the truth quad"
        assert (diff & (inside > 0)).sum() > 0.5 * inside.sum() * product.alpha.mean() / 255
        assert t.product_visible and t.product_visible_share > 0.95


def test_decoded_video_shows_the_product_only_inside_the_quad(tmp_path):
    """Same check on the encoded MP4 (sampled frames are keyframes, so absent seconds decode identically)."""
    product = product_asset("rocket-kit")
    shots = [Shot(0, 90, "broll", None, "grass", pan=(0.5, 0.5, 0.04, 0.0))]
    plan = _plan(shots, [_track(30, 90, cx=0.45, w=0.55)], n_seconds=3)
    paths = [tmp_path / "with.mp4", tmp_path / "without.mp4"]
    r = render_video(plan, product.listing, product.alpha, paths[0])
    render_video(plan, product.listing, product.alpha, paths[1], with_product=False)
    truth = video_truth(r.seconds, W, H, product.alpha).seconds
    decoded = []
    for p in paths:
        cap = cv2.VideoCapture(str(p))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.int16))
        decoded.append(frames)
    assert len(decoded[0]) == len(decoded[1]) == 90
    for t in truth:
        diff = np.abs(decoded[0][t.second * FPS] - decoded[1][t.second * FPS])
        if t.quad_224 is None:
            assert diff.max() == 0
            continue
        quad = np.array(t.quad_224).reshape(4, 2) * [W / 224, H / 224]
        inside = np.zeros((H, W), np.uint8)
        cv2.fillPoly(inside, [np.round(quad).astype(np.int32)], 1)
        far = cv2.dilate(inside, np.ones((17, 17), np.uint8)) == 0  # beyond a macroblock from the quad
        # intra prediction carries faint quantisation noise across macroblocks; the product itself is far stronger
        assert diff[inside > 0].mean() > 20
        assert diff[far].max() <= 12 and (diff[far] > 4).mean() < 0.01


def test_occlusion_by_a_caption_and_by_the_person_window():
    product = product_asset("cat-food")
    track = _track(0, 60, cx=0.5, cy=0.5, w=0.5, moving=False)
    quad = product_quad(track.keys[0, 1:], product.alpha.shape[0] / product.alpha.shape[1], W, H)
    x0, y0 = quad.min(axis=0) / [W, H]
    x1, y1 = quad.max(axis=0) / [W, H]
    # a fully opaque sticker over the product's left half, second 1 only
    cap = Caption(30, 60, (x0 - 0.05, y0 - 0.05, (x1 - x0) / 2 + 0.05, y1 - y0 + 0.1), "covered", opacity=1.0)
    _, states = _frames(_plan([Shot(0, 60, "broll", None, "gravel")], [track], [cap], n_seconds=2), product)
    shares = [s.visible_share for s in states]
    assert shares[0] > 0.97 and 0.35 < shares[1] < 0.65
    # behind the person's window in a greenscreen shot
    shot = Shot(0, 30, "greenscreen", "hopper", "brick", window=(0.5, 0.5, 0.6))
    behind = ProductTrack(0, 30, "hero", track.keys, True, (1.0, 1.0))
    _, states = _frames(_plan([shot], [behind], n_seconds=1), product)
    front = ProductTrack(0, 30, "hero", track.keys, False, (1.0, 1.0))
    _, states_front = _frames(_plan([shot], [front], n_seconds=1), product)
    assert states[0].visible_share < 0.5 < states_front[0].visible_share
    assert states[0].face is not None


def test_rendering_is_deterministic(tmp_path):
    product = product_asset("coin-set")
    plan = _plan([Shot(0, 60, "talk", "hopper", None, zoom=1.2, sway=(0.01, 0.01, 1.5))], [_track(10, 60)], n_seconds=2)
    digests = []
    for name in ("a.mp4", "b.mp4"):
        render_video(plan, product.listing, product.alpha, tmp_path / name)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


# ---------------------------------------------------------------------------------------------- truth
def test_truth_tells_the_wrong_reason_from_the_product_showcase():
    product = product_asset("gift-box")
    talk = [Shot(0, 120, "talk", "astronaut", None, zoom=1.15, sway=(0.01, 0.005, 2.5))]
    corner = ProductTrack(0, 120, "corner", np.array([[0, 0.82, 0.82, 0.26, 5, 0, 0], [119, 0.82, 0.82, 0.26, 5, 0, 0]]))
    broll = [Shot(0, 120, "broll", None, "brick", pan=(0.2, 0.5, 0.03, 0.0))]
    _, wrong = _frames(_plan(talk, [corner], n_seconds=4), product)
    _, hero = _frames(_plan(broll, [_track(0, 120, w=0.6)], n_seconds=4), product)
    _, none = _frames(_plan(talk, [], n_seconds=4), product)
    tw, th, tn = (video_truth(s, W, H, product.alpha) for s in (wrong, hero, none))
    assert [s.driver for s in tw.seconds].count("face") >= 3
    assert [s.driver for s in th.seconds].count("product") >= 3
    assert tn.true_product_engagement == 0 and all(s.quad_224 is None for s in tn.seconds)
    assert tw.true_product_engagement < 0.3 < 0.6 < th.true_product_engagement
    for s in th.seconds:  # the product driver sits on the product
        quad = np.array(s.quad_224).reshape(4, 2)
        assert cv2.pointPolygonTest(quad.astype(np.float32), (s.driver_x, s.driver_y), False) >= 0
    e = np.array([s.drive for s in tw.seconds])
    tau = np.array([s.time_weight for s in tw.seconds])
    assert tw.true_engagement == pytest.approx((tau * e).sum() / tau.sum())
    assert tau[0] > tau[1] > tau[3]


def test_truth_follows_what_the_product_does_not_its_size():
    """A large product standing still beside a talking face carries little of the engagement; a small
    product swung through the centre of b-roll carries most of it; the truth region is the silhouette."""
    product = product_asset("espresso-cup")
    aspect = product.alpha.shape[0] / product.alpha.shape[1]
    rng = np.random.default_rng(3)
    talk = [Shot(0, 120, "talk", "astronaut", None, zoom=1.5, sway=(0.01, 0.005, 2.5))]
    broll = [Shot(0, 120, "broll", None, "grass", pan=(0.3, 0.5, 0.03, 0.0))]
    _, prop = _frames(_plan(talk, [_prop_track(rng, 0, 120, FPS, aspect)], n_seconds=4), product)
    _, held = _frames(_plan(broll, [_held_track(rng, 0, 120, FPS, aspect)], n_seconds=4), product)
    tp, th = video_truth(prop, W, H, product.alpha), video_truth(held, W, H, product.alpha)
    area = [np.mean([s.product_area_share for s in t.seconds]) for t in (tp, th)]
    assert area[0] > 2 * area[1]
    assert tp.true_product_engagement < 0.2 < 0.4 < th.true_product_engagement
    for s in tp.seconds:  # the silhouette: inside the listing rectangle, smaller than it (white margins)
        assert 0 < s.product_area_share < 0.95 * s.quad_area_share
        mask = cv2.imdecode(np.frombuffer(s.product_mask_png, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert mask.shape == (224, 224) and (mask > 0).mean() == pytest.approx(s.product_area_share, abs=0.01)


# ---------------------------------------------------------------------------------------------- labels, sales
def test_engagement_counts_follow_the_visual_drive():
    rng = np.random.default_rng(0)
    n = 3000
    e = np.linspace(0.5, 5.0, n)
    infl = [Influencer("i", "astronaut", 200_000, 0.0, 0.0)] * n
    c = engagement_counts(rng, e, infl)
    assert (c >= 0).all().all() and (c["shares"] <= c["views"]).all() and (c["likes"] <= c["views"]).all()
    rho = pd.Series(e).corr(np.log1p(c["shares"]), method="spearman")
    assert rho > 0.7
    big = engagement_counts(rng, np.full(500, 2.5), [Influencer("j", "hopper", 200_000, 1.0, 0.5)] * 500)
    small = engagement_counts(rng, np.full(500, 2.5), [Influencer("k", "hopper", 200_000, -1.0, -0.5)] * 500)
    assert big["views"].median() > 3 * small["views"].median()  # influencer effects


def test_sales_panel_shape_and_lift_follows_product_engagement():
    import datetime as dt

    rng = np.random.default_rng(1)
    n = 60
    pe = np.repeat([0.0, 0.3, 0.6], n // 3)
    products = pd.DataFrame({
        "product_id": [f"p{i}" for i in range(n)] + [f"c{i}" for i in range(n)],
        "price": rng.uniform(20, 200, 2 * n).round(1),
        "advertised_day": list(rng.integers(30, 71, n)) + [-1] * n,
        "lift": np.concatenate([true_lift(rng, pe), np.zeros(n)]),
    })
    panel = sales_panel(rng, products, dt.date(2024, 3, 1), 100)
    assert len(panel) == 2 * n * 100 and not panel.duplicated(["product_id", "date"]).any()
    assert (panel["daily_sales"] >= 0).all() and (panel["search_index"] == 0).mean() > 0.3
    assert not panel.loc[panel.product_id.str.startswith("c"), "advertised"].any()
    one = panel[panel.product_id == "p0"].reset_index(drop=True)
    day = (pd.to_datetime(one["date"]) - pd.Timestamp("2024-03-01")).dt.days
    assert (one["advertised"] == (day >= products["advertised_day"][0])).all()
    roll = one["rolling_sales_30d"].to_numpy()
    daily = one["daily_sales"].to_numpy()
    np.testing.assert_allclose(roll[31:] - roll[30:-1], daily[31:] - daily[1:-30], atol=0.02)
    # difference-in-differences per product against the controls' change: recovers ~300 * PE
    panel["post"] = panel["advertised"]
    ctrl = panel[panel.product_id.str.startswith("c")].groupby("date")["daily_sales"].mean()
    lifts = []
    for i in range(n):
        d = panel[panel.product_id == f"p{i}"].set_index("date")
        post = d["post"]
        resid = d["daily_sales"] - ctrl.loc[d.index]
        lifts.append(resid[post].mean() - resid[~post].mean())
    lifts = np.array(lifts)
    slope = np.polyfit(pe, lifts, 1)[0]
    assert 0.6 * LIFT_PER_PE < slope < 1.4 * LIFT_PER_PE
    assert np.corrcoef(pe, lifts)[0, 1] > 0.6


def test_unwritable_media_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SampleError) as e:
        generate_campaign(CampaignSpec(2, 1, min_seconds=2, max_seconds=2), blocker / "media")
    assert e.value.reason == "write_failed" and str(blocker / "media") in str(e.value)


def test_progress_lines_count_videos_and_frames_and_estimate_the_time_left():
    from jobs.synth.campaign import _progress_line

    assert _progress_line(1, 200, 1000, 228000, 12.0) == "rendered 1/200 videos (1,000/228,000 frames, 0%) in 12s"
    assert (_progress_line(50, 200, 57000, 228000, 40.0)
            == "rendered 50/200 videos (57,000/228,000 frames, 25%) in 40s, about 2m00s left")
    assert _progress_line(200, 200, 228000, 228000, 150.4) == "rendered 200/200 videos (228,000/228,000 frames, 100%) in 2m30s"


def test_impossible_specs_are_refused_with_a_reason():
    for spec, reason in [(CampaignSpec(0, 1), "bad_count"), (CampaignSpec(2, 1, width=361), "bad_size"),
                         (CampaignSpec(2, 1, min_seconds=5.2, max_seconds=5.8), "bad_duration"),
                         (CampaignSpec(2, 1, min_seconds=9, max_seconds=3), "bad_duration")]:
        with pytest.raises(SampleError) as e:
            spec.check()
        assert e.value.reason == reason


# ---------------------------------------------------------------------------------------------- campaigns (slow)
def _digests(paths):
    return [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths]


@pytest.mark.slow
def test_campaign_is_reproducible_and_decodes_to_the_declared_frames(tmp_path):
    spec = CampaignSpec(n_videos=4, seed=11, width=W, height=H, min_seconds=2, max_seconds=3, audio=True)
    a = generate_campaign(spec, tmp_path / "a", workers=2)
    b = generate_campaign(spec, tmp_path / "b", workers=1)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    # without video files (only the sampled frames composited): the same tables
    quick = generate_campaign(spec, tmp_path / "q", workers=1, write_videos=False)
    pd.testing.assert_frame_equal(a.truth, quick.truth)
    pd.testing.assert_frame_equal(a.sales, quick.sales)
    pd.testing.assert_frame_equal(a.labels.drop(columns="video_uri"), b.labels.drop(columns="video_uri"))
    pd.testing.assert_frame_equal(a.sales, b.sales)
    assert _digests(a.video_paths) == _digests(b.video_paths)
    assert _digests(a.listing_paths) == _digests(b.listing_paths)
    assert set(a.truth["scenario"]) <= set(SCENARIOS) and a.truth["scenario"].nunique() == 4
    declared = a.truth.groupby("video_id")["n_frames"].first()
    for path, vid in zip(a.video_paths, a.videos["video_id"]):
        cap = cv2.VideoCapture(path)
        n = 0
        while cap.read()[0]:
            n += 1
        assert abs(n - declared[vid]) <= 1 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == W
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30)
    c = generate_campaign(CampaignSpec(n_videos=1, seed=12, width=W, height=H, min_seconds=2, max_seconds=2),
                          tmp_path / "c", workers=1)
    assert _digests(c.video_paths)[0] != _digests(a.video_paths)[0]


# ---------------------------------------------------------------------------------------------- I420 compositing
@pytest.mark.parametrize("size", [(180, 320), (180, 322), (64, 66)])
def test_i420_planes_round_trip_colours_at_any_even_size(size):
    w, h = size
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2] = (200, 30, 40)  # red-ish left half, blue-ish right half
    rgb[:, w // 2:] = (20, 60, 210)
    frame = I420Frame(w, h)
    frame.fill(Planes.from_rgb(rgb))
    back = frame.rgb().astype(int)
    inner = np.r_[0: w // 2 - 2, w // 2 + 2: w]  # away from the edge the 2x2 chroma straddles
    assert np.abs(back[:, inner] - rgb[:, inner].astype(int)).max() <= 3
    assert frame.data.shape == (h * 3 // 2, w) and np.shares_memory(frame.v, frame.data)


def test_layers_blend_with_clipping_and_raise_the_occlusion_map():
    from jobs.synth.yuv import Layer, blend_layer

    frame = I420Frame(64, 64)
    frame.fill(Planes.from_rgb(np.full((64, 64, 3), 40, np.uint8)))
    alpha = np.zeros((20, 20), np.uint8)
    alpha[:, :10] = 255  # left half opaque, right half transparent
    layer = Layer.from_rgb(np.full((20, 20, 3), 230, np.uint8), alpha)
    occlusion = np.zeros((64, 64), np.uint8)
    blend_layer(frame, layer, -6, 50, occlusion)  # hangs over the left and bottom edges
    y0 = frame.y.copy()
    assert (y0[50:, :4] > 180).all() and (y0[50:, 5:] < 60).all() and (y0[:50] < 60).all()
    assert (occlusion[50:, :4] == 255).all() and occlusion[:50].max() == 0 and occlusion[:, 5:].max() == 0
    blend_layer(frame, layer, 100, 100, occlusion)  # entirely outside: nothing changes
    assert (frame.y == y0).all()
