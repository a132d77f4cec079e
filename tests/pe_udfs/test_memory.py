"""pe_udfs.memory: a backbone's per-frame footprint measured on a network whose saved tensors are known, and
the per-video estimate's arithmetic."""
from __future__ import annotations

import pytest
from torch import nn

from pe_udfs.memory import (
    WORKER_BASE_BYTES,
    FrameFootprint,
    chunk_for_budget,
    format_size,
    frame_footprint,
    parse_size,
    video_memory,
    worker_memory,
)


def test_footprint_of_conv_relu_counts_what_autograd_keeps_for_the_input_gradient():
    """Conv2d(3→4, 3×3, no bias) then ReLU on an 8×8 frame: the convolution keeps its input (the frame itself,
    counted with the clip) and its weight (counted once as weights); ReLU keeps its output, 4·8·8 float32."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU())
    fp = frame_footprint(net, (8, 8))
    assert fp.saved == 4 * 8 * 8 * 4
    assert fp.largest_activation == 4 * 8 * 8 * 4 and fp.features == 4 * 8 * 8 * 4
    assert fp.weights == 4 * 3 * 3 * 3 * 4
    assert frame_footprint(net, (8, 8)) is fp  # cached per module and size


def test_footprint_grows_with_depth():
    one = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    two = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
    # the second block keeps the first ReLU's output as its conv input (same storage) plus its own ReLU output
    assert frame_footprint(two, (8, 8)).saved == 2 * frame_footprint(one, (8, 8)).saved


FP = FrameFootprint(name="toy", size=(224, 224), saved=80 * 2**20, largest_activation=4 * 2**20,
                    features=320 * 49 * 4, weights=9 * 2**20)


def test_video_memory_is_one_chunk_of_graph_plus_per_second_terms():
    small, large = video_memory(FP, seconds=30, chunk=8), video_memory(FP, seconds=60, chunk=8)
    assert small.chunk_graph == large.chunk_graph == 8 * FP.graph_per_frame
    assert large.clip == 2 * small.clip and large.match_frames == 2 * small.match_frames
    assert large.total - small.total == small.clip + small.features + small.match_frames
    assert video_memory(FP, seconds=3, chunk=8).chunk_graph == 3 * FP.graph_per_frame  # a chunk ≤ the clip
    with pytest.raises(ValueError):
        video_memory(FP, seconds=0, chunk=8)


def test_chunk_for_budget_is_the_largest_chunk_that_fits():
    budget = video_memory(FP, seconds=60, chunk=5).total
    assert chunk_for_budget(FP, budget, seconds=60) == 5
    assert chunk_for_budget(FP, budget - 1, seconds=60) == 4
    assert chunk_for_budget(FP, 10**15, seconds=60, max_chunk=16) == 16
    assert chunk_for_budget(FP, 0, seconds=60) == 1


def test_worker_memory_adds_base_weights_and_a_waiting_video():
    one = video_memory(FP, seconds=10, chunk=4, match_size=(360, 640)).total
    alone = worker_memory(FP, seconds=10, chunk=4, prefetch=0, match_size=(360, 640))
    assert alone == WORKER_BASE_BYTES + FP.weights + one
    waiting = 10 * (224 * 224 * 3 + 360 * 640 * 3)  # a decoded video's uint8 model and match frames
    assert worker_memory(FP, seconds=10, chunk=4, prefetch=1, match_size=(360, 640)) == \
        WORKER_BASE_BYTES + FP.weights + one + waiting


@pytest.mark.parametrize("text,expected", [("16g", 16 * 2**30), ("512m", 512 * 2**20), ("4096", 4096 * 2**20),
                                           ("1.5g", int(1.5 * 2**30)), ("2GB", 2 * 2**30)])
def test_parse_size_reads_spark_memory_strings(text, expected):
    assert parse_size(text) == expected


def test_parse_size_rejects_garbage_and_format_size_rounds():
    with pytest.raises(ValueError):
        parse_size("lots")
    assert format_size(3 * 2**29) == "1.5 GB" and format_size(380 * 2**20) == "380 MB"
