"""Does the scoring job fit its executors? Memory per scoring task against what Spark gives Python workers.

    champion's backbone ─► pe_udfs.memory.frame_footprint ─┐
    the run's ScoringPlan: scoring window (S frames), saliency.frame_chunk ─► worker_memory ─► bytes per task
    Spark conf ─► executor_budget ─► tasks per executor, bytes for their Python workers ─┘
                                                   need × tasks > budget ─► ExecutorMemoryError (one line)

Python workers live outside the executor's JVM heap: on YARN and Kubernetes their memory is
``spark.executor.pyspark.memory`` when set (Spark then also limits each worker to its share), else the
container's overhead (``spark.executor.memoryOverhead``, default max(384 MB, 10% of ``spark.executor.memory``)).
In local mode the workers share the machine with the driver's JVM.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from jobs.config import ConfigError
from pe_udfs.settings import ScoringPlan

__all__ = ["ExecutorMemoryError", "ExecutorBudget", "MemoryPlan", "executor_budget", "plan_scoring_memory"]


class ExecutorMemoryError(ConfigError):
    """The configured executors cannot hold their concurrent scoring tasks."""

    stage = "score"


@dataclass(frozen=True)
class ExecutorBudget:
    """tasks: scoring tasks running at once in one executor (local: on the machine); bytes: memory their Python
    workers may use together; source: where that number came from, for messages."""

    tasks: int
    bytes: int
    source: str


@dataclass(frozen=True)
class MemoryPlan:
    backbone: str
    seconds: int
    chunk: int
    per_task: int
    budget: ExecutorBudget

    @property
    def needed(self) -> int:
        return self.per_task * self.budget.tasks

    def line(self) -> str:
        from pe_udfs.memory import format_size

        return (f"{self.budget.tasks} scoring tasks per executor × {format_size(self.per_task)} each "
                f"({self.backbone}, {self.seconds}-s clips, frame chunk {self.chunk}) = {format_size(self.needed)}; "
                f"{self.budget.source} gives {format_size(self.budget.bytes)}")


def executor_budget(conf: dict[str, str], *, local: bool, parallelism: int, machine_bytes: int) -> ExecutorBudget:
    """Tasks per executor and the bytes their Python workers may use, from Spark settings (pure).

    ``conf``: the session's settings (missing keys take Spark's defaults); ``parallelism``: tasks at once in
    local mode; ``machine_bytes``: physical memory (local mode)."""
    from pe_udfs.memory import parse_size

    if local:
        driver = parse_size(conf.get("spark.driver.memory", "1g"))
        return ExecutorBudget(max(1, parallelism), max(0, machine_bytes - driver),
                              "this machine's memory less spark.driver.memory")
    tasks = max(1, int(conf.get("spark.executor.cores", "1")) // max(1, int(conf.get("spark.task.cpus", "1"))))
    if "spark.executor.pyspark.memory" in conf:
        return ExecutorBudget(tasks, parse_size(conf["spark.executor.pyspark.memory"]), "spark.executor.pyspark.memory")
    if "spark.executor.memoryOverhead" in conf:
        return ExecutorBudget(tasks, parse_size(conf["spark.executor.memoryOverhead"]),
                              "spark.executor.memoryOverhead (spark.executor.pyspark.memory unset)")
    heap = parse_size(conf.get("spark.executor.memory", "1g"))
    return ExecutorBudget(tasks, max(384 * 2**20, heap // 10),
                          "the default executor memory overhead (spark.executor.pyspark.memory unset)")


def plan_scoring_memory(plan: ScoringPlan, champion, budget: ExecutorBudget) -> MemoryPlan:
    """Memory per scoring task for ``champion`` (a registry LoadedModel: its backbone name and module) under the
    run's ``plan`` (the scoring window, not the shorter one the model may have trained on, and the saliency
    settings); raises :class:`ExecutorMemoryError` when ``budget`` cannot hold its tasks."""
    from pe_udfs.memory import format_size, frame_footprint, worker_memory
    from pe_udfs.saliency import CPU_FRAME_CHUNK

    clip = plan.clip
    seconds = plan.frames
    chunk = plan.saliency.frame_chunk or CPU_FRAME_CHUNK  # on a GPU the chunk's graph leaves host memory: an upper bound
    footprint = frame_footprint(champion.module.backbone, (clip.size, clip.size))
    match_w = clip.match_max_width
    per_task = worker_memory(footprint, seconds=seconds, chunk=min(chunk, seconds),
                             match_size=(match_w, math.ceil(match_w * 16 / 9)))  # worst case: 9:16 at the cap
    memory = MemoryPlan(champion.backbone, seconds, min(chunk, seconds), per_task, budget)
    if memory.needed > budget.bytes:
        # Not spark.executor.pyspark.memory: Spark enforces it as an address-space limit (RLIMIT_AS), and torch
        # reserves more address space than it uses, so `import torch` fails under any realistic value.
        fix = (f"give Python workers at least {math.ceil(memory.needed / 2**30)}g with spark.executor.memoryOverhead "
               "(and leave spark.executor.pyspark.memory unset: it is an address-space limit torch cannot live "
               "under)" if not budget.source.startswith("this machine") else "lower spark.master's core count")
        per_frame = format_size(footprint.graph_per_frame)
        raise ExecutorMemoryError("executor_memory", f"scoring cannot fit: {memory.line()}; {fix}, run fewer tasks per executor, or lower "
                                  f"saliency.frame_chunk (each frame of it ≈ {per_frame})")
    return memory


def machine_memory() -> int:
    """Physical memory of this machine in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
