"""The platform's storage location as a Prefect block, so both sides read one definition."""

from __future__ import annotations

from functools import lru_cache

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from core.settings import Settings
from core.storage import Storage


class StorageLocation(Block):
    """Where the platform keeps artifacts, arguments, results, logs and user files.

    Saved by the gateway at start as the block `<work pool>-storage`; the flows load
    it, so both sides read one definition (visible under Blocks in the Prefect UI).
    """

    _block_type_name = "Qiskit Serverless Storage"
    _description = "fsspec storage root of the Qiskit Serverless platform (file://, s3://, …)."

    url: str = Field(description="fsspec URL of the storage root, e.g. s3://bucket/prefix.")
    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, Ceph, …).")
    key: str | None = None
    secret: SecretStr | None = None
    region: str | None = None

    def storage(self) -> Storage:
        options: dict[str, object] = {}
        if self.url.startswith("s3://"):
            # us-east-1 is S3's default; naming it makes s3fs send a LocationConstraint S3 refuses.
            regional = self.region not in (None, "", "us-east-1")
            client_kwargs = {"region_name": self.region} if regional else {}
            options = {"endpoint_url": self.endpoint_url, "key": self.key, "client_kwargs": client_kwargs}
            if self.secret is not None:
                options["secret"] = self.secret.get_secret_value()
            options = {name: value for name, value in options.items() if value not in (None, {})}
            # Jobs on other nodes write here too: a cached listing would hide their files.
            options["use_listings_cache"] = False
        return Storage(self.url, **options)


def block_name(settings: Settings) -> str:
    """One storage block per platform instance (instances sharing a Prefect server differ by work pool)."""
    return f"{settings.work_pool}-storage"


def location_from_settings(settings: Settings) -> StorageLocation:
    return StorageLocation(
        url=settings.storage_root,
        endpoint_url=settings.s3_endpoint_url,
        key=settings.s3_key,
        secret=settings.s3_secret,
        region=settings.s3_region,
    )


@lru_cache
def platform_storage(name: str) -> Storage:
    """The storage registered under this block name (flows side; one Storage per process and block)."""
    location = StorageLocation.load(name)
    assert isinstance(location, StorageLocation)
    return location.storage()
