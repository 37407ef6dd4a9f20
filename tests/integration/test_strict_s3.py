"""S3 through the local stack's front is as strict as S3 on the rules streaming exports rely on (local/strict_aws.py).

Each refusal below is of a request moto alone accepts (shown by sending it to moto past the front): the front
answers it with S3's own error code, status and XML error document. The happy paths use botocore's defaults
(CRC32 checksums on every upload, s3transfer's CRC32 multipart uploads, aws-chunked trailers as botocore sends
them over HTTPS).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import moto.s3.models
import pytest
import urllib3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from local.stack import LocalAws, create_resources, reset_aws
from local.strict_aws import S3_MIN_PART_BYTES, AwsFault
from tests.conftest import Aws

BUCKET = "strict-s3-tests"
MIB = 1024 * 1024
# A SigV4 Authorization whose credential scope names S3: how the front tells S3's requests (moto checks no signature).
RAW_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64
)
# "123456789", the CRC catalogue's check input, and each algorithm's digest of it
CHECK_INPUT = b"123456789"
CHECK_DIGESTS = {
    "CRC32": (0xCBF43926).to_bytes(4, "big"),
    "CRC32C": (0xE3069283).to_bytes(4, "big"),
    "CRC64NVME": (0xAE8B14860A799888).to_bytes(8, "big"),
    "SHA1": hashlib.sha1(CHECK_INPUT, usedforsecurity=False).digest(),
    "SHA256": hashlib.sha256(CHECK_INPUT).digest(),
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def error_of(call: Any) -> tuple[str, int, str]:
    """The (code, HTTP status, message) S3 answered a call with."""
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        str(response["Error"]["Code"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
        response["Error"].get("Message", ""),
    )


@pytest.fixture
def s3(aws: Aws) -> Any:
    client = boto3.client("s3", config=Config(retries={"total_max_attempts": 1}))  # through the front
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def moto_s3(local_aws: LocalAws) -> Any:
    """moto on its own, past the front."""
    return boto3.client(
        "s3", endpoint_url=local_aws.front.moto_endpoint, config=Config(retries={"total_max_attempts": 1})
    )


@pytest.fixture
def small_parts_for_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto as S3_UPLOAD_PART_MIN_SIZE would make it: a 1 MiB part passes its own check (nothing of the local
    stack lowers it: the front's check stands whatever moto's says)."""
    assert moto.s3.models.S3_UPLOAD_PART_MIN_SIZE == S3_MIN_PART_BYTES  # as the suite runs it
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)


def raw(aws: Aws, method: str, path: str, body: bytes | Iterator[bytes], **headers: str) -> urllib3.BaseHTTPResponse:
    """A request to the front as an S3 client other than botocore (or botocore over HTTPS) would send it."""
    with urllib3.PoolManager() as pool:
        return pool.request(
            method,
            f"{aws.endpoint}{path}",
            body=body,
            headers={"Authorization": RAW_AUTHORIZATION, "x-amz-date": "20250101T000000Z"} | headers,
            chunked=not isinstance(body, bytes),
            retries=False,
        )


def aws_chunked(data: bytes, trailers: dict[str, str], chunk: int = 64 * 1024) -> bytes:
    """data in aws-chunked framing (unsigned chunks), ending in the trailers."""
    framed = b"".join(
        b"%x\r\n%s\r\n" % (len(data[n : n + chunk]), data[n : n + chunk]) for n in range(0, len(data), chunk)
    )
    return framed + b"0\r\n" + b"".join(f"{k}:{v}\r\n".encode() for k, v in trailers.items()) + b"\r\n"


def exists(client: Any, key: str) -> bool:
    """Asked by listing: a missing key is a 403 to GetObject and HeadObject (see the test below)."""
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", [])
    return any(item["Key"] == key for item in listed)


def test_a_missing_object_is_access_denied_as_to_a_role_that_may_list_only_its_prefix(aws: Aws, s3: Any) -> None:
    # "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 (Access Denied)"
    for read in (
        lambda: s3.get_object(Bucket=BUCKET, Key="never written"),
        lambda: s3.head_object(Bucket=BUCKET, Key="x"),
    ):
        code, _, _ = error_of(read)
        assert code in ("AccessDenied", "403")


