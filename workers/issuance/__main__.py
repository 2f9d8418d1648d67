from credbatch.process import run_component
from workers.issuance.main import serve

run_component("issuance", serve)
