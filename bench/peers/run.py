"""The benchmark's peer systems: the same two jobs as mr, in DuckDB, Polars and PySpark.

    python run.py SYSTEM JOB INPUT OUTPUT [--threads N] [--memory SIZE]

SYSTEM is duckdb, polars or pyspark; JOB is wordcount or groupby. `mr-bench` runs this as a child
process and times the whole process (interpreter start, imports and, for PySpark, the JVM).

Semantics, identical to mr's plugins/wordcount and plugins/groupby:

- wordcount: a word is a maximal run of ASCII letters and digits ([A-Za-z0-9]+), lowercased;
  output lines `word<TAB>count`.
- groupby: input lines `key,value` (value a decimal u64); output lines `key<TAB>count<TAB>sum`.

Output order does not matter (mr-bench sorts every system's output before comparing). The first
line on stdout is `version: NAME X.Y.Z`, which mr-bench shows in its table.
"""

import argparse
import os
import shutil
import sys

WORD = r"[A-Za-z0-9]+"


def duckdb_job(job, src, out, threads, memory):
    import duckdb

    print(f"version: DuckDB {duckdb.__version__}", flush=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    if memory:
        con.execute(f"SET memory_limit = '{memory}'")
    con.execute("SET preserve_insertion_order = false")
    if job == "wordcount":
        # One VARCHAR column per line: a separator and no quoting that never split a line.
        lines = (
            f"read_csv('{src}', columns = {{'line': 'VARCHAR'}}, header = false, "
            "delim = '\x01', quote = '', escape = '', auto_detect = false)"
        )
        query = f"""
            SELECT word, count(*) AS n FROM (
                SELECT lower(unnest(regexp_extract_all(line, '{WORD}'))) AS word FROM {lines}
            ) GROUP BY word"""
    else:
        rows = (
            f"read_csv('{src}', columns = {{'k': 'VARCHAR', 'v': 'UBIGINT'}}, header = false, "
            "delim = ',', quote = '', escape = '', auto_detect = false)"
        )
        query = f"SELECT k, count(*), sum(v) FROM {rows} GROUP BY k"
    con.execute(
        f"COPY ({query}) TO '{out}' (FORMAT csv, DELIMITER '\t', HEADER false, QUOTE '')"
    )


def polars_job(job, src, out, threads, memory):
    # Must be set before polars is imported.
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    print(f"version: Polars {pl.__version__}", flush=True)
    if job == "wordcount":
        lines = pl.scan_csv(
            src,
            has_header=False,
            separator="\x01",
            quote_char=None,
            schema={"line": pl.String},
        )
        query = (
            lines.select(pl.col("line").str.extract_all(WORD).alias("word"))
            .explode("word")
            .drop_nulls()
            .select(pl.col("word").str.to_lowercase())
            .group_by("word")
            .agg(pl.len().alias("n"))
        )
    else:
        rows = pl.scan_csv(
            src,
            has_header=False,
            separator=",",
            quote_char=None,
            schema={"k": pl.String, "v": pl.UInt64},
        )
        query = rows.group_by("k").agg(pl.len().alias("n"), pl.col("v").sum().alias("s"))
    query.sink_csv(out, separator="\t", include_header=False, quote_style="never")


def pyspark_job(job, src, out, threads, memory):
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    import pyspark

    print(f"version: PySpark {pyspark.__version__}", flush=True)
    spark = (
        SparkSession.builder.master(f"local[{threads}]")
        .appName(f"mr-bench {job}")
        .config("spark.driver.memory", memory or "2g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(4 * threads))
        .config("spark.sql.adaptive.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    gateway = spark.sparkContext._gateway
    try:
        if job == "wordcount":
            words = spark.read.text(src).select(
                F.explode(F.regexp_extract_all("value", F.lit(WORD), 0)).alias("w")
            )
            result = words.select(F.lower("w").alias("word")).groupBy("word").count()
        else:
            rows = spark.read.csv(src, schema="k STRING, v LONG", sep=",", quote="")
            result = rows.groupBy("k").agg(F.count("*"), F.sum("v"))
        result.write.csv(out, sep="\t", mode="overwrite", quote="", escape="")
    finally:
        spark.stop()
        # Let the JVM exit while we are still its parent, so that its CPU time and memory are
        # counted in this process tree (it exits when its stdin closes).
        proc = getattr(gateway, "proc", None)
        gateway.shutdown()
        if proc is not None:
            if proc.stdin:
                proc.stdin.close()
            proc.wait()


SYSTEMS = {"duckdb": duckdb_job, "polars": polars_job, "pyspark": pyspark_job}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("job", choices=["wordcount", "groupby"])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory", default=None, help="memory limit, e.g. 2GB (DuckDB), 2g (Spark)")
    args = parser.parse_args()
    if os.path.isdir(args.output):
        shutil.rmtree(args.output)
    elif os.path.exists(args.output):
        os.remove(args.output)
    SYSTEMS[args.system](args.job, args.input, args.output, args.threads, args.memory)


if __name__ == "__main__":
    sys.exit(main())