# -- integrity: Content-MD5 and x-amz-checksum-* ----------------------------------------------------------------
def test_a_wrong_content_md5_is_refused_with_bad_digest_and_nothing_is_stored(
    aws: Aws, s3: Any, moto_s3: Any, local_aws: LocalAws
) -> None:
    wrong = b64(hashlib.md5(b"something else", usedforsecurity=False).digest())
    code, status, message = error_of(lambda: s3.put_object(Bucket=BUCKET, Key="md5", Body=b"payload", ContentMD5=wrong))
    assert (code, status, message) == (
        "BadDigest",
        400,
        "The Content-MD5 you specified did not match what we received.",
    )
    assert not exists(s3, "md5")
    assert ("S3.PutObject", "BadDigest") in local_aws.front.refused
    # moto alone stores it
    moto_s3.put_object(Bucket=BUCKET, Key="md5", Body=b"payload", ContentMD5=wrong)
    assert exists(s3, "md5")


def test_a_content_md5_that_is_no_md5_is_refused_with_invalid_digest(aws: Aws, s3: Any, moto_s3: Any) -> None:
    for not_md5 in ("not base64!", b64(b"sixteen bytes?")):
        code, status, _ = error_of(lambda v=not_md5: s3.put_object(Bucket=BUCKET, Key="md5", Body=b"x", ContentMD5=v))
        assert (code, status) == ("InvalidDigest", 400)
        moto_s3.put_object(Bucket=BUCKET, Key="md5", Body=b"x", ContentMD5=not_md5)  # moto takes it


def test_a_right_content_md5_is_taken(aws: Aws, s3: Any) -> None:
    s3.put_object(
        Bucket=BUCKET,
        Key="md5",
        Body=b"payload",
        ContentMD5=b64(hashlib.md5(b"payload", usedforsecurity=False).digest()),
    )
    assert s3.get_object(Bucket=BUCKET, Key="md5")["Body"].read() == b"payload"


def test_a_wrong_sha256_checksum_is_refused_with_bad_digest(aws: Aws, s3: Any, moto_s3: Any) -> None:
    wrong = b64(hashlib.sha256(b"something else").digest())
    code, status, message = error_of(
        lambda: s3.put_object(Bucket=BUCKET, Key="sha", Body=b"payload", ChecksumSHA256=wrong)
    )
    assert (code, status, message) == (
        "BadDigest",
        400,
        "The SHA256 you specified did not match the calculated checksum.",
    )
    assert not exists(s3, "sha")
    moto_s3.put_object(Bucket=BUCKET, Key="sha", Body=b"payload", ChecksumSHA256=wrong)  # moto takes it
    assert exists(s3, "sha")


@pytest.mark.parametrize("algorithm", sorted(CHECK_DIGESTS))
def test_each_checksum_algorithm_is_checked(algorithm: str, aws: Aws, s3: Any) -> None:
    right = CHECK_DIGESTS[algorithm]
    s3.put_object(Bucket=BUCKET, Key="right", Body=CHECK_INPUT, **{f"Checksum{algorithm}": b64(right)})
    wrong = bytes([right[0] ^ 1]) + right[1:]
    code, status, message = error_of(
        lambda: s3.put_object(Bucket=BUCKET, Key="wrong", Body=CHECK_INPUT, **{f"Checksum{algorithm}": b64(wrong)})
    )
    assert (code, status) == ("BadDigest", 400)
    assert message == f"The {algorithm} you specified did not match the calculated checksum."
    code, _, _ = error_of(
        lambda: s3.put_object(Bucket=BUCKET, Key="short", Body=CHECK_INPUT, **{f"Checksum{algorithm}": b64(b"ab")})
    )
    assert code == "InvalidRequest"  # "Value for x-amz-checksum-... header is invalid."
    assert [exists(s3, key) for key in ("right", "wrong", "short")] == [True, False, False]


