from credbatch.process import run_component
from services.signer.main import serve

run_component("signer", serve)
