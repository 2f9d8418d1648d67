"""Certificate rendering benchmark: PDFs/s from one CompiledCertificate, per core and on all.

Each worker process compiles the template once (as an issuance worker does per batch) and
renders --count certificates with distinct values and Cred_URLs; a logo is included.

    python bench/certificates.py               # 1,000 per process, 1 process then os.cpu_count()
"""

from __future__ import annotations

import argparse
import io
import os
import time
from concurrent.futures import ProcessPoolExecutor

from PIL import Image

from credbatch.templating.certificate import CertificateLayout, CompiledCertificate

TITLE = "Certificate of {{ course }}"
BODY = (
    "This certifies that\n\n{{ given_name }} {{ family_name }}\n\n"
    "has completed {{ course }} with grade {{ grade }} on {{ issue_date }}.\n\n"
    "Issued by {{ issuer_name }}."
)


def _logo() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (400, 120), (30, 60, 150, 200)).save(out, "PNG")
    return out.getvalue()


def _render(count: int) -> float:
    certificate = CompiledCertificate(
        TITLE, BODY, CertificateLayout(logo=_logo(), logo_mime_type="image/png")
    )
    started = time.perf_counter()
    size = 0
    for i in range(count):
        values = {
            "course": "Advanced Welding",
            "given_name": f"Holder{i}",
            "family_name": "Example",
            "grade": "A",
            "issue_date": "2026-01-31",
            "issuer_name": "Example Issuer",
        }
        size += len(certificate.render(values, f"http://127.0.0.1:8000/c/{i:032x}"))
    assert size > 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="certificates per process")
    args = parser.parse_args()
    elapsed = _render(args.count)
    print(f"1 process: {args.count / elapsed:,.0f} certificates/s")
    processes = os.cpu_count() or 1
    with ProcessPoolExecutor(processes) as pool:
        started = time.perf_counter()
        list(pool.map(_render, [args.count] * processes))
        wall = time.perf_counter() - started
    total = args.count * processes
    print(f"{processes} processes: {total / wall:,.0f} certificates/s ({total} in {wall:.2f}s)")


if __name__ == "__main__":
    main()
