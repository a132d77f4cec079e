"""pe_udfs.uris: the one URI policy (scheme, roots, existence) every reader and the quality gate use."""
from __future__ import annotations

import os

import pytest

from pe_udfs.errors import FetchError, ProductImageError
from pe_udfs.uris import open_binary, policy_violation, resolve_uri


def test_local_paths_under_the_root_only(tmp_path):
    lake = str(tmp_path / "lake")
    os.makedirs(f"{lake}/media")
    check = dict(allowed_schemes=["file"], allowed_roots=[lake])
    for ok in (f"{lake}/media/a.mp4", f"file://{lake}/media/a.mp4", f"FILE://{lake}/x", f"{lake}/a..b/c.mp4",
               f"file://{lake}/media/%2e%2e/media/a.mp4"):
        assert policy_violation(ok, **check) is None, ok
    for bad_scheme in ("http://x/a.mp4", "s3a://b/a.mp4", "http://x" + lake + "/a.mp4"):
        assert policy_violation(bad_scheme, **check) == "scheme_not_allowed", bad_scheme
    for outside in ("/etc/passwd", f"{lake}x/a.mp4", f"{lake}/../etc/passwd", f"{lake}/media/../../x",
                    f"file://{lake}/media/%2e%2e/%2E%2e/x", "media/a.mp4", f"//host{lake}/a.mp4"):
        assert policy_violation(outside, **check) == "outside_allowed_roots", outside
    assert policy_violation("", **check) == "not_found"
    assert policy_violation(None, **check) is None and policy_violation(float("nan"), **check) is None


def test_a_link_out_of_the_root_is_outside_it(tmp_path):
    lake, elsewhere = tmp_path / "lake", tmp_path / "elsewhere"
    lake.mkdir(), elsewhere.mkdir()
    (elsewhere / "secret.mp4").write_bytes(b"x")
    (lake / "link.mp4").symlink_to(elsewhere / "secret.mp4")
    with pytest.raises(FetchError) as e:
        resolve_uri(str(lake / "link.mp4"), allowed_roots=[str(lake)])
    assert e.value.reason == "outside_allowed_roots"


def test_configured_schemes_and_roots(tmp_path):
    check = dict(allowed_schemes=["s3a"], allowed_roots=["s3a://bucket/media", str(tmp_path / "local")])
    assert policy_violation("s3a://bucket/media/v.mp4", **check) is None
    for outside in ("s3a://bucket/mediax/v.mp4", "s3a://other/media/v.mp4", "s3a://bucket/media/../secret/v.mp4",
                    "s3a://bucket/media/%2E%2e/secret/v.mp4"):
        assert policy_violation(outside, **check) == "outside_allowed_roots", outside
    # 'file' is not allowed: a plain path fails on its scheme, whatever the roots say
    assert policy_violation(str(tmp_path / "local" / "v.mp4"), **check) == "scheme_not_allowed"


def test_reading_needs_the_file_and_names_the_callers_error(tmp_path):
    with pytest.raises(FetchError) as e:
        resolve_uri(str(tmp_path / "missing.mp4"), allowed_roots=[str(tmp_path)])
    assert e.value.reason == "not_found" and e.value.stage == "fetch"
    assert resolve_uri(str(tmp_path / "missing.mp4"), must_exist=False) == ("file", str(tmp_path / "missing.mp4"))
    with pytest.raises(ProductImageError) as e:
        with open_binary("http://x/a.png", error_cls=ProductImageError):
            pass
    assert (e.value.reason, e.value.stage) == ("scheme_not_allowed", "product")
    (tmp_path / "a.bin").write_bytes(b"abc")
    with open_binary(str(tmp_path / "a.bin"), allowed_roots=[str(tmp_path)]) as (source, size):
        assert (source, size) == (str(tmp_path / "a.bin"), 3)


def test_a_file_uri_naming_another_host_is_refused_not_read_locally(tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "x.mp4").write_bytes(b"x")
    check = dict(allowed_schemes=["file"], allowed_roots=[str(lake)])
    for remote in (f"file://evil.example.com{lake}/x.mp4", f"file://10.0.0.1{lake}/x.mp4",
                   f"FILE://Evil.Example.com{lake}/x.mp4", f"file://user@host{lake}/x.mp4"):
        assert policy_violation(remote, **check) == "file_host_not_allowed", remote
        with pytest.raises(FetchError, match="names another machine's file") as e:
            with open_binary(remote, **check):
                pass
        assert e.value.reason == "file_host_not_allowed"
    for local in (f"file://{lake}/x.mp4", f"file://localhost{lake}/x.mp4", f"file://LOCALHOST{lake}/x.mp4"):
        assert resolve_uri(local, **check) == ("file", str(lake / "x.mp4")), local
