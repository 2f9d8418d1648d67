from credbatch.process import run_component
from services.tenants.main import serve

run_component("tenants", serve)
