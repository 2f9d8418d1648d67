from credbatch.process import run_component
from services.uploads.main import serve

run_component("uploads", serve)
