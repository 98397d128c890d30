"""Blob store adapter: templates, recipient files and kept mail, on local disk or in S3."""

from postroom.blobs.base import BlobStore, BlobWriter, PresignedUpload, open_blob_store

__all__ = ["BlobStore", "BlobWriter", "PresignedUpload", "open_blob_store"]
