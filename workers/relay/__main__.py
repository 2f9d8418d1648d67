from credbatch.process import run_component
from workers.relay.main import serve

run_component("relay", serve)
