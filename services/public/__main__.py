from credbatch.process import run_component
from services.public.main import serve

run_component("public", serve)
