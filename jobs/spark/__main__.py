"""``python -m jobs.spark install`` puts the JARs every session loads in place (``make install`` runs it): Delta's
(:mod:`jobs.spark.delta_jars`) and the SQL guard's, compiled here (:mod:`jobs.spark.guard_jar`).
``python -m jobs.spark path`` prints the Delta JARs comma-separated, for ``spark-submit --jars``."""
from __future__ import annotations

import sys

from jobs.spark import delta_jars, guard_jar
from pe_udfs.errors import PEError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] == ["install"]:
            for path in delta_jars.install():
                print(f"delta jar: {path}")
            print(f"sql guard jar: {guard_jar.build()}")
        elif args[:1] == ["path"]:
            print(",".join(delta_jars.jar_paths()))
        else:
            print("usage: python -m jobs.spark install | path", file=sys.stderr)
            return 2
    except PEError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