def test_the_refusal_is_s3s_xml_error_document(aws: Aws) -> None:
    answer = raw(
        aws,
        "PUT",
        f"/{BUCKET}/doc",
        b"payload",
        **{"Content-MD5": b64(hashlib.md5(b"other", usedforsecurity=False).digest())},
    )
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/xml"
    text = answer.data.decode()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code>')
    assert "<Message>The Content-MD5 you specified did not match what we received.</Message>" in text
    assert f"<RequestId>{answer.headers['x-amz-request-id']}</RequestId></Error>" in text


# -- aws-chunked and chunked transfers ---------------------------------------------------------------------------
def trailing_checksums(client: Any) -> Any:
    """client, sending its upload checksums as botocore does over HTTPS: Transfer-Encoding chunked, an
    aws-chunked body, the CRC32 in its trailer (botocore sends them so over HTTPS only; the front is HTTP)."""

    def in_trailer(params: dict[str, Any], **_: Any) -> None:
        algorithm = params["context"].get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict):
            algorithm["in"] = "trailer"

    client.meta.events.register("before-call.s3.PutObject", in_trailer)
    client.meta.events.register("before-call.s3.UploadPart", in_trailer)
    return client


def test_an_aws_chunked_upload_with_a_trailing_checksum_is_stored_as_its_payload(
    aws: Aws, s3: Any, local_aws: LocalAws
) -> None:
    chunked = trailing_checksums(boto3.client("s3", config=Config(retries={"total_max_attempts": 1})))
    payload = bytes(range(256)) * 1000
    sent = chunked.put_object(Bucket=BUCKET, Key="chunked", Body=io.BytesIO(payload))
    assert sent["ChecksumCRC32"] == b64(zlib.crc32(payload).to_bytes(4, "big"))
    stored = s3.get_object(Bucket=BUCKET, Key="chunked")
    assert stored["Body"].read() == payload
    assert stored.get("ContentEncoding") in (None, "")  # aws-chunked is how it travelled, not what it is
    assert local_aws.front.refused == []


def test_a_wrong_trailing_checksum_is_refused_with_bad_digest(aws: Aws, s3: Any) -> None:
    payload = b"streamed export line\n" * 1000
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-decoded-content-length": str(len(payload)),
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-sdk-checksum-algorithm": "CRC32",
    }
    right = b64(zlib.crc32(payload).to_bytes(4, "big"))
    wrong = b64((zlib.crc32(payload) ^ 1).to_bytes(4, "big"))
    refused = raw(aws, "PUT", f"/{BUCKET}/trailer", aws_chunked(payload, {"x-amz-checksum-crc32": wrong}), **headers)
    assert refused.status == 400
    assert b"<Code>BadDigest</Code><Message>The CRC32 you specified did not match the calculated checksum." in (
        refused.data
    )
    assert not exists(s3, "trailer")
    # the same, right, over a chunked transfer: stored as its payload
    framed = aws_chunked(payload, {"x-amz-checksum-crc32": right})
    taken = raw(aws, "PUT", f"/{BUCKET}/trailer", iter([framed[:1000], framed[1000:]]), **headers)
    assert taken.status == 200
    assert s3.get_object(Bucket=BUCKET, Key="trailer")["Body"].read() == payload
    # a payload shorter than it declared
    short = headers | {"x-amz-decoded-content-length": str(len(payload) + 1)}
    assert raw(aws, "PUT", f"/{BUCKET}/short", framed, **short).status == 400


def test_a_chunked_upload_that_declares_no_length_is_refused(aws: Aws, s3: Any) -> None:
    answer = raw(aws, "PUT", f"/{BUCKET}/unsized", iter([b"part one, ", b"part two"]))
    assert answer.status == 411
    assert b"<Code>MissingContentLength</Code>" in answer.data
    assert not exists(s3, "unsized")


