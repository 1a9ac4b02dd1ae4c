"""MWAA's rules for the source bucket: versioning Enabled and every public access block
setting on. dagsync warns about a violation, or refuses to start with --strict."""

from __future__ import annotations

from typing import Any

from airflow_platform.dagsync.aws import error_code

PAB_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def check_bucket(client: Any, bucket: str) -> list[str]:
    """Each broken rule as one sentence naming the rule and the fix; [] when compliant."""
    problems: list[str] = []
    try:
        status = client.get_bucket_versioning(Bucket=bucket).get("Status", "")
        if status != "Enabled":
            problems.append(
                f"bucket {bucket}: versioning is {status or 'never enabled'}, MWAA requires "
                f"Enabled (fix: aws s3api put-bucket-versioning --bucket {bucket} "
                "--versioning-configuration Status=Enabled)"
            )
    except Exception as exc:
        problems.append(
            f"bucket {bucket}: cannot read versioning ({error_code(exc) or exc}); grant "
            "s3:GetBucketVersioning to the role"
        )
    fix = (
        f"aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration "
        "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,"
        "RestrictPublicBuckets=true"
    )
    try:
        config = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        off = [name for name in PAB_SETTINGS if not config.get(name)]
        if off:
            problems.append(
                f"bucket {bucket}: public access block settings off: {', '.join(off)}; MWAA "
                f"requires all four on (fix: {fix})"
            )
    except Exception as exc:
        if error_code(exc) == "NoSuchPublicAccessBlockConfiguration":
            problems.append(
                f"bucket {bucket}: no public access block configured; MWAA requires all four "
                f"settings on (fix: {fix})"
            )
        else:
            problems.append(
                f"bucket {bucket}: cannot read the public access block ({error_code(exc) or exc}); "
                "grant s3:GetBucketPublicAccessBlock to the role"
            )
    return problems
