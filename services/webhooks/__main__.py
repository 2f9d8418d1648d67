from credbatch.process import run_component
from services.webhooks.main import serve

run_component("webhooks", serve)
