"""jobs.scoring.executor_memory: the Python workers' budget from Spark settings, and the early one-line failure."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from jobs.scoring.executor_memory import ExecutorBudget, ExecutorMemoryError, executor_budget, plan_scoring_memory
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


def _plan(cfg, champion, budget):
    """The memory plan as `pe score` makes it: from the run's scoring plan over the champion's saved clip."""
    return plan_scoring_memory(cfg.scoring_plan(champion.clip), champion, budget)


def test_a_configuration_that_fits_passes_and_one_that_does_not_fails_in_one_line(cfg):
    champion = _champion()
    plan = _plan(cfg, champion, ExecutorBudget(4, 64 * GB, "spark.executor.pyspark.memory"))
    assert plan.seconds == 60 and plan.chunk == 8 and plan.needed == 4 * plan.per_task
    with pytest.raises(ExecutorMemoryError) as e:
        _plan(cfg, champion, ExecutorBudget(4, plan.needed - 1, "spark.executor.pyspark.memory"))
    message = str(e.value)
    assert "\n" not in message and "4 scoring tasks per executor" in message and "tiny" in message
    assert "spark.executor.pyspark.memory" in message and "saliency.frame_chunk" in message
    assert f"at least {-(-plan.needed // 2**30)}g with spark.executor.memoryOverhead" in message


def test_the_chunk_and_the_scoring_window_change_the_need(cfg):
    champion = _champion("mobilenet_v2")
    roomy = ExecutorBudget(1, 10**15, "test")
    base = _plan(cfg, champion, roomy).per_task
    cfg.saliency.frame_chunk = 16
    assert _plan(cfg, champion, roomy).per_task > base
    shorter = cfg.model_copy(update={"clip": cfg.clip.model_copy(update={"max_seconds": 10})})
    assert _plan(shorter, champion, roomy).per_task < _plan(cfg, champion, roomy).per_task


def test_a_model_trained_on_10_s_is_planned_for_the_60_s_it_scores(cfg):
    """train.max_seconds lowers the clip the model is saved with; scoring raises the window to clip.max_seconds
    again, so the memory per task is that of 60-s clips, as for a model trained on 60 s."""
    roomy = ExecutorBudget(1, 10**15, "test")
    trained_short, trained_long = _champion("mobilenet_v2", seconds=10), _champion("mobilenet_v2", seconds=60)
    plan = _plan(cfg, trained_short, roomy)
    assert cfg.clip.max_seconds == 60 and plan.seconds == 60
    assert plan.per_task == _plan(cfg, trained_long, roomy).per_task


def test_the_cluster_example_fits_the_papers_backbone_on_60_second_clips():
    from jobs.config import REPO_ROOT, load_config

    cfg = load_config(str(REPO_ROOT / "conf" / "cluster.example.yaml"))
    budget = executor_budget(cfg.spark.conf, local=False, parallelism=0, machine_bytes=0)
    assert budget.tasks == 4 and budget.source == "spark.executor.memoryOverhead (spark.executor.pyspark.memory unset)"  # not pyspark.memory: see the example's note
    plan = _plan(cfg, _champion("xception", seconds=10), budget)  # however short the training window
    assert plan.needed <= budget.bytes
