from credbatch.process import run_component
from services.templates.main import serve

run_component("templates", serve)
