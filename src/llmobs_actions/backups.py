"""The backup bucket: where exports are written (S3 multipart uploads of gzipped JSON Lines, and a manifest
beside them) and read back, each call bounded by what the invocation has left.

An export of a dataset version lives under `{BACKUP_PREFIX}{project_id}/{dataset_id}/v{version}/`:
`records.jsonl.gz` (one record a line, as the records API gives it) and `manifest.json` (format, site,
project, dataset, version, record count, sha256 of the records object, exported_at). The records object is
a series of gzip members, one per part: a gzip reader reads them as one file, and a part, once uploaded,
never has to be compressed again, whichever invocation uploads the next.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from llmobs_actions.aws_clients import AwsClients, Bounds
from llmobs_actions.failures import BackupNotConfiguredError, BackupRejectedError, BackupUnavailableError

FORMAT = "llmobs-actions.dataset-export.v1"
RECORDS_OBJECT, MANIFEST_OBJECT = "records.jsonl.gz", "manifest.json"
# S3 takes parts of 5 MiB or more, except the last, and at most 10,000 of them. 8 MiB parts keep 10,000
# records of 2 KB in about one part after compression, and a 100,000-record export far under the part limit.
PART_BYTES = 8 * 1024 * 1024
MAX_PARTS = 10_000
# A part of 8 MiB goes in well under a second on Lambda; the bound leaves room for a slow one.
S3_BOUNDS = Bounds(connect_timeout=2, read_timeout=20, max_attempts=2)
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "NoSuchBucket", "InvalidAccessKeyId", "KMS.AccessDeniedException"}


@dataclass(frozen=True)
class Part:
    number: int
    etag: str


class Bucket:
    """The backup bucket and key prefix of this deployment."""

    def __init__(self, name: str, prefix: str, clients: AwsClients | None = None, site: str = "datadoghq.com") -> None:
        self.name, self.prefix, self.site = name, prefix, site
        self._clients = clients or AwsClients()

    def folder(self, project_id: str, dataset_id: str, version: int) -> str:
        return f"{self.prefix}{project_id}/{dataset_id}/v{version}/"

    def uri(self, key: str, bucket: str | None = None) -> str:
        return f"s3://{bucket or self.name}/{key}"

    def manifest(self, key: str, seconds_left: float, bucket: str | None = None) -> dict[str, Any] | None:
        """The manifest at `key`, or None when there is none."""
        try:
            answer = self._s3(seconds_left).get_object(Bucket=bucket or self.name, Key=key)
            document = json.loads(answer["Body"].read())
        except ValueError:
            raise BackupRejectedError(f"{self.uri(key, bucket)} is not a manifest (not JSON)") from None
        except Exception as error:
            if _code(error) in _NOT_FOUND:
                return None
            raise _unavailable(error, f"reading {self.uri(key, bucket)} (is it there?)") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BackupRejectedError(f"{self.uri(key, bucket)} is not an llmobs-actions export manifest")
        return document

    def exported(self, folder: str, seconds_left: float) -> dict[str, Any] | None:
        """The manifest of the export in `folder`, or None. Whether it is there is asked by listing: the role
        may list only its prefix, and S3 answers a GetObject of a missing key with 403, not 404, to a caller
        that may not list the whole bucket."""
        key = folder + MANIFEST_OBJECT
        try:
            listed = self._s3(seconds_left).list_objects_v2(Bucket=self.name, Prefix=key, MaxKeys=1)
        except Exception as error:
            raise _unavailable(error, f"listing {self.uri(key)}") from None
        if not any(item.get("Key") == key for item in listed.get("Contents", [])):
            return None
        return self.manifest(key, seconds_left)

    def exported_versions(self, project_id: str, dataset_id: str, seconds_left: float) -> set[int]:
        """The versions of a dataset whose manifest is in the bucket (an export is complete once it is)."""
        prefix = f"{self.prefix}{project_id}/{dataset_id}/"
        found: set[int] = set()
        try:
            pages = self._s3(seconds_left).get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    folder, _, name = str(item["Key"])[len(prefix) :].partition("/")
                    if name == MANIFEST_OBJECT and folder.startswith("v") and folder[1:].isdigit():
                        found.add(int(folder[1:]))
        except Exception as error:
            raise _unavailable(error, f"listing {self.uri(prefix)}") from None
        return found

    def start_upload(self, key: str, seconds_left: float) -> str:
        try:
            answer = self._s3(seconds_left).create_multipart_upload(
                Bucket=self.name, Key=key, ContentType="application/x-ndjson", ContentEncoding="gzip"
            )
        except Exception as error:
            raise _unavailable(error, f"starting the upload of {self.uri(key)}") from None
        return str(answer["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, seconds_left: float) -> Part:
        if number > MAX_PARTS:
            raise BackupRejectedError(f"{self.uri(key)} would need more than {MAX_PARTS} parts")
        digest = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            answer = self._s3(seconds_left).upload_part(
                Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=number, Body=data, ContentMD5=digest
            )
        except Exception as error:
            raise _unavailable(error, f"uploading part {number} of {self.uri(key)}") from None
        return Part(number, str(answer["ETag"]))

    def complete(self, key: str, upload_id: str, parts: list[Part], seconds_left: float) -> None:
        try:
            self._s3(seconds_left).complete_multipart_upload(
                Bucket=self.name,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
            )
        except Exception as error:
            raise _unavailable(error, f"completing the upload of {self.uri(key)}") from None

    def abort(self, key: str, upload_id: str, seconds_left: float) -> None:
        try:
            self._s3(seconds_left).abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
        except Exception:  # the bucket's lifecycle rule aborts what is left after a week
            return

    def put_manifest(self, key: str, manifest: dict[str, Any], seconds_left: float) -> None:
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        digest = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        try:
            self._s3(seconds_left).put_object(
                Bucket=self.name, Key=key, Body=body, ContentMD5=digest, ContentType="application/json"
            )
        except Exception as error:
            raise _unavailable(error, f"writing {self.uri(key)}") from None

    def read(self, key: str, seconds_left: Callable[[], float], bucket: str | None = None) -> Iterator[bytes]:
        """The object's bytes as they arrive, in chunks: never the whole object in memory."""
        try:
            body = self._s3(seconds_left()).get_object(Bucket=bucket or self.name, Key=key)["Body"]
            while chunk := body.read(1024 * 1024):
                yield chunk
        except Exception as error:
            if _code(error) in _NOT_FOUND:
                raise BackupRejectedError(f"{self.uri(key, bucket)} does not exist") from None
            raise _unavailable(error, f"reading {self.uri(key, bucket)}") from None

    def _s3(self, seconds_left: float) -> Any:
        client = self._clients.within("s3", S3_BOUNDS, seconds_left)
        if client is None:
            raise BackupUnavailableError("too little time left for an S3 call")
        return client


def gzip_member(lines: list[bytes]) -> bytes:
    """Records as one gzip member: members concatenated are one gzip file. mtime 0, so that the same
    records always give the same bytes (and the same digest)."""
    return gzip.compress(b"".join(lines), compresslevel=6, mtime=0)


def record_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of a gzipped JSON Lines object (every member), decompressed as the chunks arrive."""
    decompressor = zlib.decompressobj(wbits=31)
    pending = b""
    for chunk in chunks:
        data = chunk
        while data:
            pending += decompressor.decompress(data)
            data = decompressor.unused_data
            if decompressor.eof:
                decompressor = zlib.decompressobj(wbits=31)
            *complete, pending = pending.split(b"\n")
            yield from (line for line in complete if line)
    if pending:
        yield pending


def _code(error: Exception) -> str:
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _unavailable(error: Exception, doing: str) -> Exception:
    code = _code(error)
    if code in _DENIED:
        return BackupNotConfiguredError(f"{doing}: {code} (the bucket, or the role's s3 or kms permissions)")
    return BackupUnavailableError(f"{doing}: {code or type(error).__name__}")