def test_a_put_over_5_gib_is_refused_on_its_declared_length_before_its_body_is_sent(aws: Aws) -> None:
    host, port = urllib.parse.urlsplit(aws.endpoint).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("PUT", f"/{BUCKET}/huge")
    for name, value in {
        "Authorization": RAW_AUTHORIZATION,
        "Content-Length": str(5 * 1024**3 + 1),
        "Expect": "100-continue",
    }.items():
        connection.putheader(name, value)
    connection.endheaders()  # and no body: the answer comes instead of "100 Continue"
    answer = connection.getresponse()
    assert answer.status == 400
    assert b"<Code>EntityTooLarge</Code>" in answer.read()
    connection.close()


# -- multipart uploads --------------------------------------------------------------------------------------------
def test_a_two_part_upload_with_default_checksums_completes_and_reads_back(
    aws: Aws, s3: Any, local_aws: LocalAws
) -> None:
    first, last = bytes(range(256)) * (S3_MIN_PART_BYTES // 256), b"the last part may be small"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="export.jsonl")["UploadId"]
    parts = []
    for number, data in enumerate((first, last), start=1):
        sent = s3.upload_part(
            Bucket=BUCKET, Key="export.jsonl", UploadId=upload, PartNumber=number, Body=io.BytesIO(data)
        )
        assert sent["ChecksumCRC32"] == b64(zlib.crc32(data).to_bytes(4, "big"))  # botocore's default, checked
        parts.append({"PartNumber": number, "ETag": sent["ETag"]})
    s3.complete_multipart_upload(Bucket=BUCKET, Key="export.jsonl", UploadId=upload, MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=BUCKET, Key="export.jsonl")["Body"].read() == first + last
    assert s3.head_object(Bucket=BUCKET, Key="export.jsonl")["ContentLength"] == len(first) + len(last)
    calls = local_aws.front.calls
    assert (calls["S3.CreateMultipartUpload"], calls["S3.UploadPart"], calls["S3.CompleteMultipartUpload"]) == (1, 2, 1)
    assert local_aws.front.refused == []


def test_s3transfers_crc32_multipart_upload_completes(aws: Aws, s3: Any, local_aws: LocalAws) -> None:
    """upload_fileobj creates its upload with ChecksumAlgorithm CRC32 and names each part's checksum."""
    data = b"x" * (S3_MIN_PART_BYTES + MIB)
    config = TransferConfig(multipart_threshold=S3_MIN_PART_BYTES, multipart_chunksize=S3_MIN_PART_BYTES)
    s3.upload_fileobj(io.BytesIO(data), BUCKET, "transferred", Config=config)
    assert s3.get_object(Bucket=BUCKET, Key="transferred")["Body"].read() == data
    assert local_aws.front.calls["S3.UploadPart"] == 2


def test_a_small_part_that_is_not_the_last_is_refused_at_complete_with_entity_too_small(
    aws: Aws, s3: Any, moto_s3: Any, small_parts_for_moto: None
) -> None:
    def upload_and_complete(client: Any) -> Any:
        upload = client.create_multipart_upload(Bucket=BUCKET, Key="small")["UploadId"]
        parts = []
        for number, data in enumerate((b"a" * MIB, b"b" * MIB), start=1):
            sent = client.upload_part(
                Bucket=BUCKET, Key="small", UploadId=upload, PartNumber=number, Body=io.BytesIO(data)
            )
            parts.append({"PartNumber": number, "ETag": sent["ETag"]})
        return client.complete_multipart_upload(
            Bucket=BUCKET, Key="small", UploadId=upload, MultipartUpload={"Parts": parts}
        )

    code, status, message = error_of(lambda: upload_and_complete(s3))
    assert (code, status, message) == (
        "EntityTooSmall",
        400,
        "Your proposed upload is smaller than the minimum allowed object size.",
    )
    assert not exists(s3, "small")
    upload_and_complete(moto_s3)  # moto with a lower S3_UPLOAD_PART_MIN_SIZE takes it


@pytest.mark.parametrize("number", [0, 10_001])
def test_a_part_number_outside_1_to_10000_is_refused_with_invalid_argument(
    number: int, aws: Aws, s3: Any, moto_s3: Any
) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="numbered")["UploadId"]
    code, status, message = error_of(
        lambda: s3.upload_part(Bucket=BUCKET, Key="numbered", UploadId=upload, PartNumber=number, Body=b"x")
    )
    assert (code, status, message) == (
        "InvalidArgument",
        400,
        "Part number must be an integer between 1 and 10000, inclusive",
    )
    if number == 0:  # moto answers another error
        code, _, _ = error_of(
            lambda: moto_s3.upload_part(Bucket=BUCKET, Key="numbered", UploadId=upload, PartNumber=0, Body=b"x")
        )
        assert code == "NoSuchUpload"


