from credbatch.process import run_component
from workers.webhooks.main import serve

run_component("webhooks_dispatcher", serve)
