"""Settings every S3-compatible object store accepts. Since 2025 the AWS SDKs (boto3 for MLflow's
artifacts, the C++ SDK inside pyarrow for Ray's storage) send checksum trailers with uploads by
default; MinIO releases before 2025 and Ceph radosgw refuse them (``HTTP 411
MissingContentLength``). Asking for checksums only where an operation requires one works with
AWS S3 too. A value the user set wins."""

from __future__ import annotations

import os

S3_COMPAT_ENV = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "WHEN_REQUIRED",
}


def apply() -> dict[str, str]:
    """Sets the defaults in this process (children inherit them); returns the values in force,
    for the environment of Ray workers started by another process (a cluster's nodes)."""
    for key, value in S3_COMPAT_ENV.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in S3_COMPAT_ENV}
