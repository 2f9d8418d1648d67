import gc

from credbatch.process import run_component
from workers.issuance.main import serve

# A group's jobs, rows, messages and tasks are many short-lived containers: at Python's
# default first threshold (700) the cycle collector ran about 80 times a 1,000 records and
# took 4% of a worker's CPU. Objects without cycles are freed by their reference counts
# whatever the threshold; only cyclic garbage waits longer (at most this many allocations).
gc.set_threshold(10_000, 20, 20)

run_component("issuance", serve)
