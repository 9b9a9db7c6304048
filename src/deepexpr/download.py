"""Fetch input files safely: streamed, checksummed, retried, never half-written.

A download that dies midway must not leave a file that a later run (or
Snakemake) would take for the real input, so bytes go to a temporary file
beside the destination and are renamed into place only after the whole body
arrived and its SHA-256 matched.  The observed digest is always returned so
the workflow can record what it saw the first time a URL was fetched.
"""

from __future__ import annotations

import ftplib
import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit


from deepexpr import __version__
from deepexpr.errors import InputError
from deepexpr.io import atomic_path

MIB = 1 << 20
NETWORK_SCHEMES = ("http", "https", "ftp")
# Client errors are permanent (a wrong URL stays wrong), except these two,
# which mean "try again later".
RETRYABLE_CLIENT_STATUS = (408, 429)
# Without a Content-Length there is no percentage; report every this many bytes.
UNKNOWN_SIZE_PROGRESS_STEP = 10 * MIB


class DownloadError(RuntimeError):
    """A URL could not be fetched (permanent HTTP error, or every attempt failed)."""


class _Truncated(Exception):
    """The connection closed before the promised Content-Length arrived."""


def fetch(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    *,
    retries: int = 3,
    backoff: float = 2.0,
    timeout: float = 60,
    chunk_size: int = MIB,
    log: logging.Logger | None = None,
) -> str:
    """Download ``url`` (http, https, ftp, file:// or a local path) to ``dest``.

    Network transfers are tried ``retries + 1`` times, waiting
    ``backoff * 2**i`` seconds between tries, on connection errors, timeouts,
    HTTP 5xx/408/429 and truncated bodies; other HTTP errors fail at once.
    Local sources are copied (so a config can point at a file already on disk).
    When ``sha256`` is given (non-empty) and differs from the bytes received, raises
    :class:`InputError` and leaves nothing at ``dest``.  Returns the observed
    SHA-256 hex digest.
    """
    log = log or logging.getLogger(__name__)
    scheme = urlsplit(url).scheme.lower()
    with atomic_path(dest) as tmp:
        if scheme in NETWORK_SCHEMES:
            digest = _download_with_retries(url, tmp, retries, backoff, timeout, chunk_size, log)
        elif scheme in ("", "file"):
            digest = _copy_local(url, tmp, chunk_size, log)
        else:
            raise InputError(
                url,
                f"unsupported URL scheme {scheme!r}; expected one of "
                f"{', '.join(NETWORK_SCHEMES)}, file:// or a local path",
            )
        if sha256 and digest != sha256.strip().lower():
            raise InputError(
                url,
                f"sha256 mismatch: expected {sha256.strip().lower()}, observed {digest}; {dest} was not written",
            )
    log.info("%s -> %s (sha256 %s)", url, dest, digest)
    return digest


def record_checksum(dest: str | os.PathLike, digest: str, record: str | os.PathLike) -> None:
    """Write ``digest`` for ``dest`` to ``record`` in ``sha256sum`` format.

    A first retrieval without a configured checksum leaves the digest it saw, ready to be
    pinned in the config (and checkable with ``sha256sum -c`` from the download folder).
    """
    with atomic_path(record) as tmp:
        tmp.write_text(f"{digest}  {Path(dest).name}\n")


def _download_with_retries(url, tmp: Path, retries, backoff, timeout, chunk_size, log) -> str:
    attempts = retries + 1
    request = urllib.request.Request(url, headers={"User-Agent": f"deepexpr/{__version__}"})
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                with open(tmp, "wb") as out:
                    return _stream(response, out, int(length) if length else None, url, chunk_size, log)
        except urllib.error.HTTPError as error:
            error.close()  # it carries the open error response
            if error.code < 500 and error.code not in RETRYABLE_CLIENT_STATUS:
                raise DownloadError(
                    f"{url}: HTTP {error.code} {error.reason} (not retried: client errors are permanent)"
                ) from error
            cause = error
        except urllib.error.URLError as error:
            if _is_permanent_ftp_error(error):
                raise DownloadError(f"{url}: FTP error {error.reason} (not retried)") from error
            cause = error
        except (OSError, http.client.HTTPException, _Truncated) as error:
            cause = error
        if attempt < attempts:
            delay = backoff * 2 ** (attempt - 1)
            log.warning("%s: attempt %d/%d failed (%s); retrying in %.3g s", url, attempt, attempts, cause, delay)
            time.sleep(delay)
    raise DownloadError(f"{url}: failed after {attempts} attempts; last error: {cause!r}") from cause


def _is_permanent_ftp_error(error: BaseException | None) -> bool:
    """Whether an FTP 5xx reply (e.g. 550 no such file) sits in urllib's error chain.

    urllib wraps ftplib errors in one or two URLErrors, as ``reason`` or as
    ``__cause__`` depending on where the reply arrived.
    """
    while error is not None:
        if isinstance(error, ftplib.error_perm):
            return True
        reason = getattr(error, "reason", None)
        error = reason if isinstance(reason, BaseException) else error.__cause__
    return False


def _copy_local(url: str, tmp: Path, chunk_size: int, log) -> str:
    source = Path(urllib.request.url2pathname(urlsplit(url).path)) if url.lower().startswith("file:") else Path(url)
    if not source.is_file():
        raise InputError(url, f"local source file {source} does not exist")
    with open(source, "rb") as src, open(tmp, "wb") as out:
        return _stream(src, out, source.stat().st_size, url, chunk_size, log)


def _stream(source: BinaryIO, out: BinaryIO, total: int | None, label: str, chunk_size: int, log) -> str:
    """Copy ``source`` to ``out`` while hashing; log progress; check the promised size."""
    digest = hashlib.sha256()
    received = 0
    step = total / 10 if total else UNKNOWN_SIZE_PROGRESS_STEP
    started = time.monotonic()
    while chunk := source.read(chunk_size):
        out.write(chunk)
        digest.update(chunk)
        previous, received = received, received + len(chunk)
        if received // step > previous // step:
            rate = received / MIB / max(time.monotonic() - started, 1e-9)
            if total:
                log.info(
                    "%s: %.1f / %.1f MiB (%.0f%%), %.1f MiB/s",
                    label,
                    received / MIB,
                    total / MIB,
                    100 * received / total,
                    rate,
                )
            else:
                log.info("%s: %.1f MiB, %.1f MiB/s", label, received / MIB, rate)
    # http.client returns an empty read instead of raising when the peer closes
    # early, so a dropped connection is only visible as a short byte count.
    if total is not None and received < total:
        raise _Truncated(f"connection closed after {received} of {total} bytes")
    return digest.hexdigest()
