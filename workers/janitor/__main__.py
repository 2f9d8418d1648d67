from credbatch.process import run_component
from workers.janitor.main import serve

run_component("janitor", serve)
