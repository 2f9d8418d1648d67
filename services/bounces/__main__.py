from credbatch.process import run_component
from services.bounces.main import serve

run_component("bounces", serve)
