"""Where the service keeps its images: one small interface, two backends.

* :class:`DirectoryStore` (default): files under the data folder (``FITROOM_DATA_DIR``), written atomically.
* :class:`S3Store`: S3-compatible object storage, ``FITROOM_STORAGE=s3://bucket/prefix`` (``pip install
  "fitroom[s3]"``). The endpoint and credentials come from the usual AWS settings (``AWS_ENDPOINT_URL`` for a
  server other than AWS, e.g. MinIO; ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``; ``AWS_DEFAULT_REGION``), so
  that an API server and workers on other machines see the same images.

Keys are relative paths such as ``photos/ID.png``, ``results/ID-1.png`` or ``garments/ID_front.png``; the database
rows hold them. A missing object is a :class:`MissingObject` (a ``FileNotFoundError``); storage that cannot be
reached is a :class:`StorageError` (an ``OSError``), which a try-on job treats as worth another attempt.
"""

from __future__ import annotations

import logging
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath

import numpy as np

from fitroom import imaging
from fitroom.errors import ConfigurationError
from fitroom.files import written_at_once

logger = logging.getLogger(__name__)

#: the top-level folders (key prefixes) the service writes
FOLDERS = ("garments", "photos", "results")
_KEY = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_.\-]+)+$")


class MissingObject(FileNotFoundError):
    """No object under that key."""


class StorageError(OSError):
    """The image storage cannot be reached or refused the request (its reason, without credentials)."""


def check_key(key: str) -> str:
    """``key`` when it is a relative path of plain names (no ``..``, no leading slash), else ValueError."""
    if not _KEY.match(key) or ".." in PurePosixPath(key).parts:
        raise ValueError(f"not a storage key: {key!r}")
    return key


class ObjectStore(ABC):
    """Bytes by key; images are PNG (or JPEG, by the key's suffix)."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (replacing what was there); a reader sees the old or the new object, never
        a part."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes, or :class:`MissingObject`."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def remove(self, keys: list[str]) -> None:
        """Delete these objects; a missing one is no error."""

    @abstractmethod
    def problem(self) -> str | None:
        """None when objects can be written and read now, else the reason in words (for ``/readyz``)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the objects are, for logs (no credentials)."""

    def delete(self, *keys: str | None) -> None:
        """Delete the objects of the keys that are not None."""
        keys_given = [check_key(k) for k in keys if k]
        if keys_given:
            self.remove(keys_given)

    def put_image(self, key: str, image: np.ndarray) -> None:
        self.put(key, imaging.encode_image(image, PurePosixPath(key).suffix))

    def get_image(self, key: str, **limits) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 RGB image (see :func:`fitroom.imaging.load_image`)."""
        return imaging.load_image(self.get(key), **limits)

    def get_mask(self, key: str) -> np.ndarray:
        """An ``(H, W)`` bool mask."""
        return imaging.load_mask(self.get(key))


class DirectoryStore(ObjectStore):
    """Objects as files under ``root`` (key ``photos/ID.png`` is the file ``root/photos/ID.png``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with written_at_once(target) as partial:
            partial.write_bytes(data)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise MissingObject(f"no stored object {key}") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def remove(self, keys: list[str]) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    def problem(self) -> str | None:
        if not all(os.access(self.root / folder, os.W_OK) for folder in FOLDERS):
            return "the image storage is not writable"
        return None

    def describe(self) -> str:
        return str(self.root.resolve())


class S3Store(ObjectStore):
    """Objects in an S3 bucket under a prefix (``s3://bucket/prefix``); ``client`` may be given (tests)."""

    def __init__(self, url: str, client=None) -> None:
        match = re.match(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/.*)?$", url)
        if match is None:
            raise ConfigurationError(f"FITROOM_STORAGE={url!r} is not an S3 address: write s3://bucket or "
                                     f"s3://bucket/prefix")
        self.bucket = match.group(1)
        self.prefix = (match.group(2) or "").strip("/")
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise ConfigurationError('images in S3 need boto3: pip install "fitroom[s3]"') from None
            # a storage server that does not answer is an error within seconds, not a hang
            config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})
            client = boto3.session.Session().client("s3", config=config)
        self.client = client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{check_key(key)}" if self.prefix else check_key(key)

    def _failed(self, action: str, error: Exception) -> StorageError:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")  # a ClientError's; others have none
        return StorageError(f"the image storage s3://{self.bucket} could not {action} "
                            f"({type(error).__name__}{': ' + code if code else ''})")

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        kind = "image/jpeg" if key.lower().endswith((".jpg", ".jpeg")) else (
            "image/png" if key.lower().endswith(".png") else "application/octet-stream")
        try:  # one PUT: S3 shows a whole object or none
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=kind)
        except (BotoCoreError, ClientError) as error:
            raise self._failed("store an image", error) from None

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise MissingObject(f"no stored object {key}") from None
            raise self._failed("read an image", error) from None
        except BotoCoreError as error:
            raise self._failed("read an image", error) from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._failed("look up an image", error) from None
        except BotoCoreError as error:
            raise self._failed("look up an image", error) from None

    def remove(self, keys: list[str]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": self._key(k)} for k in keys[start:start + 1000]]
            try:
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (BotoCoreError, ClientError) as error:
                raise self._failed("delete images", error) from None
            if answer.get("Errors"):
                raise StorageError(f"the image storage s3://{self.bucket} did not delete "
                                   f"{len(answer['Errors'])} images ({answer['Errors'][0].get('Code', '')})")

    def problem(self) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as error:
            logger.warning("the image storage s3://%s cannot be used: %s", self.bucket, type(error).__name__)
            return "the image storage is unreachable"
        return None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def open_store(storage: str, data_dir: str | Path) -> ObjectStore:
    """The store ``FITROOM_STORAGE`` names: empty for the data folder, ``s3://bucket/prefix`` for object storage,
    or a folder path."""
    storage = storage.strip()
    if not storage:
        return DirectoryStore(data_dir)
    if storage.startswith("s3://"):
        return S3Store(storage)
    if "://" in storage:
        raise ConfigurationError(f"FITROOM_STORAGE={storage!r}: images are kept in a folder or in S3 "
                                 f"(s3://bucket/prefix); this kind of address is not supported")
    return DirectoryStore(storage)
