from credbatch.process import run_component
from services.batch_status.main import serve

run_component("batch_status", serve)
