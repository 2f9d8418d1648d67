from credbatch.process import run_component
from services.uploads.main import serve

# Guarded: the validation pool's processes are spawned and import the main module again.
if __name__ == "__main__":
    run_component("uploads", serve)