def two_full_parts(client: Any, key: str, **create: str) -> tuple[str, list[dict[str, Any]]]:
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=key, **create)["UploadId"]
    parts = []
    for number, letter in ((1, b"a"), (2, b"b")):
        sent = client.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=io.BytesIO(letter * S3_MIN_PART_BYTES)
        )
        parts.append(
            {"PartNumber": number, "ETag": sent["ETag"]} | {k: v for k, v in sent.items() if k.startswith("Checksum")}
        )
    return upload, parts


def test_parts_out_of_order_are_refused_with_invalid_part_order(aws: Aws, s3: Any, moto_s3: Any) -> None:
    upload, parts = two_full_parts(s3, "ordered")
    backwards = {"Parts": [{k: p[k] for k in ("PartNumber", "ETag")} for p in reversed(parts)]}
    code, status, _ = error_of(
        lambda: s3.complete_multipart_upload(Bucket=BUCKET, Key="ordered", UploadId=upload, MultipartUpload=backwards)
    )
    assert (code, status) == ("InvalidPartOrder", 400)
    # moto takes them, and puts the object together in that order
    moto_s3.complete_multipart_upload(Bucket=BUCKET, Key="ordered", UploadId=upload, MultipartUpload=backwards)
    assert moto_s3.get_object(Bucket=BUCKET, Key="ordered", Range="bytes=0-0")["Body"].read() == b"b"


def test_an_etag_that_is_not_the_parts_is_refused_with_invalid_part(aws: Aws, s3: Any) -> None:
    upload, parts = two_full_parts(s3, "tagged")
    parts[1] = {"PartNumber": 2, "ETag": '"' + "0" * 32 + '"'}
    code, status, _ = error_of(
        lambda: s3.complete_multipart_upload(
            Bucket=BUCKET,
            Key="tagged",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": parts[0]["ETag"]}, parts[1]]},
        )
    )
    assert (code, status) == ("InvalidPart", 400)


def test_an_upload_created_with_a_checksum_algorithm_must_name_each_parts_checksum(
    aws: Aws, s3: Any, moto_s3: Any
) -> None:
    # parts sent without a checksum of their own (a client set to "when_required"): S3 computes and answers it
    bare = boto3.client(
        "s3", config=Config(request_checksum_calculation="when_required", retries={"total_max_attempts": 1})
    )
    upload, parts = two_full_parts(bare, "summed", ChecksumAlgorithm="CRC32")
    assert parts[0]["ChecksumCRC32"] == b64(zlib.crc32(b"a" * S3_MIN_PART_BYTES).to_bytes(4, "big"))
    etags_only = {"Parts": [{k: p[k] for k in ("PartNumber", "ETag")} for p in parts]}
    code, status, message = error_of(
        lambda: s3.complete_multipart_upload(Bucket=BUCKET, Key="summed", UploadId=upload, MultipartUpload=etags_only)
    )
    assert (code, status) == ("InvalidRequest", 400)
    assert message == (
        "The upload was created using a crc32 checksum. The complete request must include the checksum for each "
        "part. It was missing for part 1 in the request."
    )
    swapped = {"Parts": [parts[0] | {"ChecksumCRC32": parts[1]["ChecksumCRC32"]}, parts[1]]}
    code, _, _ = error_of(
        lambda: s3.complete_multipart_upload(Bucket=BUCKET, Key="summed", UploadId=upload, MultipartUpload=swapped)
    )
    assert code == "InvalidPart"
    s3.complete_multipart_upload(Bucket=BUCKET, Key="summed", UploadId=upload, MultipartUpload={"Parts": parts})
    # moto alone takes ETags only
    upload, parts = two_full_parts(moto_s3, "summed-by-moto", ChecksumAlgorithm="CRC32")
    etags_only = {"Parts": [{k: p[k] for k in ("PartNumber", "ETag")} for p in parts]}
    moto_s3.complete_multipart_upload(Bucket=BUCKET, Key="summed-by-moto", UploadId=upload, MultipartUpload=etags_only)


