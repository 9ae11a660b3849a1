#!/usr/bin/python3
"""Runs Debian's Snakemake with a raised recursion limit and a big thread stack.

Snakemake builds its DAG recursively and stops at Python's default limit (1,000 frames) on a
1,000-task chain ("RecursionError ... Problematic file pattern: out/t511"). Arguments pass
through to snakemake; the exit status is Snakemake's.
"""
import sys
import threading

sys.setrecursionlimit(1000000)
threading.stack_size(512 << 20)
status = [1]


def run():
    from snakemake import main
    try:
        main(sys.argv[1:])
        status[0] = 0
    except SystemExit as e:
        status[0] = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)


t = threading.Thread(target=run)
t.start()
t.join()
sys.exit(status[0])
