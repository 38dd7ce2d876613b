"""Experiments: one YAML file describes a run; the testbed runs it and reports.

spec     -- read and check an experiment file (errors name the line and field)
runner   -- run it: network up, timed steps (dmsc/actions/),
            recorders (calls, FIB changes, control frames, CPU and memory)
report   -- figures from the raw files, matplotlib plots, report.md
command  -- ``dmsc experiment FILE``: the rich progress bar around the runner
"""