# -- faults, calls, reset -----------------------------------------------------------------------------------------
def test_an_injected_upload_part_fault_is_what_boto3_sees(aws: Aws, s3: Any, local_aws: LocalAws) -> None:
    front = local_aws.front
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="faulty")["UploadId"]
    front.inject(
        AwsFault(
            target="S3.UploadPart",
            code="InternalError",
            status=500,
            message="We encountered an internal error. Please try again.",
        )
    )
    code, status, message = error_of(
        lambda: s3.upload_part(Bucket=BUCKET, Key="faulty", UploadId=upload, PartNumber=1, Body=b"x")
    )
    assert (code, status, message) == ("InternalError", 500, "We encountered an internal error. Please try again.")
    assert ("S3.UploadPart", "InternalError") in front.refused
    # a client that retries (botocore's default) gets through the next attempt: AWS bills both requests
    front.inject(AwsFault(target="S3.UploadPart", code="InternalError", status=500))
    retrying = boto3.client("s3")
    retrying.upload_part(Bucket=BUCKET, Key="faulty", UploadId=upload, PartNumber=1, Body=b"x")
    assert front.calls["S3.UploadPart"] == 3


def test_a_hanging_upload_part_times_the_client_out(aws: Aws, s3: Any, local_aws: LocalAws) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="hung")["UploadId"]
    local_aws.front.inject(AwsFault(target="S3.UploadPart", hang_seconds=30))
    impatient = boto3.client("s3", config=Config(read_timeout=0.5, retries={"total_max_attempts": 1}))
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        impatient.upload_part(Bucket=BUCKET, Key="hung", UploadId=upload, PartNumber=1, Body=b"x")
    assert time.monotonic() - started < 5
    assert s3.list_parts(Bucket=BUCKET, Key="hung", UploadId=upload).get("Parts", []) == []


def test_a_complete_whose_answer_is_lost_has_completed_all_the_same(aws: Aws, s3: Any, local_aws: LocalAws) -> None:
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="lost")["UploadId"]
    sent = s3.upload_part(Bucket=BUCKET, Key="lost", UploadId=upload, PartNumber=1, Body=b"only part")
    local_aws.front.inject(
        AwsFault(target="S3.CompleteMultipartUpload", code="InternalError", status=500, after_work=True)
    )
    code, status, _ = error_of(
        lambda: s3.complete_multipart_upload(
            Bucket=BUCKET,
            Key="lost",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": sent["ETag"]}]},
        )
    )
    assert (code, status) == ("InternalError", 500)
    assert s3.get_object(Bucket=BUCKET, Key="lost")["Body"].read() == b"only part"


def test_a_reset_forgets_every_bucket_object_and_upload(aws: Aws, s3: Any, local_aws: LocalAws) -> None:
    s3.put_object(Bucket=BUCKET, Key="left over", Body=b"x")
    s3.create_multipart_upload(Bucket=BUCKET, Key="unfinished", ChecksumAlgorithm="SHA256")
    reset_aws(aws.endpoint)
    assert local_aws.front.calls == {}
    assert local_aws.front._uploads == {}
    code, _, _ = error_of(lambda: s3.head_bucket(Bucket=BUCKET))
    assert code == "404"
    create_resources(aws.endpoint, visibility_timeout=1, front=local_aws.front)  # what the fixture's teardown reads
