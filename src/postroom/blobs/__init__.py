"""Blob store adapter: templates, recipient files and reports, on local disk (S3 later)."""

from postroom.blobs.base import BlobStore, BlobWriter, PresignedUpload, open_blob_store

__all__ = ["BlobStore", "BlobWriter", "PresignedUpload", "open_blob_store"]
