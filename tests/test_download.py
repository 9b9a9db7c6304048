"""deepexpr.download against a loopback HTTP server that misbehaves on demand."""

import ftplib
import gzip
import hashlib
import http.server
import logging
import subprocess
import threading
import time
import urllib.error
from collections import Counter

import pytest

from deepexpr.download import DownloadError, _is_permanent_ftp_error, fetch, record_checksum
from deepexpr.errors import InputError

BODY = b"gene_id\tcount\n" + b"".join(b"g%04d\t%d\n" % (i, i * 7) for i in range(2000))
GZ_BODY = gzip.compress(BODY, mtime=0)
FAST = {"retries": 2, "backoff": 0.001, "timeout": 2}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Behaviour chosen by path: /ok, /flaky<N> (500 N times), /broken, /drop (truncated body), /slow (first
    request times out), /missing, /data.gz."""

    def do_GET(self):
        counts = self.server.requests
        counts[self.path] += 1
        if self.path.startswith("/flaky") and counts[self.path] <= int(self.path[len("/flaky") :]):
            self.send_error(500)
        elif self.path == "/broken":
            self.send_error(503)
        elif self.path == "/missing":
            self.send_error(404)
        elif self.path == "/drop":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.close_connection = True
        elif self.path == "/slow" and counts[self.path] == 1:
            time.sleep(0.5)  # longer than the client's timeout; then hang up without answering
        else:
            body = GZ_BODY if self.path == "/data.gz" else BODY
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip" if self.path == "/data.gz" else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests = Counter()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_serves_file_and_returns_digest(server, tmp_path, caplog):
    dest = tmp_path / "sub" / "counts.tsv"
    with caplog.at_level(logging.INFO, logger="deepexpr.download"):
        digest = fetch(f"{server.url}/ok", dest, sha256=sha(BODY).upper(), chunk_size=4096, **FAST)
    assert dest.read_bytes() == BODY
    assert digest == sha(BODY)
    assert any("(100%)" in message for message in caplog.messages)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["counts.tsv"]


def test_gzip_is_stored_as_served(server, tmp_path):
    dest = tmp_path / "counts.tsv.gz"
    fetch(f"{server.url}/data.gz", dest, sha256=sha(GZ_BODY), **FAST)
    assert dest.read_bytes() == GZ_BODY
    assert gzip.decompress(dest.read_bytes()) == BODY


def test_server_errors_are_retried_until_success(server, tmp_path):
    dest = tmp_path / "counts.tsv"
    assert fetch(f"{server.url}/flaky2", dest, **FAST) == sha(BODY)
    assert server.requests["/flaky2"] == 3
    assert dest.read_bytes() == BODY


def test_timeout_is_retried(server, tmp_path):
    dest = tmp_path / "counts.tsv"
    fetch(f"{server.url}/slow", dest, retries=1, backoff=0.001, timeout=0.2)
    assert server.requests["/slow"] == 2
    assert dest.read_bytes() == BODY


def test_persistent_server_error_gives_up_cleanly(server, tmp_path):
    dest = tmp_path / "counts.tsv"
    with pytest.raises(DownloadError, match=r"/broken: failed after 3 attempts.*503"):
        fetch(f"{server.url}/broken", dest, **FAST)
    assert server.requests["/broken"] == 3
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_is_retried_then_fails_cleanly(server, tmp_path):
    dest = tmp_path / "counts.tsv"
    with pytest.raises(DownloadError, match=r"failed after 3 attempts.*connection closed after"):
        fetch(f"{server.url}/drop", dest, **FAST)
    assert server.requests["/drop"] == 3
    assert list(tmp_path.iterdir()) == []


def test_not_found_fails_at_once(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/missing: HTTP 404 .*not retried"):
        fetch(f"{server.url}/missing", tmp_path / "counts.tsv", **FAST)
    assert server.requests["/missing"] == 1
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    dest = tmp_path / "counts.tsv"
    wrong = "0" * 64
    with pytest.raises(InputError, match=rf"/ok: sha256 mismatch: expected {wrong}, observed {sha(BODY)}"):
        fetch(f"{server.url}/ok", dest, sha256=wrong, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_permanent_ftp_replies_are_recognised_at_any_wrapping_depth():
    try:
        try:
            raise ftplib.error_perm("550 no such file")
        except ftplib.error_perm as reply:
            raise urllib.error.URLError(f"ftp error: {reply}") from reply
    except urllib.error.URLError as inner:
        wrapped = urllib.error.URLError(inner)
    assert _is_permanent_ftp_error(wrapped)
    assert _is_permanent_ftp_error(urllib.error.URLError(ftplib.error_perm("550 no such file")))
    assert not _is_permanent_ftp_error(urllib.error.URLError(ftplib.error_temp("421 too many users")))
    assert not _is_permanent_ftp_error(urllib.error.URLError(ConnectionRefusedError()))


@pytest.mark.parametrize("as_url", [True, False])
def test_local_sources_are_copied(tmp_path, as_url):
    source = tmp_path / "in" / "counts.tsv.gz"
    source.parent.mkdir()
    source.write_bytes(GZ_BODY)
    dest = tmp_path / "out" / "counts.tsv.gz"
    digest = fetch(source.as_uri() if as_url else str(source), dest, sha256=sha(GZ_BODY))
    assert digest == sha(GZ_BODY)
    assert dest.read_bytes() == GZ_BODY


def test_missing_local_source_and_unknown_scheme_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        fetch(str(tmp_path / "absent.tsv"), tmp_path / "out.tsv")
    with pytest.raises(InputError, match="unsupported URL scheme 's3'"):
        fetch("s3://bucket/key", tmp_path / "out.tsv")
    assert list(tmp_path.iterdir()) == []


def test_record_checksum_writes_sha256sum_format(tmp_path):
    data = tmp_path / "counts.gz"
    data.write_bytes(b"abc")
    record = tmp_path / "counts.gz.sha256"
    record_checksum(data, hashlib.sha256(b"abc").hexdigest(), record)
    assert record.read_text() == f"{hashlib.sha256(b'abc').hexdigest()}  counts.gz\n"
    check = subprocess.run(["sha256sum", "-c", record.name], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
