"""jobs.executor_memory: the Python workers' budget from Spark settings, and the early one-line failure."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from jobs.executor_memory import ExecutorBudget, ExecutorMemoryError, executor_budget, plan_scoring_memory
from pe_udfs.settings import ClipSettings

GB = 2**30


def test_local_mode_shares_the_machine_with_the_driver():
    b = executor_budget({"spark.driver.memory": "4g"}, local=True, parallelism=2, machine_bytes=24 * GB)
    assert b == ExecutorBudget(2, 20 * GB, b.source)


def test_cluster_budget_prefers_pyspark_memory_then_overhead_then_the_default_overhead():
    conf = {"spark.executor.cores": "4", "spark.executor.memory": "16g"}
    assert executor_budget({**conf, "spark.executor.pyspark.memory": "8g"}, local=False, parallelism=99,
                           machine_bytes=0).bytes == 8 * GB
    assert executor_budget({**conf, "spark.executor.memoryOverhead": "3g"}, local=False, parallelism=99,
                           machine_bytes=0).bytes == 3 * GB
    default = executor_budget(conf, local=False, parallelism=99, machine_bytes=0)
    assert default.tasks == 4 and default.bytes == int(1.6 * GB)  # 10% of the executor memory
    assert executor_budget({**conf, "spark.task.cpus": "2"}, local=False, parallelism=99, machine_bytes=0).tasks == 2


def _champion(backbone: str = "tiny", seconds: int = 60):
    from models.network import build_engagement_net
    from models.settings import ModelSettings

    torch.manual_seed(0)
    net = build_engagement_net(ModelSettings(backbone=backbone), weights=None).eval()
    return SimpleNamespace(module=net, backbone=backbone, clip=ClipSettings(max_seconds=seconds))


def test_a_configuration_that_fits_passes_and_one_that_does_not_fails_in_one_line(cfg):
    champion = _champion()
    plan = plan_scoring_memory(cfg, champion, ExecutorBudget(4, 64 * GB, "spark.executor.pyspark.memory"))
    assert plan.seconds == 60 and plan.chunk == 8 and plan.needed == 4 * plan.per_task
    with pytest.raises(ExecutorMemoryError) as e:
        plan_scoring_memory(cfg, champion, ExecutorBudget(4, plan.needed - 1, "spark.executor.pyspark.memory"))
    message = str(e.value)
    assert "\n" not in message and "4 scoring tasks per executor" in message and "tiny" in message
    assert "spark.executor.pyspark.memory" in message and "saliency.frame_chunk" in message
    assert f"at least {-(-plan.needed // 2**30)}g with spark.executor.memoryOverhead" in message


def test_the_chunk_and_the_clip_window_change_the_need(cfg):
    champion = _champion("mobilenet_v2")
    roomy = ExecutorBudget(1, 10**15, "test")
    base = plan_scoring_memory(cfg, champion, roomy).per_task
    cfg.saliency.frame_chunk = 16
    assert plan_scoring_memory(cfg, champion, roomy).per_task > base
    assert plan_scoring_memory(cfg, _champion("mobilenet_v2", seconds=10), roomy).per_task < \
        plan_scoring_memory(cfg, champion, roomy).per_task


def test_the_cluster_example_fits_the_papers_backbone_on_60_second_clips():
    from jobs.config import REPO_ROOT, load_config

    cfg = load_config(str(REPO_ROOT / "conf" / "cluster.example.yaml"))
    budget = executor_budget(cfg.spark.conf, local=False, parallelism=0, machine_bytes=0)
    assert budget.tasks == 4 and budget.source == "spark.executor.memoryOverhead (spark.executor.pyspark.memory unset)"  # not pyspark.memory: see the example's note
    plan = plan_scoring_memory(cfg, _champion("xception", seconds=60), budget)
    assert plan.needed <= budget.bytes
